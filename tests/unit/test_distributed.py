"""Scale-out from params: ``train.strategy``/``devices``/``num_nodes`` reach Lightning's Trainer.

The DDP run is a real one: two CPU processes joined by a gloo process group. Lightning's ``ddp`` strategy
starts the other rank by re-running ``sys.argv``, so the fit runs in a small script in a subprocess rather
than inside pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aeflow.errors import ParamsError
from aeflow.params import parse_params
from aeflow.sections import TrainParams
from aeflow.training import make_trainer

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import numpy as np
    import pytorch_lightning as pl
    import torch
    import torch.distributed as dist
    from pytorch_lightning.loggers import MLFlowLogger

    from aeflow.sections import AugmentParams, TrainParams
    from aeflow.training import fit_autoencoder

    out = Path(sys.argv[1])


    class RecordRank(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            info = {
                "rank": trainer.global_rank,
                "world_size": trainer.world_size,
                "backend": dist.get_backend() if dist.is_initialized() else None,
                "strategy": type(trainer.strategy).__name__,
            }
            (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(info))

        def on_fit_end(self, trainer, pl_module):
            done = out / f"rank{trainer.global_rank}.json"
            info = json.loads(done.read_text())
            info["steps"] = trainer.global_step
            done.write_text(json.dumps(info))


    arrays = np.load(out / "digits.npz")
    params = TrainParams(
        epochs=2,
        batch_size=32,
        accelerator="cpu",
        strategy="ddp",
        devices=2,
        num_nodes=1,
        num_threads=1,
        progress_bar=False,
        augment=AugmentParams(rotation_deg=0, translate_px=0, scale=0),
    )
    logger = MLFlowLogger(
        experiment_name="aeflow-ddp",
        run_name="ddp-cpu-gloo",
        tracking_uri=f"sqlite:///{out / 'mlflow.db'}",
        artifact_location=(out / "mlartifacts").as_uri(),
    )
    model = {"variant": "vanilla", "architecture": "mlp", "hidden_dims": [32], "latent_dim": 4}
    fit_autoencoder(
        model, arrays["train"], arrays["val"], params, seed=0, logger=logger, callbacks=[RecordRank()]
    )
    """
)


def test_scale_out_fields_default_to_one_process_and_reach_the_trainer():
    default = TrainParams()
    assert (default.strategy, default.devices, default.num_nodes) == ("auto", 1, 1)
    trainer = make_trainer(TrainParams(strategy="auto", devices="auto", progress_bar=False))
    assert trainer.num_devices == 1 and trainer.num_nodes == 1 and trainer.world_size == 1
    ddp = make_trainer(TrainParams(strategy="ddp_spawn", devices=2, progress_bar=False))
    assert type(ddp.strategy).__name__ == "DDPStrategy" and ddp.num_devices == 2


def test_params_yaml_accepts_scale_out_keys_and_a_typo_names_the_field():
    params = parse_params({"mnist": {"train": {"strategy": "ddp", "devices": 4, "num_nodes": 2}}})
    assert (params.mnist.train.strategy, params.mnist.train.devices, params.mnist.train.num_nodes) == (
        "ddp",
        4,
        2,
    )
    with pytest.raises(ParamsError, match=r"train\.strategy.*'dpp'.*Did you mean 'ddp'"):
        make_trainer(TrainParams(strategy="dpp"))


def test_cpu_ddp_with_two_gloo_processes_logs_one_mlflow_run(tmp_path, shuffled):
    x = (shuffled[0][:, None] / 255.0).astype(np.float32)
    np.savez(tmp_path / "digits.npz", train=x[:256], val=x[256:320])
    script = tmp_path / "fit_ddp.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PL_", "LOCAL_RANK"))}
    env.update(
        MASTER_ADDR="127.0.0.1",
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
    )
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
    )
    seconds = time.perf_counter() - start
    assert res.returncode == 0, (
        f"DDP run failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank, info in enumerate(ranks):
        assert info["rank"] == rank and info["world_size"] == 2
        assert info["backend"] == "gloo" and info["strategy"] == "DDPStrategy"
    # 256 training digits split over 2 ranks, batches of 32: 4 steps per epoch on each rank, 2 epochs.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 8

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("aeflow-ddp")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "ddp-cpu-gloo"
    assert {"train/loss", "val/loss"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "val/loss")) == 2  # one value per epoch
    print(f"DDP 2×CPU (gloo): {seconds:.1f} s")
