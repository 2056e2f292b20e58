"""A team's tracking stack for real: ``aeflow server`` (MLflow on a PostgreSQL cluster, Debian's package
installed when missing) with retraining, racing gates and concurrent writers against it.

One server for the module, started the way a user starts it (``aeflow server --port … --folder …``) in a
copy of the project with a tiny MNIST config; stopped at the end, which must also stop PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from aeflow.tracking.server import DATABASE_ENV, ServerError, free_port, wait_healthy
from tests.helpers import copy_project
from tests.pipeline.test_dvc_pipeline import BIN, TINY, set_params, sh

pytestmark = pytest.mark.slow

MODEL = "aeflow-mnist"


@dataclass
class Stack:
    repo: Path
    base: str
    folder: Path  # aeflow server --folder: the cluster (postgres/) and the server log
    proc: subprocess.Popen

    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.base}

    def aeflow(self, *args: str) -> subprocess.CompletedProcess:
        return sh(self.repo, str(BIN / "aeflow"), *args, check=False, env=self.env())

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.base)

    def sql(self, query: str) -> list[tuple]:
        """Ask PostgreSQL itself (over the cluster's Unix socket), not the server."""
        import psycopg

        with psycopg.connect(host=str(self.folder / "postgres"), dbname="mlflow", user="aeflow") as conn:
            return conn.execute(query).fetchall()


def start_server(repo: Path, folder: Path, port: int, log: Path) -> subprocess.Popen:
    """``aeflow server`` as a user starts it; returns once it said how to use it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != DATABASE_ENV}
    said_before = log.read_text().count("export MLFLOW_TRACKING_URI") if log.is_file() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "aeflow"), "server", "--port", str(port), "--folder", str(folder),
             "--artifacts", str(folder.parent / "artifacts")],
            cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        # the first start may install PostgreSQL (apt-get) and creates MLflow's tables
        wait_healthy(f"http://127.0.0.1:{port}", proc, log, timeout_s=600)
    except ServerError as exc:
        proc.kill()
        pytest.fail(f"aeflow server did not come up: {exc}\n{log.read_text()[-3000:]}")
    deadline = time.monotonic() + 30  # ready for the user once it says how to use it
    while log.read_text().count("export MLFLOW_TRACKING_URI") == said_before and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc


def stop_server(stack: Stack) -> None:
    """SIGTERM, as systemd stops it: a clean exit that takes PostgreSQL down too."""
    log = stack.repo.parent / "aeflow-server.out"
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=90) == 0, log.read_text()[-3000:]
    assert not (stack.folder / "postgres/data/postmaster.pid").exists(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    root = tmp_path_factory.mktemp("pgstack")
    repo = copy_project(root / "repo")
    set_params(repo, TINY)
    set_params(repo, {"train": {"epochs": 1, "lr": 1e-4}})  # a weak first champion; a better one follows
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "tiny config")
    folder, port = root / "server", free_port()
    stack = Stack(
        repo, f"http://127.0.0.1:{port}", folder, start_server(repo, folder, port, root / "aeflow-server.out")
    )
    yield stack
    stop_server(stack)


def test_server_runs_on_postgresql_bound_to_localhost(stack):
    said = (stack.repo.parent / "aeflow-server.out").read_text()
    assert f"export MLFLOW_TRACKING_URI={stack.base}" in said and "PostgreSQL in" in said
    (version,) = stack.sql("SHOW server_version")[0]
    assert int(version.split(".")[0]) >= 13
    # the cluster listens on no TCP port at all; the MLflow server only on 127.0.0.1
    assert stack.sql("SHOW listen_addresses") == [("",)]
    commands = [
        Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ") for child in _children(stack.proc.pid)
    ]
    assert any("mlflow server" in c and "--host 127.0.0.1" in c for c in commands), commands


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_retrain_and_promote_land_in_postgresql(stack):
    res = stack.aeflow("retrain", "--use-case", "mnist", "--no-report")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mnist: PROMOTED" in res.stdout
    c = stack.client()
    experiment = c.get_experiment_by_name("aeflow-mnist")
    runs = c.search_runs([experiment.experiment_id], "tags.`aeflow.stage` = 'train'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    # metrics with their history, params, and artifacts served through the server's artifact proxy
    losses = [k for k in run.data.metrics if "loss" in k]
    assert losses and all(c.get_metric_history(run.info.run_id, k) for k in losses)
    assert run.data.params
    logged = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert logged, "the training run logged no artifacts"
    # versions and aliases in the registry
    assert {k: str(v) for k, v in c.get_registered_model(MODEL).aliases.items()} == {
        "champion": "1",
        "challenger": "1",
    }
    assert c.get_model_version(MODEL, "1").tags["aeflow.gate.decision"] == "promoted"
    # ... and all of it is in PostgreSQL's tables, not somewhere else
    assert stack.sql(f"SELECT count(*) FROM runs WHERE experiment_id = {experiment.experiment_id}")[0][0] >= 1
    assert ("champion", 1) in stack.sql(
        f"SELECT alias, version FROM registered_model_aliases WHERE name = '{MODEL}'"
    )
    metric_rows = stack.sql(f"SELECT count(*) FROM metrics WHERE run_uuid = '{run.info.run_id}'")[0][0]
    assert metric_rows == sum(len(c.get_metric_history(run.info.run_id, k)) for k in run.data.metrics)


def test_racing_gates_decide_one_after_the_other(stack):
    """Two gates for two new versions at once: the second must be judged against the champion the first
    left, so exactly one is promoted; each decision is recorded on its version."""
    set_params(stack.repo, {"train": {"epochs": 3, "lr": 0.01}})  # better than the weak champion v1
    sh(stack.repo, "dvc", "repro", "train@mnist", env=stack.env())
    c = stack.client()
    v2 = c.get_model_version(MODEL, "2")
    # a second candidate as another machine's retrain would register it (same weights as v2)
    import mlflow

    mlflow.set_tracking_uri(stack.base)
    v3 = mlflow.register_model(v2.source, MODEL)  # its logged model, registered once more
    assert str(v3.version) == "3"
    while c.get_model_version(MODEL, "3").status != "READY":
        time.sleep(0.2)
    gates = [
        subprocess.Popen(
            [str(BIN / "aeflow"), "promote", "--use-case", "mnist", "--version", v],
            cwd=stack.repo,
            env={**_clean_env(), **stack.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        for v in ("2", "3")
    ]
    outs = [g.communicate(timeout=300) for g in gates]
    codes = sorted(g.returncode for g in gates)
    assert codes == [0, 3], outs  # one promoted, one kept: not both promoted against the old v1
    records = {v: json.loads(o[: o.rindex("}") + 1]) for v, (o, _) in zip(("2", "3"), outs, strict=True)}
    (won,) = [v for v, r in records.items() if r["decision"] == "promoted"]
    (lost,) = [v for v, r in records.items() if r["decision"] == "kept"]
    assert records[won]["champion_version"] == "1"
    assert records[lost]["champion_version"] == won  # judged against the new champion
    aliases = {k: str(v) for k, v in c.get_registered_model(MODEL).aliases.items()}
    assert aliases["champion"] == won
    for v, decision in ((won, "promoted"), (lost, "kept")):
        tags = c.get_model_version(MODEL, v).tags
        assert tags["aeflow.gate.decision"] == decision, (v, tags)
    assert "aeflow.gate.lease" not in (c.get_registered_model(MODEL).tags or {})


def test_eight_concurrent_writers_lose_nothing(stack):
    from benchmarks.tracking_load import load

    began = time.monotonic()
    result = load(stack.base, writers=8, values=400, batch=50, params=10)
    assert time.monotonic() - began < 60
    assert result["values"] == 3200 and len(result["runs"]) == 8
    counts = {k: result[k] for k in ("lost", "duplicated", "wrong_value", "params_missing", "artifacts_bad")}
    assert counts == dict.fromkeys(counts, 0), counts
    # the server stored every value exactly once in PostgreSQL too
    ids = "', '".join(result["runs"].values())
    assert stack.sql(f"SELECT count(*) FROM metrics WHERE run_uuid IN ('{ids}')")[0][0] == 3200


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "AEFLOW_RECORD"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_a_server_stopped_mid_run_is_caught_up_by_sync(stack):
    """The server goes down while a training runs: training finishes (the rest of its run kept offline),
    and once the server is back `aeflow sync` appends it to the *same* run and registers the model."""
    c = stack.client()
    experiment_id = c.get_experiment_by_name("aeflow-mnist").experiment_id
    before = {r.info.run_id for r in c.search_runs([experiment_id])}
    set_params(stack.repo, {"train": {"epochs": 30, "batch_size": 16}})
    training = subprocess.Popen(
        [str(BIN / "dvc"), "repro", "train@mnist"], cwd=stack.repo, env={**_clean_env(), **stack.env()},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline, run_id = time.monotonic() + 300, None
    while run_id is None:  # wait for the run's first epoch on the server, then pull the plug
        assert time.monotonic() < deadline and training.poll() is None, (
            "training ended before the test stopped the server"
        )
        new = [r for r in c.search_runs([experiment_id]) if r.info.run_id not in before and r.data.metrics]
        run_id = new[0].info.run_id if new else None
        time.sleep(0.3)
    online = {k: len(c.get_metric_history(run_id, k)) for k in c.get_run(run_id).data.metrics}
    stop_server(stack)
    said, _ = training.communicate(timeout=600)
    assert training.returncode == 0, said[-4000:]
    assert "the MLflow store failed during the run" in said and "aeflow sync" in said
    run = json.loads((stack.repo / "models/mnist/run.json").read_text())
    assert run["tracking"] == "offline" and (stack.repo / run["pending"]).is_dir()

    port = int(stack.base.rsplit(":", 1)[1])
    stack.proc = start_server(stack.repo, stack.folder, port, stack.repo.parent / "aeflow-server.out")
    res = stack.aeflow("sync")
    assert res.returncode == 0, res.stdout + res.stderr
    c = stack.client()
    assert {r.info.run_id for r in c.search_runs([experiment_id])} - before == {
        run_id
    }  # the same run, no new one
    synced = c.get_run(run_id)
    assert synced.info.status == "FINISHED"
    for key in set(synced.data.metrics) - {"epoch"}:  # Lightning logs `epoch` with train and val metrics
        steps = [m.step for m in c.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)  # nothing logged twice, online and synced
    per_epoch = {k: len(c.get_metric_history(run_id, k)) for k in synced.data.metrics if "loss" in k}
    assert 30 in per_epoch.values(), per_epoch  # every epoch is there ...
    assert all(online.get(k, 0) < 30 for k in per_epoch), online  # ... though the server saw only the first
    versions = [v for v in c.search_model_versions(f"name='{MODEL}'") if v.run_id == run_id]
    assert len(versions) == 1  # registered by the sync, from the same run
