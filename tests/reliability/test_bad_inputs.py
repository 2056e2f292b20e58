"""Bad inputs lose nothing: a catalogue of corrupt data and params, each stopping one stage cleanly.

Every entry names a use case, the stage that must stop, how its input or params are corrupted, and the
fragments the message must contain. For each entry the stage runs as DVC runs it (``python
pipelines/<stage>.py`` in a project copy, or ``dvc repro`` where DVC's own bookkeeping is the point) and
the test checks that

(a) the process exits non-zero without a traceback (exit code 2: a message for people, not a crash);
(b) the message names the file, key or row, what was expected, and says how to fix it (``Fix:``);
(c) every earlier output (each file under data/, models/, metrics/, results/, plots/, reports/), ``dvc.lock``
    and the MLflow registry (versions and aliases) are byte-for-byte as before.

One entry is a repair rather than an error (rows out of time order are sorted and the repair recorded),
as the README promises. The project copy with earlier outputs is built once (``project`` in conftest.py).
"""

from __future__ import annotations

import gzip
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers import write_idx_folder
from tests.pipeline.test_dvc_pipeline import sh
from tests.reliability.conftest import encode_idx_any, snapshot, write_params

pytestmark = pytest.mark.slow

PY = sys.executable
RATE = 8000


# ------------------------------------------------------------------------------------------- input makers
@dataclass
class Ctx:
    """What a corruption needs: the entry's own folder, real digits, and two unreachable URLs."""

    work: Path
    digits: tuple[np.ndarray, np.ndarray]
    refused_url: str  # a port that refuses connections at once
    silent_url: str  # a server that accepts connections and never answers (requests must time out)
    serve: Callable[[Path], str]  # a local HTTP server for a folder: url = serve(folder)


def idx_dir(
    ctx: Ctx, n: int = 300, images: np.ndarray | None = None, labels: np.ndarray | None = None
) -> Path:
    """A clean IDX training pair of ``n`` real digits in ``<work>/idx``."""
    x, y = ctx.digits
    return write_idx_folder(
        ctx.work / "idx",
        x[:n] if images is None else images,
        y[:n] if labels is None else labels,
    )


def speech_dir(ctx: Ctx) -> Path:
    """Three speakers (alice, bob, carol), two 1.2 s clips each, named like FSDD: ``<k>_<speaker>_<k>``."""
    import soundfile as sf

    folder = ctx.work / "speech"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(1.2 * RATE)) / RATE
    for s, speaker in enumerate(("alice", "bob", "carol")):
        for k in range(2):
            f0 = 110.0 + 40 * s + 10 * k
            voiced = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6))
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
            x = 0.2 * envelope * voiced + 0.01 * rng.standard_normal(len(t))
            sf.write(folder / f"{k}_{speaker}_{k}.wav", x.astype(np.float32), RATE, subtype="PCM_16")
    return folder


def sensor_frame(n: int = 400) -> pd.DataFrame:
    t = pd.date_range("2026-01-01", periods=n, freq="5min")
    phase = np.arange(n) / 288 * 2 * np.pi
    return pd.DataFrame(
        {
            "timestamp": t.astype(str),
            "pressure": 3.0 + np.sin(phase),
            "flow": 60.0 + 20 * np.cos(phase),
        }
    )


def sensor_csv(ctx: Ctx, frame: pd.DataFrame | None = None, **to_csv: Any) -> Path:
    path = ctx.work / "plant.csv"
    (sensor_frame() if frame is None else frame).to_csv(path, index=False, **to_csv)
    return path


def csv_params(path: Path, **extra: Any) -> dict[str, Any]:
    return {"sensor.ingest": {"source": "csv", "path": str(path), **extra}}


# ---------------------------------------------------------------------------------------------- corruptions
def idx_truncated_gz(ctx: Ctx) -> dict:
    folder = idx_dir(ctx)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:2000])
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(folder)}}


def idx_truncated_raw(ctx: Ctx) -> dict:
    folder = idx_dir(ctx)
    gz = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(gz.read_bytes())
    gz.unlink()
    (folder / "train-images-idx3-ubyte").write_bytes(raw[: len(raw) - 500])  # a download cut short
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(folder)}}


def idx_zero_byte(ctx: Ctx) -> dict:
    folder = idx_dir(ctx)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"")
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(folder)}}


def idx_not_idx(ctx: Ctx) -> dict:
    folder = idx_dir(ctx)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"<html>404 Not Found</html>\n"))
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(folder)}}


def idx_nan_inf_pixels(ctx: Ctx) -> dict:
    x, y = ctx.digits
    images = x[:300].astype(np.float32)
    images[::15, 10, 10] = np.nan  # 20 images with a NaN pixel, spread over every split
    images[7::15, 3, 3] = np.inf
    folder = ctx.work / "idx"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte").write_bytes(encode_idx_any(images))
    (folder / "train-labels-idx1-ubyte").write_bytes(encode_idx_any(y[:300].astype(np.uint8)))
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(folder)}}


def idx_labels_out_of_range(ctx: Ctx) -> dict:
    labels = ctx.digits[1][:300].copy()
    labels[::25] = 12  # 12 rows labelled 12: a foreign label set
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(idx_dir(ctx, labels=labels))}}


def mnist_dir_missing(ctx: Ctx) -> dict:
    return {"mnist.ingest": {"source": "idx", "idx_dir": str(ctx.work / "no-such-folder")}}


def mnist_mirror_refused(ctx: Ctx) -> dict:
    return {
        "mnist.ingest": {
            "source": "torchvision",
            "mirrors": [ctx.refused_url],
            "timeout_s": 0.5,
            "retries": 2,
        }
    }


def mnist_mirror_wrong_file(ctx: Ctx) -> dict:
    mirror = ctx.work / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"<html>maintenance</html>"))
    url = ctx.serve(mirror)
    return {"mnist.ingest": {"source": "torchvision", "mirrors": [url], "timeout_s": 5, "retries": 3}}


def params_unknown_key(ctx: Ctx) -> dict:
    return {"mnist.ingest.max_trian": 100}


def params_wrong_type(ctx: Ctx) -> dict:
    return {"mnist.ingest.max_train": "lots"}


def params_negative_lr(ctx: Ctx) -> dict:
    return {"mnist.train.lr": -0.01}


def params_latent_too_large(ctx: Ctx) -> dict:
    return {"mnist.model": {"variant": "vanilla", "latent_dim": 1000}}


def wav_truncated(ctx: Ctx) -> dict:
    folder = speech_dir(ctx)
    bad = folder / "1_carol_1.wav"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # header intact, half the samples missing
    return {"speech.ingest": {"source": "dir", "dir": str(folder)}}


def wav_zero_byte(ctx: Ctx) -> dict:
    folder = speech_dir(ctx)
    (folder / "1_carol_1.wav").write_bytes(b"")
    return {"speech.ingest": {"source": "dir", "dir": str(folder)}}


def wav_not_audio(ctx: Ctx) -> dict:
    folder = speech_dir(ctx)
    (folder / "1_carol_1.wav").write_text("meeting notes, not a recording\n")
    return {"speech.ingest": {"source": "dir", "dir": str(folder)}}


def wav_speaker_too_short(ctx: Ctx) -> dict:
    import soundfile as sf

    folder = speech_dir(ctx)
    t = np.arange(int(0.05 * RATE)) / RATE
    sf.write(folder / "0_dave_0.wav", (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), RATE)
    return {"speech.ingest": {"source": "dir", "dir": str(folder)}}


def speech_dir_missing(ctx: Ctx) -> dict:
    return {"speech.ingest": {"source": "dir", "dir": str(ctx.work / "no-such-folder")}}


def fsdd_silent(ctx: Ctx) -> dict:
    return {
        "speech.ingest": {
            "source": "fsdd",
            "fsdd_urls": [ctx.silent_url + "fsdd.zip"],
            "timeout_s": 0.3,
            "retries": 2,
        }
    }


def csv_unsorted(ctx: Ctx) -> dict:
    frame = sensor_frame()
    frame.iloc[[10, 11]] = frame.iloc[[11, 10]].to_numpy()  # two lines swapped, as in a merged export
    return csv_params(sensor_csv(ctx, frame))


def csv_duplicates(ctx: Ctx) -> dict:
    frame = sensor_frame()
    frame.loc[20, "timestamp"] = frame.loc[19, "timestamp"]
    return csv_params(sensor_csv(ctx, frame))


def csv_text_column(ctx: Ctx) -> dict:
    frame = sensor_frame()
    frame["site"] = "A"
    return csv_params(sensor_csv(ctx, frame))


def csv_wrong_delimiter(ctx: Ctx) -> dict:
    return csv_params(sensor_csv(ctx, sep=";"), delimiter=",")


def csv_no_header(ctx: Ctx) -> dict:
    return csv_params(sensor_csv(ctx, header=False))


def csv_zero_byte(ctx: Ctx) -> dict:
    path = ctx.work / "plant.csv"
    path.write_bytes(b"")
    return csv_params(path)


def csv_truncated(ctx: Ctx) -> dict:
    path = sensor_csv(ctx)
    text = path.read_text()
    path.write_text(text[: text.rindex(",") - 3])  # cut inside the last line's second reading
    return csv_params(path)


def csv_too_many_missing(ctx: Ctx) -> dict:
    frame = sensor_frame()
    frame.loc[frame.index % 8 == 0, "flow"] = np.nan  # 12.5 % of flow readings missing
    return csv_params(sensor_csv(ctx, frame))


def sensor_path_missing(ctx: Ctx) -> dict:
    return csv_params(ctx.work / "no-such-file.csv")


def nab_refused(ctx: Ctx) -> dict:
    return {
        "sensor.ingest": {"source": "nab", "nab_base_url": ctx.refused_url, "timeout_s": 0.5, "retries": 2}
    }


# ------------------------------------------------------------------------------------------------ catalogue
@dataclass(frozen=True)
class Entry:
    """One bad input: ``corrupt`` writes it under the entry's folder and returns the params overrides.

    ``stage`` is the stage that must stop. ``validate`` entries first ingest the bad source into the entry's
    folder (that must succeed: the data is readable, it only breaks an expectation) and then validate it
    against the real report path. ``via="dvc"`` runs ``dvc repro <stage>@<use case>`` instead.
    ``expect`` fragments may use ``{work}`` for the entry's folder.
    """

    id: str
    use_case: str
    stage: str
    corrupt: Callable[[Ctx], dict]
    expect: tuple[str, ...]
    via: str = "python"
    repaired: bool = False
    absent: tuple[str, ...] = ()  # fragments the message must not contain


CATALOGUE = [
    # ---- mnist: IDX files
    Entry(
        "mnist-idx-truncated-gz",
        "mnist",
        "ingest",
        idx_truncated_gz,
        ("{work}/idx/train-images-idx3-ubyte.gz", "gzip stream is truncated or corrupt"),
        via="dvc",
    ),
    Entry(
        "mnist-idx-truncated-raw",
        "mnist",
        "ingest",
        idx_truncated_raw,
        ("{work}/idx/train-images-idx3-ubyte", "IDX header announces shape (300, 28, 28)", "truncated"),
    ),
    Entry(
        "mnist-idx-zero-byte",
        "mnist",
        "ingest",
        idx_zero_byte,
        ("{work}/idx/train-labels-idx1-ubyte.gz", "empty (0 bytes)"),
    ),
    Entry(
        "mnist-idx-foreign-file",
        "mnist",
        "ingest",
        idx_not_idx,
        ("{work}/idx/train-labels-idx1-ubyte.gz", "not an IDX file", "expected 0000 08"),
    ),
    Entry(
        "mnist-idx-nan-and-inf-pixels",
        "mnist",
        "validate",
        idx_nan_inf_pixels,
        ("{work}/raw/train.npz", "no NaN pixels", "no infinite pixels", "column 'nan_count'"),
    ),
    Entry(
        "mnist-idx-labels-outside-0-9",
        "mnist",
        "validate",
        idx_labels_out_of_range,
        ("{work}/raw/train.npz", "labels 0–9", "= 12", "value_set"),
    ),
    Entry(
        "mnist-idx-dir-missing",
        "mnist",
        "ingest",
        mnist_dir_missing,
        ("{work}/no-such-folder", "folder not found", "mnist.ingest.idx_dir"),
    ),
    Entry(
        "mnist-download-refused",
        "mnist",
        "ingest",
        mnist_mirror_refused,
        ("could not download train-images-idx3-ubyte.gz", "2 tries per mirror", "(try 2)", "source: idx"),
    ),
    Entry(
        "mnist-download-checksum-mismatch",
        "mnist",
        "ingest",
        mnist_mirror_wrong_file,
        (
            "train-images-idx3-ubyte.gz (try 1): checksum mismatch",
            "expected f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ),
        absent=("(try 2)",),  # a wrong file does not get right by asking again
    ),
    # ---- params
    Entry(
        "params-unknown-key",
        "mnist",
        "ingest",
        params_unknown_key,
        ("params.yaml", "unknown key 'mnist.ingest.max_trian'", "Did you mean 'max_train'"),
        via="dvc",
    ),
    Entry(
        "params-wrong-type",
        "mnist",
        "ingest",
        params_wrong_type,
        ("params.yaml", "'mnist.ingest.max_train' = 'lots'", "valid integer"),
    ),
    Entry(
        "params-negative-learning-rate",
        "mnist",
        "train",
        params_negative_lr,
        ("params.yaml", "'mnist.train.lr' = -0.01", "greater than 0"),
    ),
    Entry(
        "params-latent-larger-than-input",
        "mnist",
        "train",
        params_latent_too_large,
        (
            "params.yaml",
            "'mnist.model.latent_dim' = 1000",
            "784 input values one code describes",
            "undercomplete",
        ),
    ),
    # ---- speech: a folder of recordings
    Entry(
        "speech-wav-truncated",
        "speech",
        "ingest",
        wav_truncated,
        ("{work}/speech/1_carol_1.wav", "truncated", "header announces"),
    ),
    Entry(
        "speech-wav-zero-byte",
        "speech",
        "ingest",
        wav_zero_byte,
        ("{work}/speech/1_carol_1.wav", "empty (0 bytes)"),
    ),
    Entry(
        "speech-wav-not-audio",
        "speech",
        "ingest",
        wav_not_audio,
        ("{work}/speech/1_carol_1.wav", "not a readable audio file", "WAV or FLAC"),
    ),
    Entry(
        "speech-speaker-with-0.05s-only",
        "speech",
        "ingest",
        wav_speaker_too_short,
        ("speaker 'dave'", "0.05 s", "{work}/speech/0_dave_0.wav", "min_duration_s = 2 s"),
    ),
    Entry(
        "speech-dir-missing",
        "speech",
        "ingest",
        speech_dir_missing,
        ("{work}/no-such-folder", "folder not found", "speech.ingest.dir"),
    ),
    Entry(
        "speech-download-never-answers",
        "speech",
        "ingest",
        fsdd_silent,
        ("could not download fsdd.zip", "timeout 0.3 s, 2 tries per mirror", "timed out", "source: dir"),
    ),
    # ---- sensor: CSV files
    Entry(
        "sensor-csv-unsorted-is-sorted-and-recorded",
        "sensor",
        "ingest",
        csv_unsorted,
        ("repaired: sorted 2 rows that were out of time order", "row 11 (line 13)"),
        repaired=True,
    ),
    Entry(
        "sensor-csv-duplicate-timestamps",
        "sensor",
        "ingest",
        csv_duplicates,
        ("{work}/plant.csv", "2 rows share a timestamp", "column 'timestamp'", "row 19 (line 21)"),
    ),
    Entry(
        "sensor-csv-text-column",
        "sensor",
        "ingest",
        csv_text_column,
        ("{work}/plant.csv", "column 'site' is not numeric", "row 0 (line 2) = 'A'"),
    ),
    Entry(
        "sensor-csv-wrong-delimiter",
        "sensor",
        "ingest",
        csv_wrong_delimiter,
        ("{work}/plant.csv", "single column", "separated by ';'", "sensor.ingest.delimiter"),
    ),
    Entry(
        "sensor-csv-no-header",
        "sensor",
        "ingest",
        csv_no_header,
        ("{work}/plant.csv", "header", "timestamp"),
    ),
    Entry(
        "sensor-csv-zero-byte",
        "sensor",
        "ingest",
        csv_zero_byte,
        ("{work}/plant.csv", "empty"),
    ),
    Entry(
        "sensor-csv-truncated-mid-line",
        "sensor",
        "ingest",
        csv_truncated,
        ("{work}/plant.csv", "truncated", "line 401"),
        via="dvc",
    ),
    Entry(
        "sensor-csv-missing-readings-beyond-max-ratio",
        "sensor",
        "validate",
        csv_too_many_missing,
        ("{work}/raw/plant.csv", "missing ratio of column 'flow' is 0.1250", "max_missing_ratio"),
    ),
    Entry(
        "sensor-path-missing",
        "sensor",
        "ingest",
        sensor_path_missing,
        ("{work}/no-such-file.csv", "not found", "sensor.ingest.path"),
    ),
    Entry(
        "sensor-download-refused",
        "sensor",
        "ingest",
        nab_refused,
        (
            "could not download data/realKnownCause/",
            "2 tries per mirror",
            "Connection refused",
            "source: csv",
        ),
    ),
]


# ------------------------------------------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def unreachable() -> Iterator[tuple[str, str]]:
    """A bound but not listening port (connections are refused at once) and a listening socket that never
    accepts or answers (connections open, reads time out)."""
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        yield (
            f"http://127.0.0.1:{refused.getsockname()[1]}/",
            f"http://127.0.0.1:{silent.getsockname()[1]}/",
        )
    finally:
        refused.close()
        silent.close()


# ---------------------------------------------------------------------------------------------------- runs
def stage_cmd(entry: Entry, data: str | None = None, out: str | None = None) -> list[str]:
    uc = entry.use_case
    if entry.stage == "ingest":
        return [PY, "pipelines/ingest.py", "--use-case", uc, "--out", out or f"data/raw/{uc}"]
    if entry.stage == "validate":
        return [
            PY,
            "pipelines/validate.py",
            "--use-case",
            uc,
            "--data",
            data or f"data/raw/{uc}",
            "--report",
            f"data/validation/{uc}.json",
        ]
    assert entry.stage == "train" and uc == "mnist"
    return [
        PY,
        "pipelines/train.py",
        "--use-case",
        uc,
        "--data",
        f"data/raw/{uc}",
        "--validation",
        f"data/validation/{uc}.json",
        "--models",
        f"models/{uc}",
        "--plots",
        f"plots/{uc}",
        "--inputs",  # the noisy digits: read only by a denoising variant (these entries train vanilla)
        f"data/interim/{uc}",
    ]


@pytest.mark.parametrize("entry", CATALOGUE, ids=[e.id for e in CATALOGUE])
def test_bad_input_stops_cleanly_and_loses_nothing(
    entry: Entry, project: Path, tmp_path: Path, shuffled, unreachable, http_server
) -> None:
    ctx = Ctx(tmp_path, shuffled, *unreachable, http_server)
    original_params = (project / "params.yaml").read_text()
    before = snapshot(project)
    try:
        write_params(project, entry.corrupt(ctx))
        if entry.repaired:  # into the entry's folder: a successful ingest would replace the earlier output
            res = sh(project, *stage_cmd(entry, out=str(tmp_path / "raw")), check=False)
        elif entry.via == "dvc":
            res = sh(project, "dvc", "repro", f"{entry.stage}@{entry.use_case}", check=False)
        elif entry.stage == "validate":
            ingest = Entry(entry.id, entry.use_case, "ingest", entry.corrupt, ())
            pre = sh(project, *stage_cmd(ingest, out=str(tmp_path / "raw")), check=False)
            assert pre.returncode == 0, f"ingest of the bad-but-readable data failed:\n{pre.stderr[-3000:]}"
            res = sh(project, *stage_cmd(entry, data=str(tmp_path / "raw")), check=False)
        else:
            start = time.perf_counter()
            res = sh(project, *stage_cmd(entry), check=False)
            took = time.perf_counter() - start
            if "download" in entry.id:  # bounded retries with tiny timeouts: seconds, not minutes
                assert took < 30, f"the unreachable download took {took:.1f} s"
        after = snapshot(project)
        failed_reports = sorted((project / "data" / "validation").glob("*.failed.json"))
    finally:
        (project / "params.yaml").write_text(original_params)
        for f in (project / "data" / "validation").glob("*.failed.json"):
            f.unlink()

    text = res.stdout + res.stderr
    said = f"\n--- stdout+stderr of {entry.id} (exit {res.returncode}) ---\n{text[-4000:]}"
    print(said)  # shown with -rP: the catalogue doubles as a gallery of messages
    assert "Traceback" not in text, said
    if entry.repaired:  # the repair is recorded where the README says: the ingested folder's info.json
        assert res.returncode == 0, said
        text = (tmp_path / "raw" / "info.json").read_text()
        said = f"\n--- info.json of {entry.id} ---\n{text[-4000:]}"
    for fragment in entry.expect:
        assert fragment.format(work=tmp_path) in text, f"missing {fragment!r}{said}"
    for fragment in entry.absent:
        assert fragment not in text, f"unexpected {fragment!r}{said}"
    if not entry.repaired:
        assert res.returncode == (2 if entry.via == "python" else 255), said
        assert f"[aeflow:{entry.stage}] FAILED for use case '{entry.use_case}'" in text, said
        assert "Fix:" in text, said
        assert "Earlier outputs were left untouched." in text, said
    if entry.stage == "validate":
        assert [f.name for f in failed_reports] == [f"{entry.use_case}.failed.json"], failed_reports
    else:
        assert not failed_reports, failed_reports
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed by a failed stage: {changed}{said}"
    assert before["(registry)"].count('"champion"') == 1  # the registry check compares something real


def unfinished_runs(repo: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string="attributes.status = 'RUNNING'") if ids else []
    return [f"{r.info.run_name} ({r.info.run_id})" for r in runs]


def test_train_stopped_by_bad_params_leaves_no_unfinished_mlflow_run(project: Path) -> None:
    if not unfinished_runs(project):  # the catalogue entry did not run (deselected) or left nothing
        entry = next(e for e in CATALOGUE if e.id == "params-latent-larger-than-input")
        original = (project / "params.yaml").read_text()
        try:
            write_params(project, entry.corrupt(None))  # type: ignore[arg-type]
            res = sh(project, *stage_cmd(entry), check=False)
        finally:
            (project / "params.yaml").write_text(original)
        if res.returncode != 2:  # pytest.fail, not assert: only the final check may be the expected failure
            pytest.fail(f"the train stage did not stop with exit 2:\n{res.stderr[-2000:]}")
    assert not unfinished_runs(project)
