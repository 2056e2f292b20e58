"""Training while the MLflow store is down, and ``aeflow sync`` once it is back.

* The train stage (``dvc repro train@mnist``) with ``MLFLOW_TRACKING_URI`` pointing at a server that is not
  running still trains and writes every output (DVC records them), says loudly which store it could not
  reach and that ``aeflow sync`` will upload the run, registers nothing and moves no alias. ``aeflow sync``
  against the project's store then creates one run with the params, metric histories and figures, registers
  the model as a new version marked challenger (the champion stays), and deletes the pending run; a second
  sync finds nothing to do.
* A sync that fails half-way keeps the pending run and the next one continues the same MLflow run without
  duplicating metrics.
* The probe also notices a SQLite store locked by another process.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time

import pytest

from tests.reliability.test_kill import BIN, mnist_repo, run

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


def test_train_offline_then_sync(tmp_path_factory):
    from mlflow.tracking import MlflowClient

    repo = mnist_repo(tmp_path_factory, "outage")
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri)
    c.create_registered_model("aeflow-mnist")  # an earlier model: version 1, champion
    c.create_model_version("aeflow-mnist", source=str(repo / "models"))
    c.set_registered_model_alias("aeflow-mnist", "champion", "1")
    before = registry(uri)

    down = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    res = run(repo, "dvc", "repro", "train@mnist", MLFLOW_TRACKING_URI=down)
    print(f"offline train stage: {time.monotonic() - start:.1f} s")
    said = res.stdout + res.stderr
    assert f"the MLflow tracking store at {down} is unreachable" in said
    assert "aeflow sync" in said and "nothing was registered and no alias moved" in said
    assert registry(uri) == before

    info = json.loads((repo / "models/mnist/run.json").read_text())
    assert info["tracking"] == "offline" and info["run_id"] is None and info["epochs"] == 2
    pending = repo / info["pending"]
    assert pending.parent == repo / "models/.mnist.pending"
    assert {"model.pt", "pending.json", "metrics.jsonl", "params.json"} <= {p.name for p in pending.iterdir()}
    assert (repo / "models/mnist/model.pt").is_file() and len(
        list((repo / "plots/mnist/recon").iterdir())
    ) == 2
    assert "train@mnist" in (repo / "dvc.lock").read_text()  # DVC recorded the outputs
    # evaluate adds its numbers to the same (still offline) run
    run(repo, "dvc", "repro", "evaluate@mnist", MLFLOW_TRACKING_URI=down)
    assert registry(uri) == before

    # The store is back (the project's own SQLite store): upload, register, mark challenger.
    synced = run(repo, str(BIN / "aeflow"), "sync")
    assert "uploaded to sqlite:///mlflow.db" in synced.stdout, synced.stdout
    assert not pending.exists()
    exp = c.get_experiment_by_name("aeflow-mnist")
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 1
    r = runs[0]
    assert r.info.status == "FINISHED" and r.info.run_name == "mnist-vanilla-train"
    assert r.data.tags["aeflow.stage"] == "train" and r.data.params["seed"] == "42"
    val = c.get_metric_history(r.info.run_id, "val/loss")
    assert sorted(m.step for m in val) == [4, 9]  # one value per epoch of 5 batches, at Lightning's steps
    assert info["best_val_loss"] == pytest.approx(min(m.value for m in val))
    assert "test/mse" in r.data.metrics and "test/pca_mse" in r.data.metrics  # from evaluate, offline
    artifacts = {a.path for a in c.list_artifacts(r.info.run_id)}
    assert {"params.yaml", "reconstructions", "evaluation"} <= artifacts
    assert len(c.list_artifacts(r.info.run_id, "reconstructions")) == 2
    version = c.get_model_version("aeflow-mnist", "2")
    assert version.run_id == r.info.run_id
    after = c.get_registered_model("aeflow-mnist").aliases
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
