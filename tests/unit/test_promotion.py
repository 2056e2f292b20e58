"""The gate's decision rule, the retrain lock, landing folders and the shipped schedule definitions."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aeflow.errors import AeflowError
from aeflow.params import ProjectParams as Params
from aeflow.sections import GateParams
from aeflow.stages import retrain
from aeflow.tracking import RUN_GROUP_ENV, run_group
from aeflow.tracking.promotion import decide

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("gate", "challenger", "champion", "promote"),
    [
        (GateParams(metric="test/mse", mode="min", margin=0.01), 0.0180, 0.0200, True),  # 10 % lower
        (GateParams(metric="test/mse", mode="min", margin=0.01), 0.0199, 0.0200, False),  # 0.5 %: noise
        (GateParams(metric="test/mse", mode="min", margin=0.01), 0.0300, 0.0200, False),  # worse
        (GateParams(metric="test/mse", mode="min", margin=0.0), 0.0200, 0.0200, False),  # a tie never wins
        (GateParams(metric="x", mode="max", margin=0.1, margin_type="absolute"), 7.65, 7.50, True),
        (GateParams(metric="x", mode="max", margin=0.1, margin_type="absolute"), 7.55, 7.50, False),
        (GateParams(metric="x", mode="max", margin=0.1, margin_type="absolute"), 7.0, None, True),  # first
    ],
)
def test_gate_promotes_only_by_the_margin(gate, challenger, champion, promote):
    d = decide(challenger, champion, gate)
    assert d.promote is promote
    if champion is not None:
        better = champion - challenger if gate.mode == "min" else challenger - champion
        assert d.improvement == pytest.approx(better)
        assert gate.metric in d.reason


def test_every_use_case_has_a_gate_on_a_metric_its_scorer_produces():
    p = Params()
    assert p.mnist.promotion.metric == "test/mse" and p.mnist.promotion.mode == "min"
    assert p.speech.promotion.metric == "test/si_sdr_improvement" and p.speech.promotion.mode == "max"
    assert p.sensor.promotion.metric == "test/pr_auc"


def test_lock_refuses_a_second_holder_and_frees_itself_when_the_holder_dies(tmp_path):
    lock = tmp_path / "retrain.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from pathlib import Path; from aeflow.stages.retrain import lock\n"
            f"with lock(Path({str(lock)!r})):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = pytest.raises(retrain.Busy, match=rf"another retrain is running \(pid {holder.pid}")
        with busy, retrain.lock(lock):
            pass
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs, yet the kernel drops the flock
        holder.wait()
    with retrain.lock(lock):
        assert f"pid {os.getpid()}" in lock.read_text()


def test_landing_files_move_into_a_folder_source(tmp_path):
    source = tmp_path / "recordings"
    source.mkdir()
    (source / "0_old_0.wav").write_bytes(b"old")
    landing = tmp_path / "landing"
    (landing / "speech" / "new").mkdir(parents=True)
    (landing / "speech" / "new" / "1_ann_0.wav").write_bytes(b"new")
    p = Params.model_validate({"speech": {"ingest": {"source": "dir", "dir": str(source)}}})
    moved = retrain.take_landing(p, "speech", landing, tmp_path)
    assert moved == [str((source / "new" / "1_ann_0.wav").resolve())]
    assert (source / "new" / "1_ann_0.wav").read_bytes() == b"new"
    assert not (landing / "speech" / "new" / "1_ann_0.wav").exists()
    assert retrain.take_landing(p, "speech", landing, tmp_path) == []  # nothing new: nothing moves
    # A generated source cannot take files: the message names the key to set.
    (landing / "sensor").mkdir()
    (landing / "sensor" / "pump.csv").write_text("timestamp,value\n")
    with pytest.raises(AeflowError, match=r"sensor\.ingest\.path"):
        retrain.take_landing(Params(), "sensor", landing, tmp_path)


def test_run_group_comes_from_the_environment_or_the_dvc_ancestor(monkeypatch):
    monkeypatch.setenv(RUN_GROUP_ENV, "retrain-x")
    assert run_group() == "retrain-x"
    monkeypatch.delenv(RUN_GROUP_ENV)
    assert run_group() == "none"  # pytest was not started by dvc
    # A stage started by a `dvc` process finds it: here a process whose argv[0] is "dvc" starts Python.
    code = "from aeflow.tracking import run_group; print(run_group())"
    inner = f"import subprocess; subprocess.run(['{sys.executable}', '-c', '{code}'])"
    res = subprocess.run(
        ["bash", "-c", f'exec -a dvc {sys.executable} -c "{inner}"'], capture_output=True, text=True
    )
    assert re.fullmatch(r"dvc-.+-\d+-\d+", res.stdout.strip()), res.stdout + res.stderr


# ------------------------------------------------------------------------------------ schedule definitions
def test_crontab_line_runs_exactly_aeflow_retrain():
    lines = [
        line
        for line in (REPO / "deploy/cron/aeflow-retrain.cron").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    for value, (lo, hi) in zip(fields[:5], [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)], strict=True):
        assert value == "*" or lo <= int(value) <= hi, fields
    assert re.search(r"(^|[ /])aeflow retrain( |$)", fields[5])


def test_systemd_units_run_aeflow_retrain_on_a_timer():
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str
    service.read(REPO / "deploy/systemd/aeflow-retrain.service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].endswith("/aeflow retrain")
    assert set(service["Service"]["SuccessExitStatus"].split()) == {"3", "4"}  # kept / busy are not failures
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.optionxform = str
    timer.read(REPO / "deploy/systemd/aeflow-retrain.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"


def test_ci_workflow_is_scheduled_and_calls_aeflow_retrain():
    wf = yaml.safe_load((REPO / ".github/workflows/retrain.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["schedule"][0]["cron"].count(" ") == 4
    steps = wf["jobs"]["retrain"]["steps"]
    run = "\n".join(s.get("run", "") for s in steps)
    assert ".venv/bin/aeflow retrain" in run and '"$code" -eq 3' in run


# ------------------------------------------------------------------------------------------ gate lease
def _registry(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    from aeflow.sections import TrackingParams

    tracking = TrackingParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    MlflowClient(tracking_uri=tracking.tracking_uri).create_registered_model("aeflow-x")
    return tracking


def test_gate_lease_lets_one_holder_at_a_time_and_a_dead_holders_lease_expires(tmp_path):
    import threading
    import time

    from aeflow.tracking import client
    from aeflow.tracking.promotion import LEASE, LeaseTimeout, gate_lease

    tracking = _registry(tmp_path)
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait()
        with gate_lease(tracking, "aeflow-x", settle_s=0.05):
            order.append("second in")

    waiter = threading.Thread(target=second)
    waiter.start()
    with gate_lease(tracking, "aeflow-x", settle_s=0.05) as token:
        inside.set()
        time.sleep(0.8)  # the second gate is waiting meanwhile
        held = client(tracking).get_registered_model("aeflow-x").tags[LEASE]
        assert held.startswith(token + "@")
        order.append("first out")
    waiter.join(timeout=30)
    assert order == ["first out", "second in"]
    assert LEASE not in client(tracking).get_registered_model("aeflow-x").tags  # released
    # a holder that died leaves its lease; it is taken over once expired, and not before
    client(tracking).set_registered_model_tag("aeflow-x", LEASE, f"gone:1:abc@{time.time() + 60:.0f}")
    with (
        pytest.raises(LeaseTimeout, match=r"aeflow-x: another gate holds the promotion lease"),
        gate_lease(tracking, "aeflow-x", wait_s=0.3, settle_s=0.05),
    ):
        pass
    client(tracking).set_registered_model_tag("aeflow-x", LEASE, f"gone:1:abc@{time.time() - 1:.0f}")
    with gate_lease(tracking, "aeflow-x", wait_s=5, settle_s=0.05):
        pass


def test_retrain_gates_the_version_its_own_training_registered(tmp_path):
    from aeflow.io import write_json
    from aeflow.layout import Layout

    p = Params()
    run_file = Layout("mnist", tmp_path).run_file
    assert retrain.trained_version(p, "mnist", tmp_path) is None  # nothing trained: gate @challenger
    run_file.parent.mkdir(parents=True)
    uri = p.tracking.resolved_uri()
    write_json(run_file, {"registered_model": "aeflow-mnist", "version": "7", "tracking_uri": uri})
    assert retrain.trained_version(p, "mnist", tmp_path) == "7"
    write_json(
        run_file, {"registered_model": "aeflow-mnist", "version": "7", "tracking_uri": "http://elsewhere"}
    )
    assert retrain.trained_version(p, "mnist", tmp_path) is None  # registered in another store
