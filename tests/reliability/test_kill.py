"""``dvc repro --force train@mnist`` killed with SIGKILL (the whole process group: DVC and the stage) at
seeded random points leaves every earlier output, ``dvc.lock`` and the registry's aliases exactly as they
were; what the killed processes leave behind is invisible to DVC; the next run cleans it up, continues the
killed training from its last checkpoint and ends with the weights an uninterrupted run has.

The kill points, each a seeded random delay after an event of the stage, cover its phases: while Python and
DVC start (nothing written yet), during training (temporary output folders and a resume checkpoint exist),
and while the model is logged and registered in MLflow (the last step before outputs are committed).

The tiny-MNIST project copy used here (and by ``test_determinism`` / ``test_outage``) is built once per
session: tracked files, a small MLP config, ``dvc repro inject_noise@mnist``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import copy_project
from tests.pipeline.test_dvc_pipeline import BIN, TINY, set_params

pytestmark = pytest.mark.slow

#: Small and fast: an MLP on 320 training digits, 2 epochs (the pipeline tests use the conv model).
FAST = {
    "ingest": {**TINY["ingest"], "max_train": 400, "max_test": 100},
    "model": {"architecture": "mlp", "hidden_dims": [32]},
    "train": {**TINY["train"], "num_recon_images": 4},
    "variants": TINY["variants"],
}
LEFTOVER = re.compile(r"^\..+\.(\d+)\.(?:.+\.tmp|old)$")  # what io.atomic_file/atomic_dir leave when killed


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    out.update(
        PATH=f"{BIN}{os.pathsep}{out.get('PATH', '')}",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    out.update(extra)
    return out


def run(repo: Path, *cmd: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    res = subprocess.run(
        list(cmd), cwd=repo, env=env(**extra), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
        )
    return res


def mnist_repo(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh copy of the project with the FAST config and its mnist data stages already run."""
    base = tmp_path_factory.getbasetemp() / "aeflow-mnist-base"
    if not (base / "dvc.lock").is_file():
        shutil.rmtree(base, ignore_errors=True)
        copy_project(base, skip=("tests/", "benchmarks/", "models/", "data/"))
        set_params(base, FAST)
        run(base, "git", "init", "-q")
        run(base, "git", "add", "-A")
        run(base, "git", "commit", "-q", "-m", "fast mnist config")
        run(base, "dvc", "repro", "inject_noise@mnist")
    dest = tmp_path_factory.mktemp(name) / "repo"
    shutil.copytree(base, dest, symlinks=True)
    return dest


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(repo: Path) -> dict[str, str]:
    """Hash of every file of the DVC outputs involved (train's and its inputs) and of dvc.lock."""
    out = {"dvc.lock": sha(repo / "dvc.lock")}
    for folder in ("data", "models/mnist", "plots/mnist/recon"):
        for f in sorted((repo / folder).rglob("*")):
            if f.is_file():
                out[f.relative_to(repo).as_posix()] = sha(f)
    out["plots/mnist/loss.csv"] = sha(repo / "plots/mnist/loss.csv")
    return out


def registry(repo: Path) -> tuple[dict[str, str], int]:
    """The aliases of ``aeflow-mnist`` and how many versions it has."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    aliases = {k: str(v) for k, v in c.get_registered_model("aeflow-mnist").aliases.items()}
    return aliases, len(c.search_model_versions("name='aeflow-mnist'"))


def leftovers(repo: Path) -> list[str]:
    found = []
    for folder in ("models", "plots/mnist", "data/raw", "data/interim", "data/validation"):
        for p in (repo / folder).iterdir():
            if LEFTOVER.match(p.name):
                found.append(p.relative_to(repo).as_posix())
    return sorted(found)


def weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def kill_after(repo: Path, event: Callable[[], bool], delay: float, what: str) -> float:
    """Start ``dvc repro --force train@mnist``, wait for ``event``, sleep ``delay``, SIGKILL the group."""
    start = time.monotonic()
    proc = subprocess.Popen(
        ["dvc", "repro", "--force", "train@mnist"],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        while not event():
            assert proc.poll() is None, f"{what}: the stage ended first:\n{proc.communicate()[0][-3000:]}"
            assert time.monotonic() - start < 300, f"{what}: event never came"
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, (
            f"{what}: the stage ended before the kill:\n{proc.communicate()[0][-3000:]}"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    for _ in range(500):  # the stage's python process dies with DVC (same process group)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    assert proc.returncode == -signal.SIGKILL
    return time.monotonic() - start


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    repo = mnist_repo(tmp_path_factory, "kill")
    run(repo, "dvc", "repro", "train@mnist")
    return repo


def test_sigkill_leaves_earlier_outputs_and_recovers(trained):
    repo = trained
    before, aliases_before = outputs(repo), registry(repo)[0]
    assert aliases_before == {"champion": "1", "challenger": "1"}
    baseline = weights(repo / "models/mnist/model.pt")
    rng = random.Random(20240607)
    resume_ckpt = repo / "models/.mnist.resume/last.ckpt"
    logged_before = len(list(repo.glob("mlartifacts/**/MLmodel")))
    kills = [
        ("while starting", lambda: True, rng.uniform(0.3, 2.0)),
        ("during training", resume_ckpt.is_file, rng.uniform(0.0, 0.3)),
        (
            "while registering",
            lambda: len(list(repo.glob("mlartifacts/**/MLmodel"))) > logged_before,
            rng.uniform(0.0, 0.02),
        ),
    ]
    for what, event, delay in kills:
        seconds = kill_after(repo, event, delay, what)
        print(f"killed {what} after {seconds:.1f} s; leftovers: {leftovers(repo)}")
        assert outputs(repo) == before, what
        assert registry(repo)[0] == aliases_before, what
    assert resume_ckpt.is_file()  # the killed training's last checkpoint waits to be resumed

    # What the kills left is invisible to DVC: the pipeline is up to date, nothing to rerun.
    status = run(repo, "dvc", "status", "train@mnist")
    assert "up to date" in status.stdout, status.stdout

    # The forced rerun that was killed three times: it succeeds, cleans up and resumes the killed training.
    run(repo, "dvc", "repro", "--force", "train@mnist")
    assert leftovers(repo) == []
    assert not (repo / "models/.mnist.resume").exists()
    info = json.loads((repo / "models/mnist/run.json").read_text())
    assert info["resumed_from_step"] > 0 and info["epochs"] == 2
    aliases, versions = registry(repo)
    assert aliases == {"champion": "1", "challenger": info["version"]} and versions >= 2
    after = weights(repo / "models/mnist/model.pt")
    assert all(bool((after[k] == baseline[k]).all()) for k in baseline)  # same as the uninterrupted run
    assert len((repo / "plots/mnist/loss.csv").read_text().splitlines()) == 3
    assert sorted(p.name for p in (repo / "plots/mnist/recon").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
    ]
    assert "up to date" in run(repo, "dvc", "status", "train@mnist").stdout


def test_next_writer_cleans_what_killed_writers_left(tmp_path):
    """Leftovers of a dead writer go (a live writer's stay); a ``.old`` folder whose output is missing (a
    kill between the two renames of the non-Linux fallback) is moved back, not deleted."""
    from aeflow.io import atomic_dir, atomic_file

    dead = _dead_pid()
    out = tmp_path / "out"
    (tmp_path / f".out.{dead}.abc123.tmp").mkdir()
    (tmp_path / f".out.{os.getpid()}.live.tmp").mkdir()  # this process: still writing, kept
    (tmp_path / f".out.csv.{dead}.x.csv.tmp").write_text("half")  # another output's leftover
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("new")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f".out.csv.{dead}.x.csv.tmp", f".out.{os.getpid()}.live.tmp", "out"}

    shutil.rmtree(out)
    (tmp_path / f".out.{dead}.old").mkdir()
    (tmp_path / f".out.{dead}.old" / "a").write_text("previous")
    with pytest.raises(RuntimeError), atomic_dir(out):
        raise RuntimeError("failed")
    assert (out / "a").read_text() == "previous"  # the last complete output is back in place

    with atomic_file(tmp_path / "out.csv") as tmp:
        tmp.write_text("x")
    assert not (tmp_path / f".out.csv.{dead}.x.csv.tmp").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
