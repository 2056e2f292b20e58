"""The real DVC pipeline on a tiny config, in a temporary copy of the repository.

One ``dvc repro`` builds everything once (module fixture); the tests then check the metrics, the report,
the MLflow runs and registry, that a second repro does nothing, that bad inputs stop the pipeline without
touching earlier outputs, and finally that ``dvc exp run -S`` + ``dvc metrics diff`` show a change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from aeflow.params import RECORD_ENV
from tests.helpers import copy_project, write_idx_folder

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

TINY = {
    "ingest": {"max_train": 700, "max_test": 200},
    "model": {"channels": [8, 16], "hidden_dims": [32]},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "num_recon_images": 8, "progress_bar": False},
    "sweep": {"latent_dims": [2, 4], "epochs": 1},
    "variants": {"epochs": 1, "iwae_examples": 40, "jacobian_examples": 32, "num_generated": 20},
    "questions": {"capacity_check": True},
}


def sh(repo: Path, *cmd: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "AEFLOW_RECORD"))}
    env.update(extra)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    res = subprocess.run(
        list(cmd), cwd=repo, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
        )
    return res


TINY_SPEECH = {
    "ingest": {
        "espeak_speakers": ["en-us+m1", "en+f3", "en-gb-scotland+m4", "en-029+m2"],
        "espeak_sentences": 3,
        "test_speaker_count": 1,
        "val_speaker_count": 1,
    },
    "noise": {"snrs_db": [0, 10], "mixtures_per_clip": 1},
    "model": {"channels": [8, 16], "latent_dim": 32},
    "train": {"epochs": 2, "progress_bar": False},
    "evaluate": {"num_audio_examples": 2},
}


TINY_SENSOR = {
    "ingest": {"days": 6, "sample_minutes": 10},
    "anomalies": {"events_per_kind": 1, "min_gap": 24, "max_duration": 24},
    "windows": {"length": 16},
    "model": {"channels": [8, 16], "hidden_dims": [16], "latent_dim": 8},
    "train": {"epochs": 3, "progress_bar": False},
    "sweep": {"latent_dims": [2, 4], "epochs": 2},
}


TINY_TABULAR = {
    "ingest": {"rows": 1500},
    "model": {"hidden_dims": [16]},
    "train": {"epochs": 4},
    "evaluate": {"pyod_epochs": 2, "shown_rows": 5},
}


def set_params(
    repo: Path,
    mnist: dict,
    speech: dict | None = None,
    sensor: dict | None = None,
    tabular: dict | None = None,
) -> None:
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text())
    for use_case, sections in (
        ("mnist", mnist),
        ("speech", speech or {}),
        ("sensor", sensor or {}),
        ("tabular", tabular or {}),
    ):
        for section, values in sections.items():
            data[use_case].setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the project's tracked files with a tiny config, after one successful ``dvc repro``."""
    dest = copy_project(tmp_path_factory.mktemp("aeflow") / "repo")
    set_params(dest, TINY, TINY_SPEECH, TINY_SENSOR, TINY_TABULAR)
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-q", "-m", "tiny config")
    reads = dest.parent / "params-reads"  # what each stage read (test_each_stage_depends_on_...)
    res = sh(dest, "dvc", "repro", env={RECORD_ENV: str(reads)})
    assert "Running stage 'report'" in res.stdout
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-q", "-m", "baseline results")
    return dest


def client(repo: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


def snapshot(repo: Path) -> dict[str, str]:
    """Hash of every pipeline output, the lock file and the registry's versions and aliases."""
    out: dict[str, str] = {}
    for folder in ("data/raw", "data/validation", "models", "metrics", "results", "plots", "reports"):
        for f in sorted((repo / folder).rglob("*")):
            if f.is_file() and not f.name.endswith(".failed.json"):
                out[str(f.relative_to(repo))] = hashlib.sha256(f.read_bytes()).hexdigest()
    out["dvc.lock"] = hashlib.sha256((repo / "dvc.lock").read_bytes()).hexdigest()
    versions = client(repo).search_model_versions("name='aeflow-mnist'")
    out["registry"] = json.dumps(sorted((str(v.version), sorted(v.aliases)) for v in versions))
    return out


def lock_stage(repo: Path, stage: str) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]


# ----------------------------------------------------------------------------------------------- outputs
def _covers(declared: str, key: str) -> bool:
    return key == declared or key.startswith(declared + ".")


def test_each_stage_depends_on_exactly_the_params_it_reads(repo):
    """Every stage of the repro recorded the params.yaml keys it read (``AEFLOW_RECORD_PARAMS``): each one
    must be among the params dvc.yaml gives that stage (else a change to it would not rerun the stage),
    and each declared entry must cover a key the stage read (else a change to it reruns the stage for
    nothing: a whole experiment retrained for a setting it never reads)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    recorded: dict[str, set[str]] = {}
    for f in sorted((repo.parent / "params-reads").glob("*.json")):
        rec = json.loads(f.read_text())
        argv = rec["argv"]
        name = Path(argv[0]).stem
        if "--use-case" in argv:
            name += "@" + argv[argv.index("--use-case") + 1]
        recorded.setdefault(name, set()).update(rec["reads"])
    assert set(recorded) == set(lock), "every stage ran once with recording on"
    problems = []
    for name, reads in sorted(recorded.items()):
        declared = list(lock[name].get("params", {}).get("params.yaml", {}))
        unlisted = sorted(k for k in reads if not any(_covers(d, k) for d in declared))
        unread = sorted(d for d in declared if not any(_covers(d, k) or _covers(k, d) for k in reads))
        if unlisted:
            problems.append(f"{name} reads {unlisted} but dvc.yaml does not list them")
        if unread:
            problems.append(f"{name} lists {unread} in dvc.yaml but never reads them")
    assert not problems, "\n".join(problems)
    assert "mnist.model.latent_dim" not in json.dumps(lock["sweep_latent@mnist"]["params"])


def test_headline_metrics_are_few_and_hold_no_timings(repo):
    """`dvc exp show` lists every metric and param: the metrics files hold a few headline numbers per use
    case (the rest lies in results/, which the report renders), and no timings, which differ run to run."""
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert sorted(files) == [
        "metrics/mnist.json",
        "metrics/mnist_variants.json",
        "metrics/sensor.json",
        "metrics/speech.json",
        "metrics/tabular.json",
    ]

    def leaves(node: object, path: str = "") -> list[str]:
        if isinstance(node, dict):
            return [k for key, v in node.items() for k in leaves(v, f"{path}.{key}")]
        return [path]

    columns = [f"{f}:{k}" for f, d in files.items() for k in leaves(d["data"])]
    assert len(columns) <= 45, columns  # about ten per use case
    assert not [c for c in columns if "second" in c or "time" in c], columns
    mnist = json.loads((repo / "metrics/mnist.json").read_text())
    full = json.loads((repo / "results/mnist/evaluation/scores.json").read_text())
    assert mnist["test"]["ae"]["mse"] == full["test"]["ae"]["mse"] and mnist["latent_dim"] == 10


def test_metrics_compare_autoencoder_with_pca(repo):
    metrics = json.loads((repo / "results/mnist/evaluation/scores.json").read_text())
    assert metrics["latent_dim"] == 10 and metrics["test_rows"] == 140  # 20 % of the 700 rows held out
    for side in ("ae", "pca"):
        m = metrics["test"][side]
        assert 0 < m["mse"] < 0.2 and m["bce_nats"] > 0 and m["psnr_db"] > 5 and -1 <= m["ssim"] <= 1
    assert metrics["test"]["ae_over_pca_mse"] == pytest.approx(
        metrics["test"]["ae"]["mse"] / metrics["test"]["pca"]["mse"]
    )
    sweep = json.loads((repo / "results/mnist/sweep.json").read_text())
    assert sorted(sweep["by_k"]) == ["k2", "k4"]
    assert sweep["by_k"]["k2"]["pca_mse"] > sweep["by_k"]["k4"]["pca_mse"]
    loss = (repo / "plots/mnist/loss.csv").read_text().splitlines()
    assert loss[0].startswith("epoch,") and len(loss) == 3


def test_report_is_offline_and_complete(repo):
    html = (repo / "reports/index.html").read_text()
    assert "MNIST compression" in html and "AE against PCA at several latent sizes" in html
    images = re.findall(r'<img src="([^"]+)"', html)
    # AE-vs-PCA, loss, 2 epoch grids, sweep chart, 2 sweep strips; then per variant a latent scatter and a
    # reconstruction strip, plus denoising, generation, class histogram and VAE interpolation figures.
    # Speech: two example spectrogram figures, its loss chart and the first/last epoch snapshots.
    # Sensor: the error timeline and the per-sensor contributions of the one simulated series.
    # Questions: downstream accuracy and fit time, 2-D and 3-D code projections (the MSE-vs-k chart is
    # linked, not shown twice). Sensor: plus its AE-vs-PCA latent sweep chart. Tabular: methods against
    # each other, the columns' share of the error, its loss chart.
    assert len(images) == 1 + 1 + 2 + 1 + 2 + 5 + 2 * 5 + 4 + 2 + 2 + 2 + 1 + 3
    assert html.count('src="data:image/png;base64,') == len(set(images))  # no figure shown twice
    assert html.count('<div class="wide"><table>') == html.count("<table>")  # wide tables scroll
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//(?!127\.0\.0\.1)', html)  # nothing from the internet
    assert "epoch 001" in html and "epoch 002" in html
    for name in ("vanilla", "denoising", "sparse", "contractive", "vae"):
        assert f"<td>{name}</td>" in html
    assert "Can it generate?" in html and "IWAE NLL" in html
    for question in (
        "1. Is this just fancy PCA?",
        "2. How do I pick the latent size?",
        "3. Why are my reconstructions blurry?",
        "4. Can a vanilla autoencoder generate?",
    ):
        assert question in html
    assert '<iframe title="interactive code projection" srcdoc=' in html and "&lt;canvas" in html
    assert "Which columns made a row anomalous" in html and "Recall by kind of anomaly" in html
    for uc in ("mnist", "speech", "sensor", "tabular"):
        assert f"Promotion history of <code>aeflow-{uc}</code>" in html


def test_questions_are_answered_with_numbers(repo):
    answers = json.loads((repo / "results/mnist/questions.json").read_text())
    assert answers["latent_dim"] == 10 and answers["rule_of_thumb_k"] == 10 and answers["knee_k"] in (2, 4)
    checks = {c["check"]: c for c in answers["blurry"]["checks"]}
    assert set(checks) == {
        "latent_size",
        "loss_vs_data",
        "leakage",
        "under_training",
        "over_fitting",
        "capacity",
    }
    assert checks["leakage"]["verdict"] == "ok" and checks["leakage"]["evidence"]["exact_duplicates"] == 0
    assert checks["loss_vs_data"]["verdict"] == "ok"  # BCE on grey levels in [0, 1]
    assert checks["under_training"]["verdict"] == "skipped"  # 2 epochs: too few to measure a slope
    capacity = checks["capacity"]  # capacity_check on: a model twice as wide was trained and scored
    assert capacity["verdict"] in ("ok", "warn") and 0 < capacity["evidence"]["wider_mse"] < 0.2
    rows = {(r["features"].split(" (")[0], r["classifier"]): r for r in answers["downstream"]}
    assert len(rows) == 6 and all(0.1 < r["accuracy"] <= 1 for r in rows.values())
    assert rows[("raw pixels", "logistic regression")]["dims"] == 784
    assert rows[("AE codes", "logistic regression")]["dims"] == 10
    html = (repo / "plots/mnist/questions/codes.html").read_text()
    assert "<canvas" in html and not re.search(r"(src|href)=\"?(https?:)?//", html)
    run = client(repo).get_run(json.loads((repo / "models/mnist/run.json").read_text())["run_id"])
    assert "downstream/AE_codes_logistic_accuracy" in run.data.metrics
    assert run.data.tags["aeflow.blur.leakage"] == "ok"
    assert "questions/codes.html" in [
        a.path for a in client(repo).list_artifacts(run.info.run_id, "questions")
    ]


def test_variants_are_compared_registered_and_shown_one_row_each(repo):
    names = ["contractive", "denoising", "sparse", "vae", "vanilla"]
    folder = repo / "results/mnist/variants"
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted([*names, "summary"])
    vae = json.loads((folder / "vae.json").read_text())
    assert vae["codes"]["iwae_nll_nats"] < vae["codes"]["neg_elbo_nats"]
    sparse = json.loads((folder / "sparse.json").read_text())
    assert sparse["latent_dim"] == 64 and "mean_activation" in sparse["codes"]
    summary = json.loads((folder / "summary.json").read_text())
    assert {"noisy_input_mse", "vanilla_mse", "denoising_mse"} <= set(summary["denoising"])
    assert {"vae", "vanilla", "real_test_digits"} <= set(summary["generation"])
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    headline = next(iter(shown.values()))["data"]["metrics/mnist_variants.json"]["data"]
    assert sorted(headline) == names  # one entry per variant: test MSE, PSNR, SSIM
    assert headline["vae"]["test"] == pytest.approx({k: vae["test"][k] for k in ("mse", "psnr_db", "ssim")})
    c = client(repo)
    for name in names:
        versions = c.search_model_versions(f"name='aeflow-mnist-{name}'")
        assert [str(v.version) for v in versions] == ["1"]
        run = c.get_run(versions[0].run_id)
        assert run.data.tags["aeflow.variant"] == name and "test/jacobian_norm" in run.data.metrics


def test_every_registered_version_carries_a_signature(repo):
    """Every use case's models (and each variant's) say what they take and give, in the registry and the UI;
    a registered autoencoder answers a batch shaped as its signature says."""
    import mlflow.pyfunc
    from mlflow.models import get_model_info

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    c = client(repo)
    names = sorted(m.name for m in c.search_registered_models())
    assert {"aeflow-mnist", "aeflow-speech", "aeflow-sensor", "aeflow-tabular", "aeflow-mnist-vae"} <= set(
        names
    )
    for name in names:
        for v in c.search_model_versions(f"name='{name}'"):
            info = get_model_info(f"models:/{name}/{v.version}")
            assert info.signature is not None, f"{name} version {v.version} has no signature"
    model = mlflow.pyfunc.load_model("models:/aeflow-mnist/1")
    shape = model.metadata.get_input_schema().inputs[0].shape
    assert tuple(shape) == (-1, 1, 28, 28)
    out = model.predict(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    assert np.asarray(out).shape == (3, 1, 28, 28)


def test_mlflow_run_has_lineage_metrics_images_and_registered_model(repo):
    import mlflow.pytorch
    import torch

    c = client(repo)
    exp = c.get_experiment_by_name("aeflow-mnist")
    assert exp is not None and exp.artifact_location.startswith("file://")
    run_info = json.loads((repo / "models/mnist/run.json").read_text())
    run = c.get_run(run_info["run_id"])
    tags = run.data.tags
    head = sh(repo, "git", "rev-parse", "HEAD~1").stdout.strip()  # the commit dvc repro ran on
    assert tags["mlflow.source.git.commit"] == head and tags["aeflow.git_dirty"] == "false"
    ingest_hash = lock_stage(repo, "ingest@mnist")["outs"][0]["md5"]
    assert tags["aeflow.data_hash"] == ingest_hash and tags["aeflow.use_case"] == "mnist"
    # One `dvc repro` built everything: all of its runs, in every experiment, share one group tag.
    assert tags["aeflow.run_group"].startswith("dvc-")
    grouped = c.search_runs(
        [e.experiment_id for e in c.search_experiments()],
        f"tags.`aeflow.run_group` = '{tags['aeflow.run_group']}'",
    )
    assert {r.data.tags["aeflow.use_case"] for r in grouped} == {"mnist", "speech", "sensor", "tabular"}
    assert {r.data.tags["aeflow.stage"] for r in grouped} >= {"train", "sweep_latent"}
    assert all("params.yaml" in [a.path for a in c.list_artifacts(r.info.run_id)] for r in grouped)
    assert run.data.params["model.variant"] == "vanilla" and run.data.params["train.epochs"] == "2"
    assert len(c.get_metric_history(run.info.run_id, "val/loss")) == 2  # one value per epoch
    for key in ("test/mse", "test/pca_mse", "test/ssim", "test/ae_over_pca_mse", "train/loss"):
        assert key in run.data.metrics
    recon = [a.path for a in c.list_artifacts(run.info.run_id, "reconstructions")]
    assert recon == ["reconstructions/epoch_001.png", "reconstructions/epoch_002.png"]
    assert "params.yaml" in [a.path for a in c.list_artifacts(run.info.run_id)]
    versions = c.search_model_versions("name='aeflow-mnist'")
    assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == run.info.run_id

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    model = mlflow.pytorch.load_model("models:/aeflow-mnist/1")
    x = torch.rand(2, 1, 28, 28)
    assert model(x).shape == x.shape


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(cmd: list[str], repo: Path, base: str, env: dict | None = None, timeout: float = 90):
    """Start a server process, wait until ``<base>/health`` answers, stop it afterwards."""
    from aeflow.tracking.server import ServerError, wait_healthy

    log = repo.parent / f"server-{base.rsplit(':', 1)[1]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        try:
            wait_healthy(base, proc, log, timeout_s=timeout)
        except ServerError as exc:
            proc.kill()
            raise AssertionError(f"{cmd[:3]} did not start: {exc}") from None
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mlflow_ui_lists_the_run_and_serves_its_reconstruction_images(repo):
    """What a user sees after `mlflow ui --backend-store-uri sqlite:///mlflow.db`: runs, metrics, images."""
    import urllib.request

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        str(BIN / "mlflow"),
        "ui",
        "--backend-store-uri",
        f"sqlite:///{repo / 'mlflow.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with running(cmd, repo, base):

        def get(path: str, body: dict | None = None) -> bytes:
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.read()

        exp = json.loads(get("/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name=aeflow-mnist"))
        exp_id = exp["experiment"]["experiment_id"]
        runs = json.loads(get("/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]}))["runs"]
        train = next(
            r
            for r in runs
            if any(t["key"] == "aeflow.stage" and t["value"] == "train" for t in r["data"]["tags"])
        )
        metrics = {m["key"] for m in train["data"]["metrics"]}
        assert {"test/mse", "test/pca_mse", "val/loss", "train/loss"} <= metrics
        png = get(f"/get-artifact?path=reconstructions/epoch_002.png&run_uuid={train['info']['run_id']}")
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        models = json.loads(get("/ajax-api/2.0/mlflow/registered-models/search"))["registered_models"]
        assert "aeflow-mnist" in [m["name"] for m in models]


# ------------------------------------------------------------------------------------------------ speech
def test_speech_is_scored_per_snr_against_noisy_input_and_both_baselines(repo):
    import pandas as pd

    metrics = json.loads((repo / "results/speech/evaluation/scores.json").read_text())
    methods = {"noisy", "autoencoder", "spectral_subtraction", "spectral_gating"}
    assert set(metrics["test"]) == methods
    assert sorted(metrics["by_snr"]) == ["0dB", "10dB"] and set(metrics["by_source"]) == {"brown", "vacuum"}
    noisy = metrics["test"]["noisy"]
    assert noisy["si_sdr_improvement"] == 0 and 1.0 <= noisy["pesq"] <= 4.6 and 0 < noisy["stoi"] <= 1
    for snr, block in metrics["by_snr"].items():  # the noisy input's SI-SDR sits near the mixing SNR
        assert abs(block["noisy"]["si_sdr"] - float(snr.removesuffix("dB"))) < 1.0
    mixtures = pd.read_csv(repo / "data/interim/speech/mixtures.csv")
    test = mixtures[mixtures.split == "test"]
    assert metrics["test_mixtures"] == len(test) == test.clean_id.nunique() * 2 * 2  # clips × sources × SNRs
    assert (mixtures["measured_snr_db"] - mixtures["snr_db"]).abs().max() < 0.01
    train_speakers = set(mixtures[mixtures.split == "train"].speaker)
    assert not train_speakers & set(metrics["test_speakers"])
    assert set(mixtures[mixtures.split == "test"].source) == {"brown", "vacuum"}
    assert set(mixtures[mixtures.split == "train"].source) <= {"white", "pink", "fan"}
    scores = pd.read_csv(repo / "plots/speech/evaluation/scores.csv")
    assert list(scores.snr_db) == [0, 10] and "autoencoder_si_sdr" in scores
    assert len(list((repo / "plots/speech/recon").glob("epoch_*.png"))) == 2


def test_report_plays_speech_examples(repo):
    html = (repo / "reports/index.html").read_text()
    assert "Speech denoising" in html and "Input SNR 0dB" in html
    players = re.findall(r'<audio controls preload="none" src="data:audio/wav;base64,([^"]+)"', html)
    assert len(players) == 2 * 5  # two examples × clean, noisy, AE and both baselines
    import base64
    import io

    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(base64.b64decode(players[0])))
    assert rate == 8000 and len(audio) > 1.5 * rate


def test_speech_run_logs_audio_and_registers_a_loadable_denoiser(repo, tmp_path):
    import mlflow
    import soundfile as sf

    from aeflow.usecases.speech.enhance import SpeechDenoiser

    c = client(repo)
    run_id = json.loads((repo / "models/speech/run.json").read_text())["run_id"]
    audio = [a.path for a in c.list_artifacts(run_id, "audio")]
    assert any(p.endswith("_autoencoder.wav") for p in audio) and any(p.endswith("_clean.wav") for p in audio)
    assert [a.path for a in c.list_artifacts(run_id, "figures")]
    assert c.get_run(run_id).data.metrics["test/autoencoder/si_sdr"] is not None
    # The first registered version became champion on its own (there was none before).
    assert str(c.get_model_version_by_alias("aeflow-speech", "champion").version) == "1"
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    denoiser = SpeechDenoiser(mlflow.pytorch.load_model("models:/aeflow-speech@champion"))
    assert denoiser.rate == 8000

    # A person's own recording: 48 kHz stereo in, same rate and length out, through the CLI.
    clean, rate = sf.read(next((repo / "data/raw/speech/audio/test").glob("*.wav")), dtype="float32")
    from aeflow.usecases.speech.audio import resample

    hi = resample(clean, rate, 48000)
    noise = np.random.default_rng(0).normal(0, np.std(hi) / 3, size=(len(hi), 2))
    stereo = tmp_path / "mine.wav"
    sf.write(stereo, np.stack([hi, hi], axis=1) + noise, 48000, subtype="FLOAT")
    out = tmp_path / "clean.wav"
    res = sh(
        repo,
        str(BIN / "aeflow"),
        "denoise",
        str(stereo),
        "-o",
        str(out),
        "--model",
        "models:/aeflow-speech@champion",
    )
    assert "wrote" in res.stdout
    info = sf.info(str(out))
    assert info.samplerate == 48000 and info.channels == 1 and info.frames == len(hi)
    # The same recording piped through --stream comes out as the file did (16-bit rounding apart).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    piped = subprocess.run(
        [str(BIN / "aeflow"), "denoise", "--stream", "--model", "models:/aeflow-speech@champion"],
        cwd=repo,
        env=env,
        input=stereo.read_bytes(),
        capture_output=True,
        check=True,
    )
    streamed = np.frombuffer(piped.stdout[44:], dtype="<i2").astype(np.float32) / 32767
    filed, _ = sf.read(out, dtype="float32")
    assert len(streamed) == len(filed) and np.max(np.abs(streamed - filed)) <= 2 / 32767

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not really a wave file")
    res = sh(repo, str(BIN / "aeflow"), "denoise", str(broken), "-o", str(out), check=False)
    said = " ".join((res.stdout + res.stderr).split())  # rich wraps long lines
    assert res.returncode == 2 and "broken.wav" in said and "not a readable audio file" in said, said


# ------------------------------------------------------------------------------------------------ sensor
def test_sensor_detector_beats_nothing_and_reports_every_metric(repo):
    metrics = json.loads((repo / "results/sensor/evaluation/scores.json").read_text())
    assert metrics["events"] == {"pump": 6}  # one event of each of the six kinds
    summary = metrics["summary"]
    assert set(summary) == {"autoencoder", "isolation_forest", "rolling_zscore", "pca"}
    ae = summary["autoencoder"]
    for key in ("f1", "event_recall", "far", "roc_auc", "pr_auc", "nab_standard", "nab_reward_low_FN_rate"):
        assert ae[key] is not None, key
    assert 0 <= ae["far"] <= 1 and 0 <= ae["event_recall"] <= 1 and ae["roc_auc"] > 0.5
    run = json.loads((repo / "models/sensor/run.json").read_text())
    explanation = run["series"][0]["threshold_details"]["explanation"]
    assert f"{run['series'][0]['threshold']:.4g}"[:4] in explanation
    assert {p.name for p in (repo / "plots/sensor/evaluation").glob("*.png")} == {
        "pump_timeline.png",
        "pump_sensors.png",
    }
    # Alarms (flagged rows outside the previous alarm's cooldown) are counted per method and summed.
    per = metrics["series"]["pump"]
    assert all(isinstance(v["alarms"], int) and v["alarms"] >= 0 for v in per.values())
    assert {m: v["alarms"] for m, v in per.items()} == {m: v["alarms"] for m, v in summary.items()}
    html = (repo / "reports/index.html").read_text()
    assert "Sensor anomaly detection" in html and "The threshold" in html
    assert "so one fault pages once" in html
    # The latent sweep runs for sensor windows too (fixed input size: 5 sensors × 16 readings).
    sweep = json.loads((repo / "results/sensor/sweep.json").read_text())
    assert (
        sweep["input_size"] == 80 and sweep["rule_of_thumb_k"] == 6 and sorted(sweep["by_k"]) == ["k2", "k4"]
    )
    assert all(v["pca_mse"] > 0 and v["ae_mse"] > 0 for v in sweep["by_k"].values())
    header = (repo / "plots/sensor/evaluation/pr_autoencoder.csv").read_text().splitlines()[0]
    assert header == "recall,precision"


def test_served_detector_answers_http_and_monitor_streams(repo, tmp_path):
    import time
    import urllib.error
    import urllib.request

    import pandas as pd

    series = pd.read_csv(repo / "data/interim/sensor/series/pump.csv")
    sensors = [c for c in series.columns if c not in ("timestamp", "label")]
    c = client(repo)
    assert str(c.get_model_version_by_alias("aeflow-sensor", "champion").version) == "1"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}", PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    cmd = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/aeflow-sensor@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    rows = series[sensors].iloc[-200:]
    with running(cmd, repo, base, env=env, timeout=120):

        def post(frame: pd.DataFrame) -> list[dict]:
            body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
            req = urllib.request.Request(
                f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())["predictions"]

        answer = post(rows.reset_index(drop=True))
        assert len(answer) == 200 and {"score", "flag", "alarm", "threshold", "top_sensor"} <= set(answer[0])
        assert {f"share_{s}" for s in sensors} <= set(answer[0]) and answer[0]["top_sensor"] in sensors
        start = time.perf_counter()
        one = post(rows.iloc[:1].reset_index(drop=True))
        assert len(one) == 1 and math.isfinite(one[0]["score"]) and time.perf_counter() - start < 5
        gap = rows.iloc[:2].reset_index(drop=True).astype(object)
        gap.iloc[1, 0] = None  # a null reading: a mistake in the request, answered 400, never scored
        with pytest.raises(urllib.error.HTTPError) as exc:
            post(gap)
        assert exc.value.code == 400
        assert f"row 1, column '{sensors[0]}' is null, not a finite number" in exc.value.read().decode()

    # The same detector, online, from a CSV: constant memory, flagged times printed.
    csv = tmp_path / "readings.csv"
    series[["timestamp", *sensors]].to_csv(csv, index=False)
    res = sh(repo, str(BIN / "aeflow"), "monitor", "--model", "models/sensor", "--input", str(csv))
    flagged = [line.split("\t") for line in res.stdout.splitlines() if "\tANOMALY" in line]
    from aeflow.models.registry import load_model
    from aeflow.usecases.sensor.detector import AnomalyDetector

    folder = json.loads((repo / "models/sensor/run.json").read_text())["series"][0]["folder"]
    detector = AnomalyDetector.from_model(load_model(str(repo / "models/sensor" / folder / "model.pt")))
    scores, shares = detector.score_and_shares(series[sensors].to_numpy(dtype="float32"))
    expected = detector.flags(scores)
    assert [f[0] for f in flagged] == series["timestamp"][expected].tolist()
    alarms = detector.alarms(expected)
    assert [f[0] for f in flagged if f[3] == "ALARM"] == series["timestamp"][alarms].tolist()
    # every flagged line names its sensors, largest share first ("pressure 71%, flow 12%")
    assert [f[-1].split(" ")[0] for f in flagged] == [sensors[j] for j in shares[expected].argmax(axis=1)]
    assert f"{len(series)} rows, {int(expected.sum())} flagged, {int(alarms.sum())} alarm" in res.stderr


def test_bad_sensor_csv_stops_with_the_file_and_column_named(repo, tmp_path):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "time": pd.date_range("2026-01-01", periods=400, freq="5min").astype(str),
            "pressure": 1.0 + 0.01 * pd.Series(range(400)),
            "site": ["A"] * 400,
        }
    )
    bad = tmp_path / "plant.csv"
    frame.to_csv(bad, index=False)
    set_params(repo, {}, sensor={"ingest": {"source": "csv", "path": str(bad), "timestamp_column": "time"}})
    try:
        before, after, _ = _fails_cleanly(repo, str(bad), "site", "Fix")
        assert before == after
        frame.drop(columns="site").to_csv(bad, index=False, sep=";")
        set_params(repo, {}, sensor={"ingest": {"delimiter": ","}})
        before, after, _ = _fails_cleanly(repo, str(bad), "delimiter")
        assert before == after
    finally:
        _restore(repo)


# ----------------------------------------------------------------------------------------------- tabular
def test_tabular_detector_is_scored_beside_the_pyod_baselines_and_names_columns(repo):
    scores = json.loads((repo / "results/tabular/evaluation/scores.json").read_text())
    summary = scores["summary"]
    assert set(summary) == {"autoencoder", "isolation_forest", "ecod", "pyod_autoencoder", "pca"}
    for m in summary.values():
        assert 0 <= m["roc_auc"] <= 1 and 0 <= m["pr_auc"] <= 1 and 0 <= m["precision_at_n"] <= 1
        assert set(m["recall_by_kind"]) == {"local", "global", "dependency", "clustered"}
        assert m["threshold_explanation"].startswith("flag when the ")
    assert summary["autoencoder"]["roc_auc"] > 0.6  # 4 epochs on 1,000 rows: well above chance already
    split = scores["split"]
    assert split["protocol"] == "semi_supervised" and split["anomalies"]["train"] == 0
    assert sum(split["injected"].values()) == split["anomalies"]["test"]
    att = scores["attribution"]
    assert att["rows"] == split["injected"]["dependency"] and 0 <= att["top3_hit_rate"] <= 1
    metrics = json.loads((repo / "metrics/tabular.json").read_text())
    assert metrics["summary"]["autoencoder"]["roc_auc"] == summary["autoencoder"]["roc_auc"]
    rows = (repo / "results/tabular/evaluation/attribution.csv").read_text().splitlines()
    assert rows[0].startswith("test_row,score,kind,corrupted,feature_1,share_1,value_1") and len(rows) <= 6
    run = json.loads((repo / "models/tabular/run.json").read_text())
    logged = client(repo).get_run(run["run_id"]).data.metrics
    assert logged["test/roc_auc"] == pytest.approx(summary["autoencoder"]["roc_auc"])
    assert "test/attribution_top3_hit_rate" in logged and "baseline/ecod_roc_auc" in logged
    assert len(list((repo / "plots/tabular/recon").glob("epoch_*.png"))) == 4


def test_served_tabular_model_answers_with_columns_and_refuses_bad_rows(repo, tmp_path):
    import urllib.error
    import urllib.request

    import pandas as pd

    test = pd.read_parquet(repo / "data/interim/tabular/test.parquet")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}", PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    uri = "models:/aeflow-tabular@champion"
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local"]
    cmd += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with running(cmd, repo, base, env=env, timeout=120):

        def post(frame: pd.DataFrame, params: dict | None = None) -> list[dict]:
            payload = {
                "dataframe_split": frame.to_dict(orient="split"),
                **({"params": params} if params else {}),
            }
            req = urllib.request.Request(
                f"{base}/invocations",
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())["predictions"]

        rows = test.head(5).reset_index(drop=True)
        answer = post(rows)
        assert len(answer) == 5 and {"score", "flag", "threshold", "feature_3", "share_3"} <= set(answer[0])
        assert all(a["feature_1"] in test.columns for a in answer)
        assert set(post(rows, {"top_k": 1})[0]) == {"score", "flag", "threshold", "feature_1", "share_1"}
        for bad, words in (
            (rows.drop(columns="amount"), "missing inputs ['amount']"),
            (rows.rename(columns={"amount": "amout"}), "extra inputs: ['amout']"),
            (rows.astype({"amount": object}).assign(amount=["1.5", "lots", "2", "3", "4"]), "column amount"),
        ):
            with pytest.raises(urllib.error.HTTPError) as exc:
                post(bad)
            assert exc.value.code == 400 and words in exc.value.read().decode(), words

    # aeflow monitor scores a CSV of rows one by one and names the columns of every flagged row
    csv = tmp_path / "rows.csv"
    test.to_csv(csv, index=False)
    res = sh(repo, str(BIN / "aeflow"), "monitor", "--model", "models/tabular", "--input", str(csv))
    flagged = [line.split("\t") for line in res.stdout.splitlines() if "\tANOMALY" in line]
    from aeflow.models.registry import load_model
    from aeflow.usecases.tabular.scorer import TabularScorer

    scorer = TabularScorer.from_model(load_model(str(repo / "models/tabular/model.pt")))
    expected = scorer.score(test) > scorer.threshold
    assert [f[0] for f in flagged] == [f"row {i + 1}" for i in range(len(test)) if expected[i]]
    assert all(f[-1].split(" ")[0] in test.columns for f in flagged)
    assert f"{len(test)} rows, {int(expected.sum())} flagged" in res.stderr


def test_bad_table_stops_ingest_naming_file_column_and_row(repo, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"amount": [str(10.0 + i) for i in range(400)], "shop": ["a", "b"] * 200})
    frame.loc[123, "amount"] = "12 EUR"
    bad = tmp_path / "transactions.csv"
    frame.to_csv(bad, index=False)
    set_params(repo, {}, tabular={"ingest": {"source": "file", "path": str(bad)}})
    try:
        before, after, _ = _fails_cleanly(repo, str(bad), "column 'amount'", "row 123 (line 125)", "'12 EUR'")
        assert before == after
    finally:
        _restore(repo)


def test_second_repro_does_nothing(repo):
    res = sh(repo, "dvc", "repro")
    assert "Data and pipelines are up to date." in res.stdout
    assert "Running stage" not in res.stdout


# ----------------------------------------------------------------------------------------------- failures
def _fails_cleanly(repo: Path, *must_mention: str) -> str:
    before = snapshot(repo)
    res = sh(repo, "dvc", "repro", check=False)
    text = res.stdout + res.stderr
    assert res.returncode != 0, text[-2000:]
    for needle in must_mention:
        assert needle in text, (needle, text[-3000:])
    after = snapshot(repo)
    return before, after, text


def _restore(repo: Path) -> None:
    sh(repo, "git", "checkout", "--", "params.yaml", "dvc.lock")
    sh(repo, "dvc", "checkout", "--force")


def test_corrupt_idx_file_stops_before_anything_changes(repo, tmp_path, shuffled):
    x, y = shuffled
    folder = write_idx_folder(tmp_path / "idx", x[:500], y[:500])
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:2000])
    set_params(repo, {"ingest": {"source": "idx", "idx_dir": str(folder)}})
    try:
        before, after, _ = _fails_cleanly(repo, str(bad), "gzip stream is truncated or corrupt", "Fix:")
        assert before == after
    finally:
        _restore(repo)


def test_wrong_params_key_stops_with_a_clear_message(repo):
    set_params(repo, {"train": {"epohcs": 3}})
    try:
        before, after, _ = _fails_cleanly(
            repo, "unknown key 'mnist.train.epohcs'", "Did you mean 'epochs'", "params.yaml"
        )
        assert before == after
    finally:
        _restore(repo)


def test_dataset_missing_a_class_stops_at_validation(repo, tmp_path, shuffled):
    x, y = shuffled
    keep = y[:1500] != 3
    folder = write_idx_folder(tmp_path / "idx", x[:1500][keep], y[:1500][keep])
    set_params(repo, {"ingest": {"source": "idx", "idx_dir": str(folder)}})
    try:
        before, after, _ = _fails_cleanly(
            repo, "class 3 = 0.0", "min_class_fraction", "data/raw/mnist/train.npz"
        )
        # The new data was ingested (that stage succeeded); nothing downstream of validation moved.
        changed = {k for k in before if before[k] != after.get(k)}
        assert changed and all(k.startswith("data/raw/") or k == "dvc.lock" for k in changed), changed
        assert (repo / "data/validation/mnist.failed.json").is_file()
    finally:
        _restore(repo)
    assert np.array_equal(np.load(repo / "data/raw/mnist/train.npz")["labels"].shape, (490,))  # restored


# ----------------------------------------------------------------------------------------------- experiments
def test_a_rejected_exp_run_value_is_named_with_how_to_undo_it(repo):
    res = sh(repo, "dvc", "exp", "run", "-S", "mnist.train.lr=-0.5", check=False)
    try:
        assert res.returncode != 0
        out = res.stdout + res.stderr
        assert "'mnist.train.lr' = -0.5 is not allowed" in out
        assert "is still there" in out and "git checkout -- params.yaml" in out
        assert yaml.safe_load((repo / "params.yaml").read_text())["mnist"]["train"]["lr"] == -0.5  # as said
    finally:
        _restore(repo)


def test_exp_run_changes_latent_size_and_metrics_diff_shows_it(repo):
    res = sh(repo, "dvc", "exp", "run", "-S", "mnist.model.latent_dim=4")
    ran = set(re.findall(r"Running stage '([^']+)'", res.stdout))
    # what reads the main model's latent size, and what reads their outputs; not the sweep (a vanilla
    # AE at each size of its own), not the variants (compared at variants.latent_dim), nothing upstream
    assert ran == {
        "train@mnist",
        "evaluate@mnist",
        "answer_questions@mnist",
        "export_registry@mnist",
        "report",
    }
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--json").stdout)
    assert diff["metrics/mnist.json"]["latent_dim"] == {"old": 10, "new": 4, "diff": -6}
    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout)
    assert "latent_dim" in json.dumps(shown) and len(shown) >= 1
    # the table a person reads: what differs between the baseline and the experiment, nothing else
    header = sh(repo, "dvc", "exp", "show", "--only-changed", "--csv").stdout.splitlines()[0].split(",")
    assert "mnist.model.latent_dim" in header and len(header) <= 40, header


def test_experiment_and_baseline_runs_sit_side_by_side_in_mlflow(repo):
    """What the UI's Compare view lines up: both trainings, their params, test metrics and images."""
    c = client(repo)
    exp = c.get_experiment_by_name("aeflow-mnist")
    runs = c.search_runs(
        [exp.experiment_id], "tags.`aeflow.stage` = 'train'", order_by=["attributes.start_time ASC"]
    )
    by_k = {r.data.params["model.latent_dim"]: r for r in runs}
    assert {"auto", "4"} <= set(by_k)  # the baseline (k = auto = 10) and the -S latent_dim=4 experiment
    for r in (by_k["auto"], by_k["4"]):
        assert {"test/mse", "test/pca_mse", "val/loss"} <= set(r.data.metrics)
        assert len(c.list_artifacts(r.info.run_id, "reconstructions")) == 2
    assert by_k["auto"].data.tags["aeflow.run_group"] != by_k["4"].data.tags["aeflow.run_group"]


def test_plots_diff_compares_the_experiment_with_the_baseline(repo, tmp_path):
    """After the exp run above the workspace differs from HEAD: `dvc plots diff` shows both, offline."""
    res = sh(repo, "dvc", "plots", "diff", "HEAD", "--json")
    data = json.loads(res.stdout)["data"]
    for name in (
        "mnist_loss",
        "mnist_mse_vs_latent",
        "speech_loss",
        "sensor_pr_curves",
        "sensor_error_timeline",
    ):
        assert set(data[name][0]["revisions"]) == {"workspace", "HEAD"}, name
    pr = data["sensor_pr_curves"][0]["content"]["data"]["values"]
    assert {v["rev"] for v in pr} == {"workspace", "HEAD"} and all(0 <= float(v["recall"]) <= 1 for v in pr)
    assert any(k.startswith("plots/mnist/recon/epoch_") for k in data)  # reconstruction grids as images
    # every plot DVC finds is a chart or a figure: no run files, no audio (examples live in results/)
    assert not [k for k in data if k.endswith((".json", ".wav"))], sorted(data)
    folders = [d for d in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"] if isinstance(d, str)]
    for folder in (repo / f for f in folders if (repo / f).is_dir()):
        assert {p.suffix for p in folder.rglob("*") if p.is_file()} == {".png"}, folder
    out = tmp_path / "plots"
    sh(repo, "dvc", "plots", "diff", "HEAD", "-o", str(out))
    assert (out / "index.html").is_file()


def test_dvc_remote_is_one_setting(repo, tmp_path):
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "--local", "-d", "scratch", str(remote))
    try:
        sh(repo, "dvc", "push", "models/mnist")
        assert any(remote.rglob("*")), "nothing was pushed"
        status = sh(repo, "dvc", "status", "--cloud", "models/mnist").stdout
        assert "new:" not in status and "missing" not in status
    finally:
        sh(repo, "dvc", "remote", "remove", "--local", "scratch")


def test_exp_run_switches_the_main_variant(repo):
    sh(repo, "git", "checkout", "--", ".")  # back to the committed baseline (the last test left its exp)
    sh(repo, "dvc", "checkout", "--force")
    res = sh(repo, "dvc", "exp", "run", "-S", "mnist.model.variant=vae")
    assert "Running stage 'train@mnist'" in res.stdout
    assert "Running stage 'compare_variants@mnist'" not in res.stdout  # common model fields unchanged
    assert "Running stage 'sweep_latent@mnist'" not in res.stdout
    metrics = json.loads((repo / "metrics/mnist.json").read_text())
    assert metrics["variant"] == "vae" and metrics["test"]["codes"]["iwae_nll_nats"] > 0
    exps = json.dumps(json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout))
    assert '"vae"' in exps and "iwae_nll_nats" in exps
