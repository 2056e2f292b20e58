"""Training while the MLflow store is down, and ``aeflow sync`` once it is back, for every use case (mnist,
speech, sensor: every train stage goes through the one training service).

* The train stage (``dvc repro train@<use case>``) with ``MLFLOW_TRACKING_URI`` pointing at a server that is
  not running still trains and writes every output (DVC records them), says loudly which store it could not
  reach and that ``aeflow sync`` will upload the run, registers nothing and moves no alias. ``aeflow sync``
  against the project's store then creates one run with the params, metric histories and figures, registers
  the model as a new version marked challenger (the champion stays), with the registrar the training named
  (sensor: the detector pyfunc; mnist, speech: a PyTorch model), and deletes the pending run; a second sync
  finds nothing to do.
* A sync that fails half-way keeps the pending run and the next one continues the same MLflow run without
  duplicating metrics.
* The probe also notices a SQLite store locked by another process.
"""

from __future__ import annotations

import json
import math
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reliability.test_kill import BIN, FAST, USE_CASES, epochs, first_job, project_repo, run, run_info

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry(uri: str) -> str:
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    state = []
    for model in c.search_registered_models():
        versions = sorted(str(v.version) for v in c.search_model_versions(f"name='{model.name}'"))
        state.append((model.name, dict(sorted(model.aliases.items())), versions))
    return json.dumps(sorted(state))


#: What evaluate logs (offline) into each use case's training run; the artifact folders the synced run has.
EVALUATE_METRICS = {
    "mnist": {"test/mse", "test/pca_mse"},
    "speech": {"test/autoencoder/si_sdr_improvement", "test/ae_gain_over_best_classical_db"},
    "sensor": {"test/pr_auc", "test/roc_auc"},
}
ARTIFACTS = {
    # per-epoch figures (train) + metrics and figures (evaluate); sensor draws no per-epoch figure
    "mnist": {"params.yaml", "reconstructions", "evaluation"},
    "speech": {"params.yaml", "reconstructions", "evaluation", "figures", "audio"},
    "sensor": {"params.yaml", "evaluation", "figures"},
}


def run_name(use_case: str, job: dict[str, Any]) -> str:
    if use_case == "sensor":  # one run per series
        return f"sensor-{job['folder']}-vanilla-train"
    return {"mnist": "mnist-vanilla-train", "speech": "speech-denoising-train"}[use_case]


def batches_per_epoch(use_case: str, job: dict[str, Any]) -> int:
    """Optimizer steps per epoch: mnist's 320 training digits in batches of 64; speech's patches and
    sensor's windows, as run.json counts them."""
    if use_case == "mnist":
        return 5
    count = job["train_patches"] if use_case == "speech" else job["train_windows"]
    return math.ceil(count / FAST[use_case]["train"]["batch_size"])


def flavors(repo: Path, source: str) -> set[str]:
    """The MLflow flavours of the logged model a registered version points at (``models:/m-...``)."""
    model_id = source.removeprefix("models:/")
    found = list(repo.glob(f"mlartifacts/**/{model_id}/artifacts/MLmodel"))
    assert len(found) == 1, (source, found)
    return set(yaml.safe_load(found[0].read_text())["flavors"])


@pytest.mark.parametrize("use_case", USE_CASES)
def test_train_offline_then_sync(tmp_path_factory, use_case):
    from mlflow.tracking import MlflowClient

    uc = use_case
    name = f"aeflow-{uc}"
    repo = project_repo(tmp_path_factory, uc, "outage")
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri)
    c.create_registered_model(name)  # an earlier model: version 1, champion
    c.create_model_version(name, source=str(repo / "models"))
    c.set_registered_model_alias(name, "champion", "1")
    before = registry(uri)

    down = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    res = run(repo, "dvc", "repro", f"train@{uc}", MLFLOW_TRACKING_URI=down)
    print(f"{uc}: offline train stage: {time.monotonic() - start:.1f} s")
    said = res.stdout + res.stderr
    assert f"the MLflow tracking store at {down} is unreachable" in said
    assert "aeflow sync" in said and "nothing was registered and no alias moved" in said
    assert registry(uri) == before

    info = run_info(repo, uc)
    job = first_job(info)  # sensor: the series' own fields (epochs, folder, ...) are in run.json's series
    assert info["tracking"] == "offline" and info["run_id"] is None and job["epochs"] == epochs(uc)
    assert job["tracking"] == "offline" and job["pending"] == info["pending"]
    pending = repo / info["pending"]
    assert pending.parent == repo / f"models/.{uc}.pending"
    assert {"model.pt", "pending.json", "metrics.jsonl", "params.json"} <= {p.name for p in pending.iterdir()}
    assert (repo / f"models/{uc}" / job.get("folder", "") / "model.pt").is_file()
    per_epoch = len(info["series"]) if uc == "sensor" else epochs(uc)  # sensor: a loss_<series>.csv each
    assert len(list((repo / f"plots/{uc}/recon").iterdir())) == per_epoch
    assert f"train@{uc}" in (repo / "dvc.lock").read_text()  # DVC recorded the outputs
    # evaluate adds its numbers to the same (still offline) run
    start = time.monotonic()
    run(repo, "dvc", "repro", f"evaluate@{uc}", MLFLOW_TRACKING_URI=down)
    print(f"{uc}: offline evaluate stage: {time.monotonic() - start:.1f} s")
    assert registry(uri) == before

    # The store is back (the project's own SQLite store): upload, register, mark challenger.
    start = time.monotonic()
    synced = run(repo, str(BIN / "aeflow"), "sync")
    print(f"{uc}: sync: {time.monotonic() - start:.1f} s")
    assert "uploaded to sqlite:///mlflow.db" in synced.stdout, synced.stdout
    assert not pending.exists()
    exp = c.get_experiment_by_name(name)
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 1
    r = runs[0]
    assert r.info.status == "FINISHED" and r.info.run_name == run_name(uc, job)
    assert r.data.tags["aeflow.stage"] == "train" and r.data.params["seed"] == "42"
    val = c.get_metric_history(r.info.run_id, "val/loss")
    n = batches_per_epoch(uc, job)  # one value per epoch, at Lightning's steps
    assert sorted(m.step for m in val) == [n * e - 1 for e in range(1, epochs(uc) + 1)]
    assert job["best_val_loss"] == pytest.approx(min(m.value for m in val))
    assert EVALUATE_METRICS[uc] <= set(r.data.metrics)  # from evaluate, offline
    artifacts = {a.path for a in c.list_artifacts(r.info.run_id)}
    assert ARTIFACTS[uc] <= artifacts, artifacts
    if "reconstructions" in ARTIFACTS[uc]:
        assert len(c.list_artifacts(r.info.run_id, "reconstructions")) == epochs(uc)
    version = c.get_model_version(name, "2")
    assert version.run_id == r.info.run_id
    # registered through the job's registrar: sensor's detector pyfunc, a PyTorch model otherwise
    assert ("pytorch" in flavors(repo, version.source)) == (uc != "sensor")
    assert "python_function" in flavors(repo, version.source)
    after = c.get_registered_model(name).aliases
    assert {k: str(v) for k, v in after.items()} == {"champion": "1", "challenger": "2"}

    state = registry(uri)
    again = run(repo, str(BIN / "aeflow"), "sync")
    assert "nothing to sync" in again.stdout
    assert registry(uri) == state and len(c.search_runs([exp.experiment_id])) == 1


def test_interrupted_sync_continues_the_same_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from aeflow import tracking
    from aeflow.config import TrackingParams
    from aeflow.models.registry import build_model, save_model
    from aeflow.tracking.offline import PendingLogger, find_pending, sync

    params = TrackingParams(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=str(tmp_path / "artifacts")
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", params.tracking_uri)  # mlflow.set_tracking_uri sets it anyway
    folder = tmp_path / "models" / ".mnist.pending" / "20250101T000000-abcdef"
    logger = PendingLogger(folder, {"experiment_name": "aeflow-mnist", "run_name": "r", "tags": {"t": "1"}})
    logger.log_hyperparams({"seed": 1, "model": {"latent_dim": 4}})
    for step in range(3):
        logger.log_metrics({"val/loss": 1.0 / (step + 1)}, step)
    with (folder / "metrics.jsonl").open("a") as fh:
        fh.write('{"key": "val/loss", "val')  # a line cut short by a kill
    model = build_model({"architecture": "mlp", "hidden_dims": [8], "latent_dim": 4}, [1, 28, 28])
    save_model(model, str(tmp_path / "model.pt"))
    logger.set_register(tmp_path / "model.pt", "mnist", "test model")
    logger.finalize("success")
    assert find_pending(tmp_path / "models") == [folder]

    def broken(*args, **kwargs):
        raise ConnectionError("store went away")

    register = tracking.log_and_register_model
    monkeypatch.setattr(tracking, "log_and_register_model", broken)
    with pytest.raises(ConnectionError):
        sync(params, folder)
    first = json.loads((folder / "pending.json").read_text())["synced_run_id"]
    monkeypatch.setattr(tracking, "log_and_register_model", register)

    done = sync(params, folder)
    c = MlflowClient(tracking_uri=params.tracking_uri)
    assert done["run_id"] == first and not folder.exists()
    history = [(m.step, m.value) for m in c.get_metric_history(first, "val/loss")]
    assert sorted(history) == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert c.get_run(first).data.params == {"seed": "1", "model/latent_dim": "4"}
    assert done["aliases"] == {"challenger": "1", "champion": "1"}


def test_probe_names_a_locked_sqlite_store(tmp_path, monkeypatch):
    from aeflow.config import TrackingParams
    from aeflow.tracking import store_problem

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    db = tmp_path / "mlflow.db"
    params = TrackingParams(tracking_uri=f"sqlite:///{db}")
    assert store_problem(params) is None  # creates the store
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        problem = store_problem(params, timeout_s=0.5)
    finally:
        holder.rollback()
        holder.close()
    assert problem is not None and "locked" in problem and str(db) in problem
    missing = TrackingParams(tracking_uri=f"sqlite:///{tmp_path / 'no' / 'such' / 'mlflow.db'}")
    assert "does not exist" in (store_problem(missing) or "")
    assert store_problem(TrackingParams(tracking_uri=f"http://127.0.0.1:{closed_port()}")) is not None
