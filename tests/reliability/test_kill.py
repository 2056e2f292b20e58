"""``dvc repro --force --single-item train@<use case>`` killed with SIGKILL (the whole process group: DVC
and the stage) at seeded random points leaves every earlier output, ``dvc.lock`` and the registry's aliases
exactly as they were; what the killed processes leave behind is invisible to DVC; the next run cleans it up,
continues the killed training from its last checkpoint and ends with the weights an uninterrupted run has. For
each use case (mnist, speech, sensor): every train stage goes through the one training service.

The kill points, each a seeded random delay after an event of the stage, cover its phases: while Python and
DVC start (nothing written yet), during training (temporary output folders and a resume checkpoint exist),
and while the model is logged and registered in MLflow (the last step before outputs are committed).

The tiny project copies used here (and by ``test_determinism`` / ``test_outage``) are built once per session
and use case: tracked files, a small config (:data:`FAST`), ``dvc repro`` up to the stage before train
(:data:`PREPARE`).

The forced reruns are ``--single-item``: a plain ``--force`` also reruns every stage upstream of train
(ingest, validate, inject_noise, featurize), which costs several Python start-ups per kill and reruns no
kill point of the train stage.
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
from typing import Any

import pytest

from aeflow.stages.recover import RWLOCK
from tests.helpers import copy_project, dead_pid
from tests.pipeline.test_dvc_pipeline import BIN, TINY, set_params

pytestmark = pytest.mark.slow

USE_CASES = ("mnist", "speech", "sensor")

#: Small and fast configs, one per use case (the pipeline tests use bigger ones: TINY, TINY_SPEECH,
#: TINY_SENSOR).
FAST: dict[str, dict[str, Any]] = {
    # An MLP on 320 training digits, 2 epochs of 5 batches (the pipeline tests use the conv model).
    "mnist": {
        "ingest": {**TINY["ingest"], "max_train": 400, "max_test": 100},
        "model": {"architecture": "mlp", "hidden_dims": [32]},
        "train": {**TINY["train"], "batch_size": 64, "num_recon_images": 4},  # 5 batches an epoch
        "variants": TINY["variants"],
    },
    # Three espeak speakers (train, val and test are speaker-disjoint) with two sentences each, one noisy
    # mixture per clip; a tiny conv denoiser, 2 epochs.
    "speech": {
        "ingest": {
            "espeak_speakers": ["en-us+m1", "en+f3", "en-gb-scotland+m4"],
            "espeak_sentences": 2,
            "test_speaker_count": 1,
            "val_speaker_count": 1,
        },
        "noise": {"snrs_db": [5], "mixtures_per_clip": 1},
        "model": {"channels": [4, 8], "latent_dim": 16},
        "train": {"epochs": 2, "batch_size": 32, "progress_bar": False},
        "evaluate": {"num_audio_examples": 1},
    },
    # Four simulated days at 10-minute samples (one series), windows of 16, a tiny conv1d detector, 2 epochs.
    "sensor": {
        "ingest": {"days": 4, "sample_minutes": 10},
        "anomalies": {"events_per_kind": 1, "min_gap": 12, "max_duration": 12},
        "windows": {"length": 16},
        "model": {"channels": [4, 8], "hidden_dims": [8], "latent_dim": 4},
        "train": {"epochs": 2, "batch_size": 32, "progress_bar": False},
    },
}
#: ``dvc repro`` that reruns the named stages only (not the stages upstream of them).
FORCE = ("dvc", "repro", "--force", "--single-item")
#: The stage before train: what a project copy is prepared up to.
PREPARE = {"mnist": "inject_noise@mnist", "speech": "featurize@speech", "sensor": "inject_noise@sensor"}
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


def repo_env(repo: Path, **extra: str) -> dict[str, str]:
    """``env`` for commands in a project copy: its stages import the copy's ``src`` (the code its DVC deps
    describe), not the checkout the virtual environment was installed from. Resuming checks a fingerprint
    of the code, so an edit in the checkout while a test runs must not change the code between a kill and
    the rerun."""
    path = os.pathsep.join(filter(None, (str(repo / "src"), os.environ.get("PYTHONPATH"))))
    return env(PYTHONPATH=path, **extra)


def run(repo: Path, *cmd: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    res = subprocess.run(
        list(cmd),
        cwd=repo,
        env=repo_env(repo, **extra),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
        )
    return res


def project_repo(tmp_path_factory: pytest.TempPathFactory, use_case: str, name: str) -> Path:
    """A fresh copy of the project with the FAST config of ``use_case`` and its stages up to train run."""
    base = tmp_path_factory.getbasetemp() / f"aeflow-{use_case}-base"
    if not (base / "dvc.lock").is_file():
        shutil.rmtree(base, ignore_errors=True)
        copy_project(base, skip=("tests/", "benchmarks/", "models/", "data/"))
        set_params(base, **{"mnist": {}, use_case: FAST[use_case]})
        run(base, "git", "init", "-q")
        run(base, "git", "add", "-A")
        run(base, "git", "commit", "-q", "-m", f"fast {use_case} config")
        start = time.monotonic()
        run(base, "dvc", "repro", PREPARE[use_case])
        print(f"{use_case}: dvc repro {PREPARE[use_case]} in {time.monotonic() - start:.1f} s")
    dest = tmp_path_factory.mktemp(f"{name}-{use_case}") / "repo"
    shutil.copytree(base, dest, symlinks=True)
    return dest


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_info(repo: Path, use_case: str) -> dict[str, Any]:
    return json.loads((repo / "models" / use_case / "run.json").read_text())


def first_job(info: dict[str, Any]) -> dict[str, Any]:
    """The record of the (first) model in ``run.json``: sensor trains one detector per series and keeps each
    one's fields (epochs, resumed_from_step, best_val_loss, folder ...) in its ``series`` list."""
    return info["series"][0] if "series" in info else info


def model_file(repo: Path, use_case: str) -> Path:
    """``models/<uc>/model.pt``; for sensor the first series' ``models/sensor/<folder>/model.pt``."""
    return repo / "models" / use_case / first_job(run_info(repo, use_case)).get("folder", "") / "model.pt"


def epochs(use_case: str) -> int:
    return FAST[use_case]["train"]["epochs"]


def epoch_files(repo: Path, use_case: str) -> list[str]:
    """What ``plots/<uc>/recon`` must hold after a training of ``epochs(use_case)`` epochs: a figure per
    epoch (mnist, speech), or, for sensor (no per-epoch figure), the loss history of each series."""
    if use_case == "sensor":
        return sorted(f"loss_{s['folder']}.csv" for s in run_info(repo, use_case)["series"])
    return [f"epoch_{n:03d}.png" for n in range(1, epochs(use_case) + 1)]


def outputs(repo: Path, use_case: str) -> dict[str, str]:
    """Hash of every file of the DVC outputs involved (train's and its inputs) and of dvc.lock."""
    out = {"dvc.lock": sha(repo / "dvc.lock")}
    for folder in ("data", f"models/{use_case}", f"plots/{use_case}/recon"):
        for f in sorted((repo / folder).rglob("*")):
            if f.is_file():
                out[f.relative_to(repo).as_posix()] = sha(f)
    out[f"plots/{use_case}/loss.csv"] = sha(repo / f"plots/{use_case}/loss.csv")
    return out


def registry(repo: Path, use_case: str) -> tuple[dict[str, str], int]:
    """The aliases of ``aeflow-<use case>`` and how many versions it has."""
    from mlflow.tracking import MlflowClient

    name = f"aeflow-{use_case}"
    c = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    aliases = {k: str(v) for k, v in c.get_registered_model(name).aliases.items()}
    return aliases, len(c.search_model_versions(f"name='{name}'"))


def leftovers(repo: Path, use_case: str) -> list[str]:
    found = []
    for folder in (
        "models",
        f"plots/{use_case}",
        "data/raw",
        "data/interim",
        "data/processed",
        "data/validation",
    ):
        if not (repo / folder).is_dir():
            continue
        for p in (repo / folder).iterdir():
            if LEFTOVER.match(p.name):
                found.append(p.relative_to(repo).as_posix())
    return sorted(found)


def resume_checkpoints(repo: Path, use_case: str) -> list[Path]:
    """``models/.<uc>.resume/last.ckpt``; sensor has one per series job (``.sensor.resume/<folder>/``)."""
    return sorted((repo / "models").glob(f".{use_case}.resume/**/last.ckpt"))


def weights(repo: Path, use_case: str) -> dict:
    import torch

    return torch.load(model_file(repo, use_case), map_location="cpu", weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def recover(repo: Path) -> str:
    """What ``make run`` and ``aeflow retrain`` do before ``dvc repro``: ``aeflow recover``. A kill can land
    while DVC rewrites its run lock (``.dvc/tmp/rwlock``, written in place; seen once in CI under load):
    the cut-short file would stop every later ``dvc repro``. recover removes exactly that and nothing else."""
    lock = repo / RWLOCK
    try:
        json.loads(lock.read_text() if lock.is_file() else "{}")
        cut_short = False
    except json.JSONDecodeError:
        cut_short = True
    said = run(repo, "aeflow", "recover").stdout
    assert ("removed DVC's run lock" in said) == cut_short, said
    assert not cut_short or not lock.exists()
    return said.strip()


def kill_after(repo: Path, use_case: str, event: Callable[[], bool], delay: float, what: str) -> float:
    """Start ``dvc repro --force --single-item train@<uc>``, wait for ``event``, sleep ``delay``, SIGKILL
    the process group."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [*FORCE, f"train@{use_case}"],
        cwd=repo,
        env=repo_env(repo),
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


@pytest.fixture(scope="module", params=USE_CASES)
def trained(request, tmp_path_factory) -> tuple[str, Path]:
    """A project copy of one use case after an uninterrupted ``dvc repro train@<uc>``."""
    use_case = request.param
    repo = project_repo(tmp_path_factory, use_case, "kill")
    start = time.monotonic()
    run(repo, "dvc", "repro", f"train@{use_case}")
    print(f"{use_case}: uninterrupted train stage in {time.monotonic() - start:.1f} s")
    return use_case, repo


def test_sigkill_leaves_earlier_outputs_and_recovers(trained):
    uc, repo = trained
    before, aliases_before = outputs(repo, uc), registry(repo, uc)[0]
    assert aliases_before == {"champion": "1", "challenger": "1"}
    baseline = weights(repo, uc)
    rng = random.Random(20240607)
    logged_before = len(list(repo.glob("mlartifacts/**/MLmodel")))
    kills = [
        ("while starting", lambda: True, rng.uniform(0.3, 2.0)),
        ("during training", lambda: bool(resume_checkpoints(repo, uc)), rng.uniform(0.0, 0.3)),
        (
            "while registering",
            lambda: len(list(repo.glob("mlartifacts/**/MLmodel"))) > logged_before,
            rng.uniform(0.0, 0.02),
        ),
    ]
    for what, event, delay in kills:
        seconds = kill_after(repo, uc, event, delay, what)
        print(f"{uc}: killed {what} after {seconds:.1f} s; leftovers: {leftovers(repo, uc)}; {recover(repo)}")
        assert outputs(repo, uc) == before, what
        assert registry(repo, uc)[0] == aliases_before, what
    assert resume_checkpoints(repo, uc)  # the killed training's last checkpoint waits to be resumed

    # What the kills left is invisible to DVC: the pipeline is up to date, nothing to rerun.
    status = run(repo, "dvc", "status", f"train@{uc}")
    assert "up to date" in status.stdout, status.stdout

    # The forced rerun that was killed three times: it succeeds, cleans up and resumes the killed training.
    start = time.monotonic()
    run(repo, *FORCE, f"train@{uc}")
    print(f"{uc}: resumed train stage in {time.monotonic() - start:.1f} s")
    assert leftovers(repo, uc) == []
    assert not (repo / f"models/.{uc}.resume").exists()
    info = run_info(repo, uc)
    # sensor: resumed_from_step and epochs are the (first and only) series job's, in run.json's series list
    job = first_job(info)
    assert job["resumed_from_step"] > 0 and job["epochs"] == epochs(uc)
    aliases, versions = registry(repo, uc)
    assert aliases == {"champion": "1", "challenger": info["version"]} and versions >= 2
    assert same_weights(weights(repo, uc), baseline)  # the same as the uninterrupted run
    assert len((repo / f"plots/{uc}/loss.csv").read_text().splitlines()) == epochs(uc) + 1
    assert sorted(p.name for p in (repo / f"plots/{uc}/recon").iterdir()) == epoch_files(repo, uc)
    if uc == "sensor":  # each series' loss history has every epoch
        for f in (repo / "plots/sensor/recon").iterdir():
            assert len(f.read_text().splitlines()) == epochs(uc) + 1, f.name
    assert "up to date" in run(repo, "dvc", "status", f"train@{uc}").stdout


def test_next_writer_cleans_what_killed_writers_left(tmp_path):
    """Leftovers of a dead writer go (a live writer's stay); a ``.old`` folder whose output is missing (a
    kill between the two renames of the non-Linux fallback) is moved back, not deleted."""
    from aeflow.io import atomic_dir, atomic_file

    dead = dead_pid()
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
