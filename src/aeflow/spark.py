"""The Spark session ``aeflow score --engine spark`` runs on: Java, the session's settings, and an archive of
Spark's classes that lets its JVM start sooner.

Why the archive: a Spark run on one machine spends a large part of its time before the first row is scored,
loading and verifying the ~10,000 Java classes of Spark, Parquet and Arrow from their jars (measured on
2 cores: the JVM and session take 4–6 s of a 30 s run over 1M rows, and the first Parquet read and write
several seconds more on a cold JVM). The JDK's class data sharing keeps those classes, already parsed and
verified, in an archive file the next JVM maps into memory. The first Spark run on a machine makes that
archive once (a short job in its own process: ``python -m aeflow.spark ARCHIVE``, ~15 s); every later run
starts its JVM with it (``-XX:SharedArchiveFile``, passed as ``spark.driver.defaultJavaOptions`` so a
user's own ``spark.driver.extraJavaOptions`` still apply). The file is named after the Java runtime and
the pyspark version it was made with: an upgrade of either makes a new one. Where it lives:
``$AEFLOW_SPARK_CLASS_ARCHIVE`` (a file path, or ``off`` for none), else
``$XDG_CACHE_HOME/aeflow/spark-classes/`` (``~/.cache/...``). A missing, unwritable or unusable archive
never stops a run: the JVM then loads its classes from the jars as before (``-Xshare:auto``); a failure to
make it is written beside it (``….jsa.failed.txt``: delete it to try again), and a damaged archive that
crashes the JVM is removed and made again by the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aeflow.errors import AeflowError

#: Debian's default Java runtime (OpenJDK 17 on bookworm, 21 on trixie: Spark 4 runs on both)
JAVA_PACKAGES = ("default-jre-headless",)
#: where the class archive goes (a file path), or ``off``
ARCHIVE_ENV = "AEFLOW_SPARK_CLASS_ARCHIVE"
#: the JDK's own notes on the archive (a class it skips, a mismatch it falls back from) are not the user's
QUIET_CDS = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"
#: the archiving job: JVM start, a few small jobs, the dump (~15 s on 2 cores); more means something hangs
ARCHIVE_TIMEOUT_S = 300


def ensure_java() -> None:
    """Spark needs a Java runtime (17 or newer): Debian's, installed when ``java`` is missing."""
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return
    from aeflow.system import apt_install

    problem = apt_install(JAVA_PACKAGES)
    if not shutil.which("java"):
        raise AeflowError(
            "Spark needs Java, which is not installed and could not be installed "
            f"({problem or 'not on PATH'}). "
            f"Fix: `apt-get install -y {' '.join(JAVA_PACKAGES)}` or set JAVA_HOME; or use --engine pandas."
        )


def spark_session(
    master: str = "local[*]",
    app: str = "aeflow-score",
    batch_rows: int = 10_000,
    echo: Callable[[str], None] = print,
) -> Any:
    """A Spark session (Java from Debian's packages when missing; Spark's classes from the archive, made
    on the first run: see the module docstring). ``batch_rows``: rows per Arrow batch, i.e. per call of a
    pandas function (Spark's default 10,000)."""
    ensure_java()
    if master.startswith("local"):  # the workers are this machine's: this Python, with aeflow and torch
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise AeflowError(
            "--engine spark needs pyspark, which is not installed. Fix: pip install 'aeflow[spark]' "
            "(make setup installs it), or use --engine pandas."
        ) from None

    archive = class_archive()
    if archive is not None and not archive.is_file():
        failed = failure_note(archive)
        if failed.is_file():  # not every run pays a failing attempt again
            echo(f"[aeflow] spark: no class archive (making it failed: {failed}; delete that file to retry)")
        else:
            make_class_archive(archive, echo)
    builder = _configured(SparkSession.builder.master(master).appName(app), batch_rows)
    if archive is None or not archive.is_file():
        return builder.getOrCreate()
    try:
        return builder.config("spark.driver.defaultJavaOptions", from_archive(archive)).getOrCreate()
    except Exception as exc:  # a JVM that cannot start from it (damaged): go on without; remade next run
        archive.unlink(missing_ok=True)
        echo(
            f"[aeflow] spark: the JVM did not start from the class archive {archive} "
            f"({str(exc).strip().splitlines()[0][:200]}); removed it, starting from the jars"
        )
        return builder.config("spark.driver.defaultJavaOptions", "").getOrCreate()


def from_archive(archive: Path) -> str:
    """The JVM options that start it from ``archive`` (a JVM crash report, if any, goes to the temp folder,
    not the user's working directory)."""
    crash = Path(tempfile.gettempdir()) / "aeflow-spark-jvm-crash-%p.log"
    return f"-XX:SharedArchiveFile={archive} {QUIET_CDS} -XX:ErrorFile={crash}"


def _configured(builder: Any, batch_rows: int) -> Any:
    """The settings every aeflow Spark session has (the archiving job's too, so it loads the same classes)."""
    return (
        builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "true")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        # one task per core already: a torch thread pool per task on top would fight over the cores
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")
    )


def java_home() -> Path | None:
    """The Java runtime Spark will start (``JAVA_HOME``, else the ``java`` on PATH), resolved."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"]).resolve()
    java = shutil.which("java")
    return Path(java).resolve().parents[1] if java else None


def class_archive() -> Path | None:
    """Where this Java runtime's and this pyspark's class archive is (made or not), or ``None`` when off."""
    chosen = os.environ.get(ARCHIVE_ENV, "").strip()
    if chosen.lower() in ("off", "0", "false", "no"):
        return None
    if chosen:
        return Path(chosen).expanduser().resolve()
    home = java_home()
    if home is None:
        return None
    import pyspark

    jvm = next(home.glob("lib/server/libjvm.*"), home)  # an update of the runtime in place: a new archive
    made = f"{home}|{jvm.stat().st_mtime_ns if jvm.exists() else ''}|{pyspark.__version__}|{pyspark.__file__}"
    key = hashlib.sha256(made.encode()).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "aeflow" / "spark-classes" / f"pyspark-{pyspark.__version__}-{key[:12]}.jsa"


def failure_note(archive: Path) -> Path:
    """Where a failure to make ``archive`` is written down (so that later runs do not try again)."""
    return archive.with_name(f"{archive.name}.failed.txt")


def make_class_archive(archive: Path, echo: Callable[[str], None] = print) -> bool:
    """Make ``archive`` in a process of its own (``python -m aeflow.spark``); says what went wrong, writes
    it beside the archive (:func:`failure_note`) and returns ``False`` when it could not (the run then goes
    on without it)."""
    echo(f"[aeflow] spark: first run with this Java and pyspark: archiving Spark's classes once → {archive}")
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "aeflow.spark", str(archive)],
            capture_output=True,
            text=True,
            timeout=ARCHIVE_TIMEOUT_S,
            env={**os.environ, ARCHIVE_ENV: "off"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _failed(archive, str(exc), echo)
    if done.returncode != 0 or not archive.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return _failed(archive, f"exit {done.returncode}: {' | '.join(tail)}", echo)
    return True


def _failed(archive: Path, reason: str, echo: Callable[[str], None]) -> bool:
    note = failure_note(archive)
    with contextlib.suppress(OSError):  # a folder that cannot be written: nothing to note it in
        note.write_text(f"{reason}\n")
    echo(f"[aeflow] spark: no class archive ({reason}); starting from the jars ({ARCHIVE_ENV}=off skips it)")
    return False


def _archiving_job(archive: Path) -> None:
    """Run the kinds of work ``aeflow score`` does (CSV and Parquet in, Python functions over Arrow
    batches as they come and over rows repartitioned and sorted by series, a count back) on a JVM that
    dumps the classes it loaded when it exits; then wait for that exit and move the dump into place
    (readers see the whole file or none)."""
    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers: this Python, as scoring's
    part = archive.with_name(f".{archive.name}.{uuid.uuid4().hex}.part")
    options = f"-XX:ArchiveClassesAtExit={part} {QUIET_CDS}"
    builder = _configured(SparkSession.builder.master("local[2]").appName("aeflow-archive"), 10_000)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    session = builder.config("spark.driver.defaultJavaOptions", options).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = pd.DataFrame({"series": [i % 3 for i in range(300)], "x": [i / 7 for i in range(300)]})
            rows.to_csv(Path(tmp) / "rows.csv", index=False)
            rows.to_parquet(Path(tmp) / "rows.parquet", index=False)
            text = session.read.csv(str(Path(tmp) / "rows.csv"), header=True, mode="FAILFAST")
            text.withColumn("x", F.col("x").cast("double")).count()
            df = session.read.parquet(str(Path(tmp) / "rows.parquet"))
            df = df.withColumn("source", F.element_at(F.split(F.input_file_name(), "/"), -1))
            df = df.withColumn("_position", F.monotonically_increasing_id())
            df.mapInArrow(_count_rows, schema="rows bigint").agg(F.sum("rows")).collect()
            by_series = df.repartition("series").sortWithinPartitions("series")
            by_series.mapInArrow(_count_rows, schema="rows bigint").agg(F.sum("rows")).collect()
    finally:
        session.stop()
        exit_code = _end_jvm()  # also after a failure: a JVM left behind would dump its classes later
    if exit_code is None or not part.is_file() or part.stat().st_size == 0:
        part.unlink(missing_ok=True)
        raise SystemExit(f"the JVM (exit {exit_code}) wrote no class archive to {part}")
    # A cut-short archive (a full disk during the dump) crashes JDK 17 when mapped: try it before it is used.
    home = java_home()
    check = [str(home / "bin" / "java") if home else "java", *from_archive(part).split(), "-version"]
    tried = subprocess.run(check, capture_output=True, text=True, timeout=120, check=False)
    if tried.returncode != 0:
        part.unlink(missing_ok=True)
        raise SystemExit(f"a JVM started from the new archive failed (exit {tried.returncode}); not kept")
    os.replace(part, archive)


def _count_rows(batches: Any) -> Any:
    """What a scoring task hands back to the JVM: one count (its rows go to its own Parquet part)."""
    import pyarrow as pa

    yield pa.RecordBatch.from_pydict({"rows": [sum(b.num_rows for b in batches)]})


def _end_jvm() -> int | None:
    """Close the JVM's input (Spark's gateway then exits it, writing the archive) and wait for it; its exit
    code, or ``None`` when pyspark does not say which process its JVM is."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)  # pyspark keeps the JVM's Popen here, its stdin a pipe from us
    if gateway is None or proc is None or proc.stdin is None:
        return None
    gateway.shutdown()
    proc.stdin.close()
    return proc.wait(timeout=ARCHIVE_TIMEOUT_S)


if __name__ == "__main__":
    _archiving_job(Path(sys.argv[1]))
