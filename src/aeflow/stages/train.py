"""train: fit the configured variant with Lightning, log the run to MLflow and register the model.

Outputs (each replaced only when training and registration succeed):

* ``<models>/model.pt`` – weights + plain hyperparameters (``torch.load(weights_only=True)``-safe);
* ``<models>/run.json`` – MLflow run id, registered model and version (evaluate logs into this run);
* ``<models>/checkpoints/`` – Lightning's best and last checkpoints;
* ``<plots>/loss.csv`` – per-epoch losses for ``dvc plots``;
* ``<plots>/recon/epoch_NNN.png`` – the same fixed digits reconstructed after every epoch.

When things go wrong (mnist):

* **Killed** (SIGKILL, OOM killer, power to the container): the outputs above are untouched (atomic), and
  ``<models>.resume`` (``models/.mnist.resume/``: resume checkpoint, best checkpoints, epoch figures,
  ``state.json``) survives. The next run with the same data, params and code continues from the last
  checkpoint into the same MLflow run and ends with the same weights and metrics as an uninterrupted run;
  anything else starts afresh (and marks the old run KILLED). The folder is deleted once outputs, run and
  registration are complete.
* **Tracking store unreachable**: training still runs and writes every output; ``run.json`` says
  ``"tracking": "offline"`` and where the run waits (``models/.mnist.pending/<id>/``, see
  :mod:`aeflow.tracking.offline`); nothing is registered, no alias moves, the exit code is 0 with a loud
  warning. ``aeflow sync`` uploads the run and registers the model later.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aeflow.config import Params
from aeflow.errors import DataError
from aeflow.io import atomic_dir, atomic_file, read_json, write_json

#: Optimizer steps between resume checkpoints inside an epoch (each epoch end is saved too).
RESUME_EVERY_N_STEPS = 50


def check_validation(report: Path) -> None:
    """Refuse to train on data whose validation report is missing or failed."""
    if not report.is_file():
        raise DataError(
            f"{report}: validation report missing. Fix: run the validate stage first (dvc repro)."
        )
    if not read_json(report).get("success"):
        raise DataError(f"{report}: the data failed validation. Fix the data and run dvc repro again.")


def fixed_indices(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` examples ordered by class (0, 1, …, 9, 0, …): the same digits every epoch/run."""
    order: list[int] = []
    by_class = {c: list(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    while len(order) < min(n, len(labels)):
        for c in sorted(by_class):
            if by_class[c] and len(order) < n:
                order.append(by_class[c].pop(0))
    return np.array(order, dtype=np.int64)


def run(
    use_case: str,
    params: Params,
    data: Path,
    validation: Path,
    models: Path,
    plots: Path,
    noisy: Path | None = None,
) -> dict[str, Any]:
    """Train ``use_case`` on the ingested ``data`` (and ``noisy`` inputs for a denoising variant).

    For ``speech``, ``noisy`` is the folder of spectrogram features written by make_spectrograms.
    """
    if use_case == "speech":
        from aeflow.stages.speech import train

        if noisy is None:
            raise DataError("speech training needs --inputs (the folder written by make_spectrograms)")
        return train(params, noisy, validation, models, plots, str(data))
    if use_case == "sensor":
        from aeflow.stages.sensor import train as train_sensor

        if noisy is None:
            raise DataError("sensor training needs --inputs (the folder written by inject_noise)")
        return train_sensor(params, noisy, validation, models, plots, str(data))
    from aeflow import tracking
    from aeflow.data.images import load_image_splits, model_inputs
    from aeflow.models.registry import build_model, get_variant
    from aeflow.stages.noise import load_noisy
    from aeflow.training import ResumeState, code_fingerprint, fingerprint

    check_validation(validation)
    section = params.use_case(use_case)
    needs_noisy = get_variant(section.model.variant).needs_noisy_pairs
    splits = load_image_splits(data)
    pairs = model_inputs(splits, load_noisy(noisy) if needs_noisy and noisy else None, needs_noisy)
    (train_x, train_t), (val_x, val_t) = pairs["train"], pairs["val"]
    shown = "val" if len(val_x) else "test"
    idx = fixed_indices(splits[shown][1], section.train.num_recon_images)
    shown_in, shown_target = pairs[shown]
    fixed, fixed_target = shown_in[idx], None if shown_target is None else shown_target[idx]

    model_section = section.model.model_dump()
    # Bad model params stop here, before an MLflow run or a resume folder exists.
    build_model(model_section, list(train_x.shape[1:]), where=f"{use_case}.model")
    tags = tracking.lineage_tags(use_case, "train", str(data), {tracking.TAG_VARIANT: section.model.variant})
    # A killed training continues from its last checkpoint when data, params, code and store are the same.
    arrays = (train_x, train_t, val_x, val_t)
    settings = {"seed": params.seed, "model": model_section, "train": section.train.model_dump()}
    uri = params.tracking.resolved_uri()
    resume = ResumeState(
        resume_folder(models),
        fingerprint(settings, uri, code_fingerprint(), *arrays),
    )
    if not resume.resumable:
        _abandon(params, resume.record)
        resume.reset()
    run_name = f"{use_case}-{section.model.variant}-train"
    logger, offline = _make_logger(params, use_case, run_name, tags, resume, models)
    resume.save(
        run_id=logger.run_id or resume.record.get("run_id"), pending=str(logger.folder) if offline else None
    )
    try:
        summary = _train(
            use_case, params, data, models, plots, logger, resume, tags, arrays, fixed, fixed_target
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be what failed
            logger.finalize("failed")
        if not resume.checkpoint.is_file():  # nothing to resume: leave no trace
            resume.clear()
        raise
    logger.finalize("success")
    if offline:
        _warn_offline(params, logger, at_end=True)
        summary["aliases"] = {}
    else:
        from aeflow.tracking.promotion import mark_candidate

        summary["aliases"] = mark_candidate(
            params.tracking, summary.pop("registered_model"), summary.pop("version")
        )
    resume.clear()
    return summary


def resume_folder(models: Path) -> Path:
    """Where a training keeps what it needs to continue after a kill (``models/.mnist.resume``): beside the
    output, outside it (the output's temporary folder is discarded by a kill) and outside every DVC output."""
    return models.with_name(f".{models.name}.resume")


def _make_logger(
    params: Params, use_case: str, run_name: str, tags: dict[str, str], resume: Any, models: Path
) -> tuple[Any, bool]:
    """The ``MLFlowLogger`` when the store can take the run, else a :class:`PendingLogger` (offline).

    A resumed training continues its run: the same MLflow run, or the same pending folder if it started
    offline (it stays offline to the end, so one run holds the whole history).
    """
    from aeflow import tracking
    from aeflow.tracking import offline

    hparams = tracking.flatten({"seed": params.seed, **params.use_case(use_case).model_dump(by_alias=True)})
    pending = resume.record.get("pending") if resume.resumable else None
    run_id = resume.record.get("run_id") if resume.resumable else None
    problem = "this training started offline and resumes offline" if pending else None
    if problem is None:
        problem = tracking.store_problem(params.tracking)
    if problem is None:
        try:
            logger = tracking.make_logger(
                params.tracking, use_case, run_name, tags, params.dump(), run_id=run_id
            )
            logger.log_hyperparams(hparams)
            return logger, False
        except Exception as exc:  # the store went away between the probe and the run
            problem = tracking.describe_error(exc)
    folder = Path(pending) if pending else offline.pending_root(models) / offline.new_id()
    meta = {
        "use_case": use_case,
        "experiment_name": tracking.experiment_name(params.tracking, use_case),
        "run_name": run_name,
        "tags": tags,
        "tracking_uri": params.tracking.resolved_uri(),
        "reason": problem,
    }
    if run_id:
        meta["run_id"] = run_id  # a resumed run that started online: sync appends to it
    logger = offline.PendingLogger(folder, meta)
    logger.log_dict(params.dump(), "params.yaml")
    logger.log_hyperparams(hparams)
    _warn_offline(params, logger)
    return logger, True


def _warn_offline(params: Params, logger: Any, at_end: bool = False) -> None:
    uri = params.tracking.resolved_uri()
    if at_end:
        lines = [
            f"[aeflow:train] OFFLINE: trained without the MLflow store at {uri}.",
            f"  The run waits in {logger.folder}: nothing was registered and no alias moved.",
            "  When the store is back, run `aeflow sync` to upload it and register the model.",
        ]
    else:
        lines = [
            f"[aeflow:train] WARNING: the MLflow tracking store at {uri} is unreachable:",
            f"  {logger.meta.get('reason')}",
            "  Training goes on offline: model.pt, loss.csv and the figures are written as usual, and the "
            f"run (params, metrics, figures, the model to register) is kept in {logger.folder}.",
            "  Run `aeflow sync` when the store is back to upload it and register the model.",
        ]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _abandon(params: Params, record: dict[str, Any]) -> None:
    """A stale resume folder (other data/params/code) may name a run a kill left RUNNING: mark it KILLED,
    so no run stays "running" forever (an offline one is then uploaded by ``aeflow sync`` as KILLED, with
    nothing registered). Best effort: an unreachable store changes nothing."""
    from aeflow import tracking
    from aeflow.tracking import offline

    pending = record.get("pending")
    if pending and (Path(pending) / offline.PENDING).is_file():
        with contextlib.suppress(Exception):
            logger = offline.PendingLogger(pending, running=False)
            if logger.meta.get("status") == "RUNNING":
                logger.finalize("killed")
    run_id = record.get("run_id")
    if not run_id:
        return

    if tracking.store_problem(params.tracking, timeout_s=5) is not None:
        return
    with contextlib.suppress(Exception):
        c = tracking.client(params.tracking)
        if c.get_run(run_id).info.status == "RUNNING":
            c.set_terminated(run_id, "KILLED")


def _train(
    use_case: str,
    params: Params,
    data: Path,
    models: Path,
    plots: Path,
    logger: Any,
    resume: Any,
    tags: dict[str, str],
    arrays: tuple[Any, ...],
    fixed: np.ndarray,
    fixed_target: np.ndarray | None,
) -> dict[str, Any]:
    from aeflow import tracking
    from aeflow.models.registry import save_model
    from aeflow.tracking.callbacks import EpochHistory, ReconstructionGrid
    from aeflow.training import fit_autoencoder

    section = params.use_case(use_case)
    train_x, train_t, val_x, val_t = arrays
    offline = logger.run_id is None
    with contextlib.ExitStack() as stack:
        models_tmp = stack.enter_context(atomic_dir(models))
        recon_tmp = stack.enter_context(atomic_dir(plots / "recon"))
        loss_tmp = stack.enter_context(atomic_file(plots / "loss.csv"))
        # Epoch files and checkpoints go to the resume folder first: they must survive a kill.
        history = EpochHistory(resume.folder / "loss.csv")
        callbacks = [ReconstructionGrid(fixed, resume.folder / "recon", targets=fixed_target), history]
        result = fit_autoencoder(
            section.model.model_dump(),
            train_x,
            val_x,
            section.train,
            params.seed,
            train_target=train_t,
            val_target=val_t,
            logger=logger,
            callbacks=callbacks,
            checkpoint_dir=resume.folder / "checkpoints",
            where=f"{use_case}.model",
            resume_dir=resume.folder,
            resume_every_n_steps=RESUME_EVERY_N_STEPS,
        )
        history.write()  # complete even when the fit resumed after its last epoch
        shutil.copy2(resume.folder / "loss.csv", loss_tmp)
        for png in sorted((resume.folder / "recon").glob("epoch_*.png")):
            shutil.copy2(png, recon_tmp / png.name)
        (models_tmp / "checkpoints").mkdir()
        for ckpt in sorted((resume.folder / "checkpoints").glob("*.ckpt")):
            shutil.copy2(ckpt, models_tmp / "checkpoints" / ckpt.name)
        save_model(result.model, str(models_tmp / "model.pt"))
        summary = {
            "variant": result.model.variant_name,
            "latent_dim": result.model.latent_dim,
            "input_shape": list(result.model.input_shape),
            "epochs": result.epochs,
            "best_val_loss": result.best_val_loss,
            "train_seconds": round(result.seconds, 2),
            "train_images_per_second": round(result.images_per_second, 1),
        }
        if result.resumed_from_step is not None:
            summary["resumed_from_step"] = result.resumed_from_step
        logger.log_metrics(
            {"train/images_per_second": result.images_per_second, "train/latent_dim": result.model.latent_dim}
        )
        description = (
            f"{result.model.variant_name} autoencoder, latent {result.model.latent_dim}, "
            f"trained {result.epochs} epochs on {data} (DVC hash {tags[tracking.TAG_DATA_HASH]})."
        )
        if offline:
            logger.set_register(models_tmp / "model.pt", use_case, description)
            for png in sorted(recon_tmp.glob("epoch_*.png")):
                logger.log_artifact(png, "reconstructions")
            record = {
                "tracking": "offline",
                "pending": str(logger.folder),
                "run_id": None,
                "experiment_id": None,
                "experiment_name": tracking.experiment_name(params.tracking, use_case),
                "tracking_uri": params.tracking.resolved_uri(),
            }
        else:
            # Registered once per run: a training killed after registering reuses that version on resume.
            registration = resume.record.get("registration") or tracking.log_and_register_model(
                params.tracking, logger.run_id, result.model, use_case, description=description
            )
            resume.save(registration=registration)
            record = {**tracking.run_record(params.tracking, logger, use_case), **registration}
            summary.update(registered_model=registration["registered_model"], version=registration["version"])
        write_json(models_tmp / "run.json", {**record, **summary})
    return summary
