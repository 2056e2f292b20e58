"""DVC's run lock cut short by a kill: real DVC refuses every later run; ``aeflow recover`` (also run by
``make run`` and ``aeflow retrain``) clears it, only when that is safe: an intact lock and one naming a live
process stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aeflow.cli import app
from aeflow.errors import AeflowError
from aeflow.stages.recover import RWLOCK, clear_interrupted_dvc_lock
from tests.helpers import dead_pid
from tests.pipeline.test_dvc_pipeline import BIN


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    return subprocess.run(
        [str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A DVC project (no git) with one stage, run once: ``.dvc/tmp/rwlock`` exists as DVC leaves it."""
    assert dvc(tmp_path, "init", "--no-scm", "-q").returncode == 0
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n"
    )
    (tmp_path / "in.txt").write_text("one\n")
    res = dvc(tmp_path, "repro")
    assert res.returncode == 0, res.stderr
    assert isinstance(json.loads((tmp_path / RWLOCK).read_text()), dict)
    return tmp_path


def test_an_empty_lock_blocks_dvc_until_recovered(repo: Path) -> None:
    (repo / RWLOCK).write_text("")  # killed between open(..., "w") and json.dump
    (repo / "in.txt").write_text("two\n")
    blocked = dvc(repo, "repro")
    assert blocked.returncode != 0 and "RWLock-file" in blocked.stderr + blocked.stdout

    said = clear_interrupted_dvc_lock(repo)
    assert said is not None and str(repo / RWLOCK) in said and "empty" in said
    assert not (repo / RWLOCK).exists()
    res = dvc(repo, "repro")
    assert res.returncode == 0, res.stderr
    assert (repo / "out.txt").read_text() == "two\n"
    assert clear_interrupted_dvc_lock(repo) is None  # the new lock DVC wrote is intact


def test_only_an_unreadable_lock_of_dead_processes_goes(repo: Path) -> None:
    lock = repo / RWLOCK
    intact = json.dumps({"read": {}, "write": {"out.txt": {"pid": dead_pid(), "cmd": "dvc repro"}}})
    lock.write_text(intact)  # readable, stale entry: DVC itself handles that
    assert clear_interrupted_dvc_lock(repo) is None
    assert lock.read_text() == intact

    live = f'{{"read": {{}}, "write": {{"out.txt": {{"pid": {os.getpid()}, "cmd": "dvc'
    lock.write_text(live)
    with pytest.raises(AeflowError, match=rf"names running process\(es\) {os.getpid()}") as err:
        clear_interrupted_dvc_lock(repo)
    assert str(lock) in str(err.value) and "Fix:" in str(err.value)
    assert lock.read_text() == live

    half = f'{{"read": {{}}, "write": {{"out.txt": {{"pid": {dead_pid()}, "cmd": "dvc'
    lock.write_text(half)
    said = clear_interrupted_dvc_lock(repo)
    assert said is not None and f"{len(half)} bytes of half-written JSON" in said
    assert not lock.exists()
    assert clear_interrupted_dvc_lock(repo) is None  # no lock file at all: nothing to do


def test_cli_recover(repo: Path) -> None:
    runner = CliRunner()
    quiet = runner.invoke(app, ["recover", "--root", str(repo), "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""
    (repo / RWLOCK).write_text("")
    res = runner.invoke(app, ["recover", "--root", str(repo), "--quiet"])
    assert res.exit_code == 0 and "removed DVC's run lock, empty" in res.output
    (repo / RWLOCK).write_text(f'{{"write": {{"out.txt": {{"pid": {os.getpid()}')
    res = runner.invoke(app, ["recover", "--root", str(repo)])
    assert res.exit_code == 1 and "names running process" in res.output


def test_a_held_guard_leaves_the_lock_alone(repo: Path) -> None:
    """A DVC process holding ``rwlock.lock`` (for longer than its own 3 s of retries) is never raced."""
    lock = repo / RWLOCK
    lock.write_text("")
    held = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dvc.lock import make_lock; "
         f"g = make_lock({str(lock.parent / 'rwlock.lock')!r}); g.lock(); print('held', flush=True); "
         "time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert held.stdout is not None and held.stdout.readline().strip() == "held"
        with pytest.raises(AeflowError, match="held by another process") as err:
            clear_interrupted_dvc_lock(repo)
        assert "rwlock.lock" in str(err.value) and "Fix:" in str(err.value)
        assert lock.exists()
    finally:
        held.kill()
        held.wait()
    said = clear_interrupted_dvc_lock(repo)  # the guard is free again: the empty lock goes
    assert said is not None and not lock.exists()
