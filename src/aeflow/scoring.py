"""Batch scoring (``aeflow score``): a registered detector over a file or a folder of files, to Parquet.

Two engines run the *same* MLflow pyfunc, so they give the same answers:

* ``pandas`` — in this process: the model loaded once, the input read a chunk (rows) or a file (series) at a
  time (with ``--series``, whose rows may be in any file, all of it at once), the answer appended to one
  Parquet file. Enough for millions of rows on one machine.
* ``spark`` — on Spark (local mode ``local[*]`` by default, or any ``--master`` URL for a cluster): the
  pyfunc shipped to the executors (``SparkContext.addFile``) and loaded once per worker process; tables
  batch by batch, sensors one detector state per series (the rows repartitioned by series), both through
  ``mapInArrow``. Each task's Python worker writes its own part of the output (pyarrow), so the answers do
  not travel back to the JVM to be encoded there: a Parquet folder (one part file per task, ``_SUCCESS``
  when whole) readable as one table by pandas, pyarrow, Spark. On a cluster, ``--output`` must be a folder
  every executor can write (a shared filesystem), as for Spark's own writer.

What a model scores is written on it when it is logged (its metadata key
:data:`aeflow.tracking.SCORING_UNIT`): ``rows`` (tables: every row on its own, in any order, split
anywhere) or ``series`` (sensors: readings in time order, one detector state per series; a series is a
value of ``--series`` or, without it, one input file). Each output
row is its input row (every column kept) plus the model's answer, and ``source`` (the input file's name).

Input files are CSV or Parquet with the columns the model's signature asks for (others are carried along);
a missing column, an empty folder or an unreadable file stops before any work with a message naming it. The
output appears only when complete (written beside it, then renamed): an interrupted run leaves the previous
output as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aeflow.errors import AeflowError, DataError
from aeflow.spark import spark_session
from aeflow.tracking import SCORING_UNIT

ENGINES = ("pandas", "spark")
SOURCE = "source"  # output column: the input file each row came from
SUFFIXES = (".csv", ".parquet", ".pq")
#: rows per pyfunc call on the pandas path (and Arrow batch size on Spark's): memory stays flat
CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class ScoringModel:
    """What ``aeflow score`` needs to know about a pyfunc before reading any data."""

    uri: str
    unit: str  # "rows" | "series"
    input_types: list[tuple[str, str]]  # (column the signature asks for, MLflow type name)
    outputs: list[tuple[str, str]]  # (answer column, MLflow type name)

    @property
    def inputs(self) -> list[str]:
        return [name for name, _ in self.input_types]


def describe_model(uri: str) -> ScoringModel:
    """Read a pyfunc's signature and scoring unit (no weights loaded)."""
    from mlflow.models import get_model_info

    try:
        info = get_model_info(uri)
    except Exception as exc:  # MLflow raises several unrelated types for "not found"
        raise AeflowError(
            f"{uri}: could not read this model ({type(exc).__name__}: {exc}). Fix: check the name, version "
            "or alias in the MLflow UI (Models tab), and MLFLOW_TRACKING_URI for the store that holds it."
        ) from None
    sig = info.signature
    if sig is None or sig.inputs is None or sig.outputs is None:
        raise AeflowError(
            f"{uri}: the model has no input/output signature, so its answer's columns are unknown. "
            "Fix: score a version registered by aeflow's train stage (every one carries a signature)."
        )
    inputs = [(c.name, c.type.name) for c in sig.inputs.inputs]
    outputs = [(c.name, c.type.name) for c in sig.outputs.inputs]
    unit = str((info.metadata or {}).get(SCORING_UNIT, "rows"))
    return ScoringModel(uri, unit, inputs, outputs)


def input_files(path: Path) -> list[Path]:
    """The CSV/Parquet files to score: ``path`` itself, or the files of a folder (sorted by name)."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    else:
        raise DataError(f"{path}: no such file or folder. Fix: pass a CSV/Parquet file or a folder of them.")
    if not files:
        raise DataError(f"{path}: no .csv or .parquet files in this folder. Fix: point --input at the data.")
    odd = [p for p in files if p.suffix.lower() not in SUFFIXES]
    if odd:
        raise DataError(f"{odd[0]}: not a .csv or .parquet file. Fix: convert it, or pass a folder of such.")
    kinds = {p.suffix.lower() == ".csv" for p in files}
    if len(kinds) > 1:
        raise DataError(f"{path}: mixes CSV and Parquet files. Fix: keep one format per folder.")
    return files


def columns_of(file: Path) -> list[str]:
    """A file's column names, reading only its header (CSV) or schema (Parquet)."""
    try:
        if file.suffix.lower() == ".csv":
            return [str(c) for c in pd.read_csv(file, nrows=0).columns]
        import pyarrow.parquet as pq

        return list(pq.read_schema(file).names)
    except Exception as exc:
        raise DataError(
            f"{file}: cannot be read as {file.suffix[1:]} ({exc}). Fix: check the file."
        ) from None


def check_inputs(model: ScoringModel, files: list[Path], series: str | None) -> list[str]:
    """Every file has the model's columns (and the series column); returns the first file's columns."""
    first: list[str] | None = None
    for f in files:
        have = columns_of(f)
        missing = [c for c in model.inputs if c not in have]
        if series and series not in have:
            missing.append(series)
        if missing:
            raise DataError(
                f"{f}: missing column(s) {', '.join(map(repr, missing))} that the model "
                f"({model.uri}) needs; it has {', '.join(have)}. Fix: add them or score another model."
            )
        if first is None:
            first = have
        elif have != first:
            raise DataError(
                f"{f}: its columns ({', '.join(have)}) differ from {files[0].name}'s ({', '.join(first)}). "
                "Fix: give every file of the folder the same columns."
            )
    clash = [c for c, _ in model.outputs if c in (first or [])] + (
        [SOURCE] if SOURCE in (first or []) else []
    )
    if clash:
        raise DataError(
            f"{files[0]}: column(s) {', '.join(map(repr, clash))} would be overwritten by the answer. "
            "Fix: rename them in the input."
        )
    return first or []


@contextlib.contextmanager
def replacing(out: Path) -> Iterator[Path]:
    """Write to a sibling temporary path, then put it in ``out``'s place; on failure, ``out`` is untouched."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()


def _csv_types(model: ScoringModel, file: Path) -> dict[str, Any]:
    """Columns the model does not read are carried as the text they are (both engines alike); the
    model's own columns are left to the reader (a text in a numeric one reaches the model, which names
    it)."""
    return {c: str for c in columns_of(file) if c not in model.inputs}


def _read_chunks(model: ScoringModel, file: Path, rows: int) -> Iterator[pd.DataFrame]:
    if file.suffix.lower() == ".csv":
        yield from pd.read_csv(file, chunksize=rows, dtype=_csv_types(model, file))
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(file).iter_batches(batch_size=rows):
            yield batch.to_pandas()


def _read_whole(model: ScoringModel, file: Path) -> pd.DataFrame:
    if file.suffix.lower() == ".csv":
        return pd.read_csv(file, dtype=_csv_types(model, file))
    return pd.read_parquet(file)


def in_time_order(group: pd.DataFrame, order: str | None, position: str | None = None) -> pd.DataFrame:
    """A series' rows in time order: by ``order`` (numbers as numbers, else times as times, else text),
    ties and no ``order`` kept in input order (``position``, when the rows were shuffled)."""
    keys: list[pd.Series] = []
    if order:
        raw = group[order]
        as_number = pd.to_numeric(raw, errors="coerce")
        if as_number.notna().all():
            keys.append(as_number)
        else:
            as_time = pd.to_datetime(raw, errors="coerce", utc=True)
            keys.append(as_time if as_time.notna().all() else raw.astype(str))
    if position:
        keys.append(group[position])
    if not keys:
        return group
    sorter = pd.DataFrame({f"k{i}": k.to_numpy() for i, k in enumerate(keys)})
    return group.iloc[sorter.sort_values(list(sorter.columns), kind="stable").index.to_numpy()]


def _answer_frame(model: Any, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """``frame`` (with its ``source`` column) and the pyfunc's answer, ``source`` last as on Spark."""
    try:
        answer = pd.DataFrame(model.predict(frame))
    except Exception as exc:  # the pyfunc's own 400-style message names the row and column
        raise DataError(f"{where}: {getattr(exc, 'message', None) or exc}") from None
    answer.index = frame.index
    kept = frame.drop(columns=SOURCE)
    return pd.concat([kept, answer, frame[SOURCE]], axis=1)


def pandas_parts(
    model: ScoringModel, files: list[Path], series: str | None, order: str | None, chunk_rows: int
) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """What the pandas engine hands the pyfunc at a time, as (progress label, where, rows with their
    ``source``): chunks of a file (tables); each file whole, in time order (series, one per file); or with
    ``series``, each series whole from every file its rows are in (a plant's readings split over daily
    files are one series, as on Spark), in time order; the input then held in memory at once."""
    if model.unit != "series":
        for i, file in enumerate(files, 1):
            for chunk in _read_chunks(model, file, chunk_rows):
                yield f"file {i}/{len(files)} {file.name}", str(file), chunk.assign(**{SOURCE: file.name})
        return
    if not series:
        for i, file in enumerate(files, 1):
            whole = _read_whole(model, file).assign(**{SOURCE: file.name})
            yield f"file {i}/{len(files)} {file.name}", str(file), in_time_order(whole, order)
        return
    every = [_read_whole(model, f).assign(**{SOURCE: f.name}) for f in files]
    whole = pd.concat(every, ignore_index=True) if len(every) > 1 else every[0]
    groups = whole.groupby(series, sort=True, dropna=False)  # a missing value is one series, as Spark's
    where = str(files[0] if len(files) == 1 else files[0].parent)
    for i, (key, group) in enumerate(groups, 1):
        name = key[0] if isinstance(key, tuple) else key
        yield f"series {i}/{groups.ngroups}", f"{where} ({series} {name!r})", in_time_order(group, order)


def score_pandas(
    model: ScoringModel,
    files: list[Path],
    out: Path,
    series: str | None = None,
    order: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score ``files`` in this process into one Parquet file ``out``."""
    import mlflow.pyfunc
    import pyarrow as pa
    import pyarrow.parquet as pq

    pyfunc = mlflow.pyfunc.load_model(model.uri)
    began, rows = time.perf_counter(), 0
    with replacing(out) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            for label, where, part in pandas_parts(model, files, series, order, chunk_rows):
                scored = _answer_frame(pyfunc, part.reset_index(drop=True), where)
                table = pa.Table.from_pandas(scored, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
                rows += len(scored)
                took = time.perf_counter() - began
                echo(f"[aeflow] score: {label}: {rows:,} rows ({rows / took:,.0f}/s)")
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataError(f"{files[0]}: no rows to score. Fix: check the input files.")
    return {
        "engine": "pandas",
        "rows": rows,
        "seconds": round(time.perf_counter() - began, 3),
        "output": str(out),
    }


#: an MLflow signature type → (its Spark SQL type, its ``pyarrow`` type alias); any other type is text
_TYPES = {
    "double": ("double", "double"),
    "float": ("float", "float"),
    "long": ("bigint", "int64"),
    "integer": ("int", "int32"),
    "boolean": ("boolean", "bool"),
    "string": ("string", "string"),
}
_SPARK_TYPES = {kind: spark for kind, (spark, _) in _TYPES.items()}


def score_spark(
    model: ScoringModel,
    files: list[Path],
    out: Path,
    series: str | None = None,
    order: str | None = None,
    master: str = "local[*]",
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score ``files`` on Spark into the Parquet folder ``out``."""
    from pyspark.sql import functions as F

    began = time.perf_counter()
    spark = spark_session(master, batch_rows=CHUNK_ROWS, echo=echo)
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - began  # the JVM and the session: a fixed price per run
    # the model's copy for the executors lives as long as the job, not in the temp folder after the run
    shipping = tempfile.TemporaryDirectory(prefix="aeflow-score-")
    try:
        paths = spark_paths(files)
        if files[0].suffix.lower() == ".csv":
            # every column as text, as the pandas engine carries the ones the model does not read; the
            # model's own columns become its types, and a text that is no number stops here, named
            df = spark.read.csv(paths, header=True, inferSchema=False, mode="FAILFAST")
            for c, kind in model.input_types:
                df = df.withColumn(c, F.col(f"`{c}`").cast(_SPARK_TYPES.get(kind, "string")))
            check_casts(spark.read.csv(paths, header=True, inferSchema=False), model, files)
        else:
            df = spark.read.parquet(*paths)
        df = df.withColumn(SOURCE, source_name())
        shipped = ship_model(spark, model.uri, Path(shipping.name))
        with replacing(out) as tmp:
            tmp.mkdir()
            if model.unit == "series":
                written = _series_on_spark(df, model, shipped, series, order, str(tmp))
            else:
                written = _rows_on_spark(df, model, shipped, str(tmp))
            rows = int(written.agg(F.sum("rows")).collect()[0][0] or 0)
            finish_parts(tmp, files, rows)
    except Exception as exc:
        if isinstance(exc, AeflowError):
            raise
        raise DataError(
            f"{files[0].parent if len(files) > 1 else files[0]}: Spark failed: {spark_reason(exc)}"
        ) from None
    finally:
        spark.stop()
        shipping.cleanup()
    took = time.perf_counter() - began
    echo(f"[aeflow] score: {len(files)} file(s), {rows:,} rows on Spark {master} ({rows / took:,.0f}/s)")
    return {
        "engine": "spark",
        "master": master,
        "rows": rows,
        "seconds": round(took, 3),
        "session_seconds": round(started, 3),
        "output": str(out),
    }


#: what Hadoop reads as a glob pattern in a path (Spark takes every input path as one)
_GLOB = re.compile(r"([\\\[\]{}*?])")


def spark_paths(files: list[Path]) -> list[str]:
    """The input files as Spark is to read them: absolute, glob characters escaped. Spark takes each path
    as a pattern, so unescaped a file named ``a[1].csv`` is "not found" and ``c*.csv`` would also read
    every other file starting with ``c``."""
    return [_GLOB.sub(r"\\\1", str(f.resolve())) for f in files]


def source_name() -> Any:
    """The ``source`` column on Spark: each row's input file name as the pandas engine writes it. Spark
    knows the file as a URI, percent-encoded (``part%201.csv`` for ``part 1.csv``, ``a%5B1%5D.csv`` for
    ``a[1].csv``); decoded here, a literal ``+`` kept (``url_decode`` would read it as a space). Plain
    string functions, no regular expression: on a cold JVM a per-row ``regexp_replace`` cost 0.9 s of a
    1M-row run, ``replace`` 0.2 s."""
    from pyspark.sql import functions as F

    name = F.substring_index(F.input_file_name(), "/", -1)
    return F.url_decode(F.replace(name, F.lit("+"), F.lit("%2B")))


def check_casts(text: Any, model: ScoringModel, files: list[Path]) -> None:
    """One pass over the CSV input: a model column whose text is not a number stops scoring, named with
    an example value (Spark would make it a null silently)."""
    from pyspark.sql import functions as F

    typed_cols = [c for c, kind in model.input_types if _SPARK_TYPES.get(kind, "string") != "string"]
    if not typed_cols:
        return
    both = text.select(
        *[F.col(f"`{c}`").alias(f"t{i}") for i, c in enumerate(typed_cols)],
        *[
            F.col(f"`{c}`").cast(_SPARK_TYPES[dict(model.input_types)[c]]).alias(f"v{i}")
            for i, c in enumerate(typed_cols)
        ],
    )
    bad = [F.max(F.when(F.col(f"t{i}").isNotNull() & F.col(f"v{i}").isNull(), F.col(f"t{i}"))).alias(c)
           for i, c in enumerate(typed_cols)]  # fmt: skip
    row = both.agg(*bad).collect()[0].asDict()
    wrong = {c: v for c, v in row.items() if v is not None}
    if wrong:
        c, v = next(iter(wrong.items()))
        where = files[0] if len(files) == 1 else files[0].parent
        raise DataError(
            f"{where}: column {c!r} holds {v!r}, not a number ({len(wrong)} column(s) with such text). "
            "Fix: correct or remove those values."
        )


def spark_reason(exc: BaseException) -> str:
    """The line of a Spark failure a person needs: the Python worker's own error (e.g. the pyfunc's
    message naming a column), not the JVM stack around it."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("mlflow.exceptions.", "aeflow.errors.", "ValueError", "TypeError", "KeyError")):
            return ln
    return lines[0] if lines else type(exc).__name__


#: pyfunc models loaded in this (Spark worker) process, by shipped name: a reused Python worker loads a
#: model once, not once per task
_LOADED: dict[str, Any] = {}


def ship_model(spark: Any, uri: str, folder: Path) -> str:
    """Download the pyfunc once on the driver into ``folder`` (kept until the job ends) and ship it to every
    executor (``SparkContext.addFile``, also on a cluster); returns the name it is found under
    (``SparkFiles.get``)."""
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(uri, dst_path=str(folder))
    spark.sparkContext.addFile(local, recursive=True)
    return Path(local).name


def shipped_model(name: str) -> Any:
    """The shipped pyfunc, loaded once per worker process."""
    if name not in _LOADED:
        import logging

        import mlflow.pyfunc
        from pyspark import SparkFiles

        logging.getLogger("mlflow.models.utils").setLevel(logging.ERROR)  # extra columns: carried on purpose
        _LOADED[name] = mlflow.pyfunc.load_model(SparkFiles.get(name))
    return _LOADED[name]


def finish_parts(folder: Path, files: list[Path], rows: int) -> None:
    """After the job: what a failed or superseded task attempt left is removed, and the folder is marked
    whole (``_SUCCESS``, as Spark's own writer marks it, for tools that wait for it)."""
    for left in folder.glob(f"{_ATTEMPT}*"):
        left.unlink(missing_ok=True)
    if rows == 0:
        raise DataError(f"{files[0]}: no rows to score. Fix: check the input files.")
    (folder / "_SUCCESS").touch()


#: the name a task attempt writes its part under until it is whole
_ATTEMPT = "_attempt-"


class PartFile:
    """One Spark task's share of the output, written by the task's Python worker itself (pyarrow), so the
    rows do not go back to the JVM to be encoded there (measured, 1M rows × 30 columns on 2 cores, four
    interleaved runs each: the command 21.6–22.8 s instead of 26.1–27.0 s). Written under the attempt's own
    name and renamed to the partition's when whole: a retried or speculative attempt replaces a part with
    the same rows, never adds a second copy, and a failed one leaves no ``part-`` file."""

    def __init__(self, folder: str) -> None:
        from pyspark import TaskContext

        task = TaskContext.get()
        part = task.partitionId() if task is not None else 0
        attempt = task.taskAttemptId() if task is not None else 0
        self.path = os.path.join(folder, f"part-{part:05d}.parquet")
        self._tmp = os.path.join(folder, f"{_ATTEMPT}{part:05d}-{attempt}.parquet")
        self._writer: Any = None
        self.rows = 0

    def write(self, table: Any) -> None:
        """Append a ``pyarrow`` table (every batch of a task has the same schema)."""
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> Any:
        """Make the part whole; returns the one-row batch the job collects (rows written)."""
        import pyarrow as pa

        if self._writer is not None:
            self._writer.close()
            os.replace(self._tmp, self.path)
        return pa.RecordBatch.from_pydict({"rows": [self.rows]}, schema=pa.schema([("rows", pa.int64())]))


def with_answer(model: ScoringModel, pyfunc: Any, rows: Any, frame: pd.DataFrame | None = None) -> Any:
    """``rows`` (a ``pyarrow`` table, ``source`` last) with the pyfunc's answer before ``source``: the input
    columns go to the output as they came from Spark (no round trip through pandas); only the model's call
    sees them as pandas (``frame``, when the caller has it already)."""
    import pyarrow as pa

    names = [n for n, _ in model.outputs]
    arrow = {kind: pa.type_for_alias(alias) for kind, (_, alias) in _TYPES.items()}
    schema = pa.schema([(n, arrow.get(kind, pa.string())) for n, kind in model.outputs])
    answer = pd.DataFrame(pyfunc.predict(rows.to_pandas() if frame is None else frame))[names]
    answer = pa.Table.from_pandas(answer.reset_index(drop=True), schema=schema, preserve_index=False)
    kept = [c for c in rows.column_names if c != SOURCE]
    return pa.Table.from_arrays(
        [*(rows.column(c) for c in kept), *answer.columns, rows.column(SOURCE)],
        names=[*kept, *names, SOURCE],
    )


def _rows_on_spark(df: Any, model: ScoringModel, shipped: str, folder: str) -> Any:
    """Every row on its own: each Arrow batch of a partition goes through the pyfunc as it comes (the
    same ``predict`` the pandas engine calls on its chunks) and into the task's part file; the job's
    answer is one count per task."""

    def batches(arrow: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        pyfunc, part = shipped_model(shipped), PartFile(folder)
        for batch in arrow:
            part.write(with_answer(model, pyfunc, pa.Table.from_batches([batch])))
        yield part.close()

    return df.mapInArrow(batches, schema="rows bigint")


def _series_on_spark(
    df: Any, model: ScoringModel, shipped: str, series: str | None, order: str | None, folder: str
) -> Any:
    """One detector state per series: the rows of a series go to one task (``repartition`` by the series,
    sorted by it there so that each series' rows come together), put in input (or ``order``) order."""
    from pyspark.sql import functions as F

    key = series or SOURCE
    df = df.withColumn("_position", F.monotonically_increasing_id())  # file order, before the shuffle

    def per_partition(arrow: Iterator[Any]) -> Iterator[Any]:
        pyfunc, part = shipped_model(shipped), PartFile(folder)
        for rows in series_runs(arrow, key):
            frame = in_time_order(rows.to_pandas(), order, "_position")
            ordered = rows.take(frame.index.to_numpy()).drop_columns(["_position"])
            frame = frame.drop(columns="_position").reset_index(drop=True)
            part.write(with_answer(model, pyfunc, ordered, frame))
        yield part.close()

    return df.repartition(key).sortWithinPartitions(key).mapInArrow(per_partition, schema="rows bigint")


def series_runs(batches: Iterator[Any], key: str) -> Iterator[Any]:
    """The rows of Arrow ``batches`` sorted by ``key`` as one ``pyarrow`` table per value of ``key`` (a
    series may span batches; a missing value is one series, as Spark groups it)."""
    import numpy as np
    import pyarrow as pa

    pieces: list[Any] = []
    current: Any = None
    for batch in batches:
        keys = batch.column(key).to_pandas()
        codes = pd.factorize(keys, use_na_sentinel=False)[0]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(keys) else []
        for begin, end in zip(starts, [*starts[1:], len(keys)], strict=True):
            value = keys.iloc[begin]
            missing = pd.isna(value), pd.isna(current)
            same = all(missing) if any(missing) else bool(value == current)
            if pieces and not same:
                yield pa.Table.from_batches(pieces)
                pieces = []
            pieces.append(batch.slice(begin, end - begin))
            current = value
    if pieces:
        yield pa.Table.from_batches(pieces)


def score(
    model_uri: str,
    inputs: Path,
    out: Path,
    engine: str = "pandas",
    series: str | None = None,
    order: str | None = None,
    master: str = "local[*]",
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Check, then score with the chosen engine (see the module docstring)."""
    if engine not in ENGINES:
        raise AeflowError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}.")
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # extra input columns are carried along on purpose; the local env is the one aeflow runs in
    for name in ("mlflow.models.utils", "mlflow.pyfunc", "mlflow.models.flavor_backend_registry"):
        logging.getLogger(name).setLevel(logging.ERROR)
    files = input_files(inputs)
    model = describe_model(model_uri)
    if series and model.unit != "series":
        raise AeflowError(
            f"--series {series}: {model_uri} scores rows one by one, not series. Fix: drop --series."
        )
    columns = check_inputs(model, files, series)
    if order and order not in columns:
        raise DataError(f"{files[0]}: no column {order!r} to order by (--order). Fix: pick one of {columns}.")
    echo(
        f"[aeflow] score: {model_uri} ({model.unit}) over {len(files)} file(s) on {engine}"
        + (f" {master}" if engine == "spark" else "")
    )
    if engine == "spark":
        return score_spark(model, files, out, series, order, master, echo)
    return score_pandas(model, files, out, series, order, echo=echo)


def read_scores(out: Path) -> pd.DataFrame:
    """An output of either engine as one frame (a Parquet file or a folder of part files)."""
    return pd.read_parquet(out)
