"""``aeflow score``: the same registered pyfunc on pandas and on a real local Spark (Java from Debian's
packages, installed when missing) gives the same answers — row by row for tables, one detector state per
series for sensors — and bad input stops before any work, leaving the previous output alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from aeflow import scoring
from aeflow.spark import ARCHIVE_ENV, ensure_java, make_class_archive

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SENSORS = ["a", "b", "c"]
#: file names as people write them: Spark knows a file as a percent-encoded URI (a space is ``%20``) and
#: reads a path as a glob pattern (``[b+c]`` is one character of three); ``source`` is the name as it is
TABLE_FILES = ("part-1.csv", "part 2 [b+c]%.csv")
PLANT_FILES = ("plant-1.csv", "plant 2+{east}.csv")


@pytest.fixture(scope="module", autouse=True)
def java(tmp_path_factory) -> Iterator[Path]:
    """Spark's Java runtime, installed from Debian's packages when missing (a failure, not a skip), and
    Spark's class archive made as a user's first Spark run makes it, in this module's own folder (the
    user's cache is left alone); every Spark run here starts from it."""
    ensure_java()
    archive = tmp_path_factory.mktemp("spark-classes") / "classes.jsa"
    before = os.environ.get(ARCHIVE_ENV)
    os.environ[ARCHIVE_ENV] = str(archive)
    said: list[str] = []
    try:
        assert make_class_archive(archive, said.append), said
        yield archive
    finally:
        if before is None:
            os.environ.pop(ARCHIVE_ENV, None)
        else:
            os.environ[ARCHIVE_ENV] = before


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> tuple[Path, Path]:
    """A tabular pyfunc (briefly trained on correlated columns) and a folder of two CSV files to score,
    with an ``id`` column the model does not know (carried along); the second file's name has a space,
    glob characters, ``+`` and ``%``."""
    from aeflow.params import parse_params
    from aeflow.training.service import fit_model
    from aeflow.usecases.tabular.encoding import Encoder
    from aeflow.usecases.tabular.serving import save_pyfunc

    root = tmp_path_factory.mktemp("tables")
    params = parse_params(yaml.safe_load((REPO / "params.yaml").read_text()), REPO / "params.yaml")
    rng = np.random.default_rng(0)
    columns = [f"c{i:02d}" for i in range(12)]
    frame = pd.DataFrame(rng.normal(size=(6000, 4)) @ rng.normal(size=(4, 12)), columns=columns)
    encoder = Encoder.fit(frame.iloc[:3000], columns, [], "standard", 20)
    x = encoder.transform(frame.iloc[:3000])
    train = params.tabular.train.model_copy(update={"epochs": 2})
    model, _ = fit_model(
        params, "tabular", params.tabular.model, train, (x[:2500], None, x[2500:], None), "identity"
    )
    val = encoder.transform(frame.iloc[2500:3000])
    with torch.inference_mode():
        errors = ((model(torch.from_numpy(val)) - torch.from_numpy(val)) ** 2).mean(1).numpy()
    model.data_config = {
        "use_case": "tabular",
        "encoder": encoder.to_json(),
        "threshold": float(np.percentile(errors, 95)),
    }
    pyfunc = save_pyfunc(model, root / "model")
    data = root / "rows"
    data.mkdir()
    test = frame.iloc[3000:].reset_index(drop=True)
    test.iloc[::50, 3] += 8.0  # some rows far off: flagged ones, named by their column
    test.insert(0, "id", np.arange(len(test)))
    test.iloc[:1800].to_csv(data / TABLE_FILES[0], index=False)
    test.iloc[1800:].to_csv(data / TABLE_FILES[1], index=False)
    return pyfunc, data


@pytest.fixture(scope="module")
def sensors(tmp_path_factory) -> tuple[Path, Path]:
    """A sensor detector pyfunc and a folder with two series, one per file, of different lengths (the
    second file's name with a space, ``+`` and glob characters)."""
    from aeflow.models.registry import build_model
    from aeflow.usecases.sensor.serving import save_pyfunc
    from aeflow.usecases.sensor.windows import Scaler

    root = tmp_path_factory.mktemp("sensors")
    torch.manual_seed(0)
    config = {"variant": "vanilla", "architecture": "conv1d", "latent_dim": 4, "channels": [8], "loss": "mse"}
    model = build_model({**config, "hidden_dims": [16]}, [3, 16], output="identity").eval()
    rng = np.random.default_rng(1)

    def series(n: int, seed: int) -> pd.DataFrame:
        t = np.arange(n)
        base = np.stack([np.sin(t / 20), np.cos(t / 20), np.sin(t / 20 + seed)], axis=1) * [1, 2, 3]
        values = base + rng.normal(0, 0.05, (n, 3))
        values[n // 2, 1] += 5.0  # one spike per series
        frame = pd.DataFrame(values, columns=SENSORS)
        frame.insert(0, "timestamp", pd.date_range("2026-01-01", periods=n, freq="min").astype(str))
        return frame

    first = series(700, 0)
    model.data_config = {
        "use_case": "sensor", "sensors": SENSORS, "window_length": 16, "score_steps": 2, "smoothing": 3,
        "scaler": Scaler.fit(first[SENSORS].to_numpy(np.float32)[:300]).to_json(), "threshold": 1.0,
    }  # fmt: skip
    pyfunc = save_pyfunc(model, root / "model")
    data = root / "plants"
    data.mkdir()
    first.to_csv(data / PLANT_FILES[0], index=False)
    series(450, 1).to_csv(data / PLANT_FILES[1], index=False)
    return pyfunc, data


def aeflow_score(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, **(env or {})}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(BIN / "aeflow"), "score", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def both_engines(model: Path, data: Path, out: Path, *extra: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both engines' answers; each run's temporary folder (the model's copy for Spark's executors among
    what goes there) is empty again when the command ends."""
    got = []
    for engine in ("pandas", "spark"):
        scratch = out / f"temp-{engine}"
        scratch.mkdir(parents=True)
        res = aeflow_score("--model", str(model), "--input", str(data), "--output", str(out / engine),
                           "--engine", engine, *extra, env={"TMPDIR": str(scratch)})  # fmt: skip
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        assert sorted(p.name for p in scratch.iterdir()) == []
        summary = json.loads(res.stdout.strip().splitlines()[-1])
        assert summary["engine"] == engine
        got.append(scoring.read_scores(out / engine))
    return got[0], got[1]


def test_tables_score_the_same_on_spark_and_pandas(java, tables, tmp_path):
    model, data = tables
    pandas_out, spark_out = both_engines(model, data, tmp_path)
    assert len(pandas_out) == len(spark_out) == 3000
    key = ["source", "id"]
    a = pandas_out.sort_values(key).reset_index(drop=True)
    b = spark_out.sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert list(a.columns[:13]) == ["id", *[f"c{i:02d}" for i in range(12)]]  # every input column kept
    np.testing.assert_array_equal(a["id"], b["id"])
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(a["flag"], b["flag"])
    np.testing.assert_array_equal(a["feature_1"], b["feature_1"])
    # the far-off rows are the flagged ones, and their first column is the one moved
    far = a["id"].astype(int) % 50 == 0  # carried along as the text it was
    assert a.loc[far, "flag"].mean() > 0.9 and a.loc[~far, "flag"].mean() < 0.1
    assert (a.loc[far & a["flag"], "feature_1"] == "c03").mean() > 0.9
    assert set(a["source"]) == set(b["source"]) == set(TABLE_FILES)


def spark_answers(model: Path, data: Path, out: Path, env: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """``aeflow score --engine spark`` with ``env`` added: its answers (by file and id) and what it said."""
    res = aeflow_score(
        "--model", str(model), "--input", str(data), "--output", str(out), "--engine", "spark", env=env
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return scoring.read_scores(out).sort_values(["source", "id"]).reset_index(
        drop=True
    ), res.stdout + res.stderr


def test_spark_starts_from_the_class_archive_of_the_first_run(java, tables, tmp_path):
    """The JVM maps Spark's classes from the archive (the JVM's own class-loading log says where each
    class came from) instead of reading them from the jars, and the answers stay the same."""
    model, data = tables
    assert java.is_file() and java.stat().st_size > 20e6
    log = tmp_path / "classes.log"
    answers, _ = spark_answers(
        model, data, tmp_path / "out", {"JAVA_TOOL_OPTIONS": f"-Xlog:class+load=info:file={log}"}
    )
    # lambda proxies and the classes Spark compiles at run time are made anew by every JVM: not counted
    loaded = log.read_text().splitlines()
    spark_classes = [line for line in loaded if "] org.apache.spark." in line and "$$Lambda" not in line]
    from_archive = [line for line in spark_classes if "source: shared objects file (top)" in line]
    assert any(" org.apache.spark.SparkContext source: shared objects file (top)" in c for c in from_archive)
    assert len(from_archive) > 0.95 * len(spark_classes) > 1000, (len(from_archive), len(spark_classes))
    res = aeflow_score("--model", str(model), "--input", str(data), "--output", str(tmp_path / "pandas"))
    assert res.returncode == 0, res.stderr[-3000:]
    plain = scoring.read_scores(tmp_path / "pandas").sort_values(["source", "id"]).reset_index(drop=True)
    np.testing.assert_allclose(answers["score"], plain["score"], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(answers["flag"], plain["flag"])


def test_a_damaged_class_archive_is_dropped_and_the_run_goes_on(java, tables, tmp_path):
    """An archive cut short (a full disk, say) crashes the JVM that maps it: the run starts again from the
    jars and removes the file, so that the next run makes a whole one."""
    model, data = tables
    damaged = tmp_path / "classes.jsa"
    with java.open("rb") as whole:
        damaged.write_bytes(whole.read(5_000_000))
    temp = tmp_path / "temp"
    temp.mkdir()
    answers, said = spark_answers(
        model, data, tmp_path / "out", {ARCHIVE_ENV: str(damaged), "TMPDIR": str(temp)}
    )
    assert f"did not start from the class archive {damaged}" in said and "starting from the jars" in said
    assert not damaged.exists()
    # the crashed JVM's report went to the temp folder, not the folder the user ran the command in
    assert [p.name.startswith("aeflow-spark-jvm-crash-") for p in temp.glob("*.log")] == [True]
    assert len(answers) == 3000 and answers["score"].notna().all()


def test_sensors_keep_one_state_per_series_on_spark_and_pandas(java, sensors, tmp_path):
    model, data = sensors
    pandas_out, spark_out = both_engines(model, data, tmp_path)
    assert set(pandas_out["source"]) == set(spark_out["source"]) == set(PLANT_FILES)
    for name, n in zip(PLANT_FILES, (700, 450), strict=True):
        a = pandas_out[pandas_out["source"] == name].reset_index(drop=True)
        b = spark_out[spark_out["source"] == name].sort_values("timestamp").reset_index(drop=True)
        assert len(a) == len(b) == n
        np.testing.assert_array_equal(a["timestamp"], b["timestamp"])
        np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(a["flag"], b["flag"])
        # each file is its own series: scoring it alone gives the same answers (no state crosses files)
        import mlflow.pyfunc

        alone = mlflow.pyfunc.load_model(str(model)).predict(pd.read_csv(data / name))
        np.testing.assert_allclose(a["score"], alone["score"], rtol=1e-6, atol=0)


@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_series_column_and_order_gather_each_series_from_every_file(java, sensors, tmp_path, engine):
    """Two plants interleaved, rows shuffled and dealt over two files (each plant's readings in both):
    --series and --order put each plant back together from both files, on either engine (Spark: the rows
    repartitioned by plant, each plant's rows gathered across batches), and every row keeps its file."""
    model, data = sensors
    one = pd.concat(
        [
            pd.read_csv(data / PLANT_FILES[0]).assign(plant="p1"),
            pd.read_csv(data / PLANT_FILES[1]).assign(plant="p2"),
        ]
    ).sample(frac=1.0, random_state=0)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    one.iloc[::2].to_csv(mixed / "day-1.csv", index=False)
    one.iloc[1::2].to_csv(mixed / "day-2.csv", index=False)
    out = str(tmp_path / "out.parquet")
    res = aeflow_score("--model", str(model), "--input", str(mixed), "--output", out, "--series", "plant",
                       "--order", "timestamp", "--engine", engine)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    got = scoring.read_scores(tmp_path / "out.parquet")
    if engine == "spark":
        got = got.sort_values(["plant", "timestamp"]).reset_index(drop=True)
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(model))
    for plant, name in zip(("p1", "p2"), PLANT_FILES, strict=True):
        mine = got[got["plant"] == plant].reset_index(drop=True)
        expected = pyfunc.predict(pd.read_csv(data / name))
        assert len(mine) == len(expected)
        np.testing.assert_allclose(mine["score"], expected["score"], rtol=1e-6, atol=0)
    # each row's source is the file it was in
    dealt = pd.concat([pd.read_csv(mixed / f).assign(file=f) for f in ("day-1.csv", "day-2.csv")])
    merged = got.merge(dealt[["plant", "timestamp", "file"]], on=["plant", "timestamp"])
    assert len(merged) == len(one) and (merged["source"] == merged["file"]).all()


def test_bad_input_stops_before_work_and_keeps_the_old_output(tables, tmp_path):
    model, data = tables
    out = tmp_path / "scores.parquet"
    ok = aeflow_score("--model", str(model), "--input", str(data / TABLE_FILES[0]), "--output", str(out))
    assert ok.returncode == 0, ok.stderr
    before = out.read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    pd.read_csv(data / TABLE_FILES[0]).drop(columns=["c05"]).to_csv(broken / "rows.csv", index=False)
    for engine in ("pandas", "spark"):
        res = aeflow_score(
            "--model", str(model), "--input", str(broken), "--output", str(out), "--engine", engine
        )
        assert res.returncode == 1
        said = " ".join(res.stdout.split())
        assert "rows.csv" in said and "'c05'" in said and "missing column" in said, said
    assert out.read_bytes() == before
    res = aeflow_score("--model", str(model), "--input", str(tmp_path / "nowhere"), "--output", str(out))
    assert res.returncode == 1 and "no such file or folder" in " ".join(res.stdout.split())
