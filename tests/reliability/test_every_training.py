"""The trainings beside ``train`` (the latent sweep, compare_variants, the capacity check, benchmarks) go
through the same training service, so they get the same guarantees:

* a sweep killed after some latent sizes resumes: the sizes it had finished are reused, not trained again,
  and its metrics equal those of a sweep that was never interrupted;
* with the tracking store down the sweep still finishes, writes its outputs and keeps its run offline in
  ``models/.mnist_sweep.pending/`` for ``aeflow sync`` (it used to stop with the store named);
* ``fit_model`` (what the benchmarks call) is the same seeded fit, with no run and nothing registered.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aeflow.io import save_arrays
from aeflow.params import parse_params

pytestmark = pytest.mark.slow

TINY = {
    "mnist": {
        "model": {"architecture": "mlp", "hidden_dims": [32], "latent_dim": 4},
        "train": {
            "batch_size": 64,
            "progress_bar": False,
            "augment": {"rotation_deg": 0, "translate_px": 0, "scale": 0},
        },
        "sweep": {"latent_dims": [2, 4, 8], "epochs": 2},
    }
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project(root: Path, shuffled: tuple[np.ndarray, np.ndarray]) -> Path:
    """A project folder with tiny ingested digits and a passed validation report."""
    images, labels = shuffled
    raw = root / "data" / "raw" / "mnist"
    for name, rows in (("train", slice(0, 400)), ("val", slice(400, 500)), ("test", slice(500, 600))):
        save_arrays(raw / f"{name}.npz", {"images": images[rows].astype(np.uint8), "labels": labels[rows]})
    report = root / "data" / "validation" / "mnist.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"success": True}))
    return root


def sweep(root: Path, uri: str) -> dict[str, Any]:
    from aeflow.stages import sweep as stage

    params = parse_params({**TINY, "tracking": {"tracking_uri": uri, "artifact_location": str(root / "art")}})
    return stage.run(
        "mnist",
        params,
        Path("data/raw/mnist"),
        Path("data/validation/mnist.json"),
        Path("results/mnist/sweep.json"),
        Path("plots/mnist"),
    )


def test_a_killed_sweep_reuses_the_sizes_it_finished(tmp_path, shuffled, monkeypatch):
    from aeflow.training import service

    clean = project(tmp_path / "clean", shuffled)
    monkeypatch.chdir(clean)
    expected = sweep(clean, f"sqlite:///{clean / 'mlflow.db'}")

    killed = project(tmp_path / "killed", shuffled)
    monkeypatch.chdir(killed)
    uri = f"sqlite:///{killed / 'mlflow.db'}"
    fit = service._fit_and_register
    fitted: list[int] = []

    def kill_at_the_third(*args: Any, **kwargs: Any) -> dict[str, Any]:
        job = args[2]
        if len(fitted) == 2:
            raise KeyboardInterrupt("killed")  # what a SIGINT does mid-stage
        fitted.append(job.model.latent_dim)
        return fit(*args, **kwargs)

    monkeypatch.setattr(service, "_fit_and_register", kill_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        sweep(killed, uri)
    assert fitted == [2, 4]
    assert not (killed / "results" / "mnist" / "sweep.json").exists()
    assert sorted(p.name for p in (killed / "models" / ".mnist_sweep.resume").iterdir()) == ["k002", "k004"]

    fitted.clear()
    monkeypatch.setattr(
        service, "_fit_and_register", lambda *a, **k: fitted.append(a[2].model.latent_dim) or fit(*a, **k)
    )
    again = sweep(killed, uri)
    assert fitted == [8]  # k = 2 and 4 were reused from the resume folder
    assert again["by_k"] == expected["by_k"]  # same numbers as the sweep that was never killed
    assert not (killed / "models" / ".mnist_sweep.resume").exists()  # removed once the outputs are safe


def test_the_sweep_runs_offline_when_the_store_is_down(tmp_path, shuffled, monkeypatch, capfd):
    root = project(tmp_path, shuffled)
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = sweep(root, f"http://127.0.0.1:{closed_port()}")
    assert set(summary["by_k"]) == {"k2", "k4", "k8"}
    assert json.loads((root / "results" / "mnist" / "sweep.json").read_text()) == summary
    err = capfd.readouterr().err
    assert "aeflow sync" in err
    # never silent: one line per latent size, with the count and (after the first) the time left
    assert "[aeflow] sweep_latent@mnist [-----" in err and "0/3 training 2 " in err
    assert "1/3 training 4 " in err and "left)" in err and "3/3 all trained" in err
    (pending,) = (root / "models" / ".mnist_sweep.pending").iterdir()
    meta = json.loads((pending / "pending.json").read_text())
    assert meta["run_name"] == "mnist-sweep-latent" and meta["status"] == "FINISHED"
    steps = [json.loads(line) for line in (pending / "metrics.jsonl").read_text().splitlines()]
    assert sorted({m["step"] for m in steps if m["key"] == "sweep/ae_mse"}) == [2, 4, 8]
    assert sorted(p.name for p in (pending / "artifacts" / "sweep").iterdir())[-1] == "mse_vs_k.png"
    assert summary["run"]["run_id"] is None  # offline: the report says "pending aeflow sync"
    assert not (root / "plots" / "mnist" / "sweep" / "run.json").exists()  # nothing but figures in plots/


def test_fit_model_is_the_services_fit_without_a_run(shuffled):
    import torch

    from aeflow.data.images import to_unit
    from aeflow.models.inference import predict
    from aeflow.training.service import fit_model

    params = parse_params(TINY)
    x = to_unit(shuffled[0][:1200])
    train = params.mnist.train.model_copy(update={"epochs": 3, "lr": 1e-2})
    model, record = fit_model(params, "mnist", params.mnist.model, train, (x, None, None, None))
    again, _ = fit_model(params, "mnist", params.mnist.model, train, (x, None, None, None))
    assert record["epochs"] == 3 and record["tracking"] == "none" and record["train_examples_per_second"] > 0
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # seeded: the same weights twice
    mean_image = float(np.mean((x - x.mean(0)) ** 2))  # 0.067
    assert float(np.mean((predict(model, x) - x) ** 2)) < 0.85 * mean_image  # it learned (0.051)


class _AbsoluteError:
    """A data loss the variant never uses (mean |output − target|), counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, output: Any, target: Any, weight: Any) -> Any:
        self.calls += 1
        return (output - target).abs().mean()


def test_the_service_fits_with_the_jobs_data_loss(shuffled):
    """A plan's ``data_loss`` (speech: compressed magnitudes) is what the fit minimises: every training
    and validation step calls it, and the model learns under it."""
    import tempfile

    from aeflow.data.images import to_unit
    from aeflow.models.inference import predict
    from aeflow.models.registry import build_model
    from aeflow.training.service import TrainingJob, TrainingPlan, fit_jobs

    params = parse_params(TINY)
    x = to_unit(shuffled[0][:600])
    loss = _AbsoluteError()
    job = TrainingJob(
        model=params.mnist.model,
        train=params.mnist.train.model_copy(update={"epochs": 4, "lr": 1e-2}),
        input_shape=list(x.shape[1:]),
        run_name="mnist-fit",
        description=lambda fitted, fit: "",
        arrays=(x[:500], None, x[500:], None),
        data_digest=(x,),
        data_loss=loss,
        registrar=None,
        track=False,
        best_weights=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        (done,) = fit_jobs(params, TrainingPlan("mnist", [job], stage="fit"), "", Path(tmp), Path(tmp))
        model = done.load()
    steps = 4 * (-(-500 // params.mnist.train.batch_size))
    assert loss.calls >= steps, (loss.calls, steps)  # every step, nothing else calls it
    val = x[500:]
    trained = float(np.abs(predict(model, val) - val).mean())
    untrained = float(np.abs(predict(build_model(params.mnist.model, [1, 28, 28]), val) - val).mean())
    print(f"mean |error| on held-out digits: untrained {untrained:.3f}, trained {trained:.3f}")
    assert trained < 0.8 * untrained  # measured 0.190 against 0.473
