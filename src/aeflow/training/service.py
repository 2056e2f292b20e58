"""The one training service: every model a train stage makes is fitted, tracked and registered here.

A use case describes *what* to train as a :class:`TrainingPlan` (one :class:`TrainingJob` per model: the
digits autoencoder, the spectrogram denoiser, one detector per sensor series); this module owns *how*, the
same for all of them:

* **One MLflow run per job**, or, when the tracking store is unreachable, a pending run on disk
  (:mod:`aeflow.tracking.offline`) that ``aeflow sync`` uploads and registers later; training never fails
  because tracking did.
* **Resume after a kill**: each job keeps ``models/.<use case>.resume[/<job>]/`` (resume checkpoint with RNG
  and sampler state, best checkpoints, per-epoch files, ``state.json``). A rerun with the same data, params,
  code and store continues mid-epoch into the same run and ends bit-identical to an uninterrupted run; a job
  that had finished is not trained again (its model, run and registration are reused).
* **Atomic outputs**: ``models/<use case>``, ``plots/<use case>/recon`` and ``loss.csv`` are replaced
  together, only once every job has trained and registered.
* **Registration and aliases**: each job's model becomes a new registered version (the job names its
  registrar: a PyTorch model, or a use case's pyfunc); the first job's version becomes the ``challenger``
  (and ``champion`` for a new name) once the run has finished.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.io import atomic_dir, atomic_file, read_json, write_json
from aeflow.models.configs import AEConfig
from aeflow.sections import TrainParams

if TYPE_CHECKING:
    from aeflow.config import Params
    from aeflow.models.base import DataLoss
    from aeflow.training.engine import SeededModel

#: Optimizer steps between resume checkpoints inside an epoch (each epoch end is saved too).
RESUME_EVERY_N_STEPS = 50

#: The registrar of a plain autoencoder: MLflow's PyTorch flavour.
PYTORCH_REGISTRAR = "aeflow.training.service:register_model_file"


@dataclass
class TrainingJob:
    """One model to fit, track and register.

    ``arrays`` (train input, train target, val input, val target; targets ``None`` = reconstruct the input)
    or ``datamodule`` (built lazily) feed the fit. ``data_digest`` is what a resumed fit must find unchanged
    (the arrays themselves, or digests of the files behind a datamodule). ``finish`` runs after the fit, on
    the best weights: it attaches what the model needs at inference (``model.data_config``) and returns
    ``(summary fields, metrics to log)``.
    """

    model: AEConfig  # its variant's class
    train: TrainParams
    input_shape: list[int]
    run_name: str
    description: Callable[[Any, Any], str]
    key: str = ""  # which of several models (a series name); "" for a use case's only model
    folder: str = ""  # its sub-folder of models/<use case>; "" for the only model
    output: str = "sigmoid"
    arrays: tuple[np.ndarray | None, ...] | None = None
    datamodule: Callable[[], Any] | None = None
    data_digest: Sequence[Any] = ()
    figures: Callable[[Path], list[Any]] | None = None  # per-epoch figure callbacks writing into a folder
    finish: Callable[[Any, Any], tuple[dict[str, Any], dict[str, float]]] | None = None
    data_loss: DataLoss | None = None  # the use case's loss in data space; None: the variant's own
    hparams: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    registrar: str | None = PYTORCH_REGISTRAR  # None: nothing to register (a sweep's brief fits)
    registered_name: str = ""  # "" registers a version of the use case's model
    candidate: bool = True  # its version becomes the challenger (the train stage); False: no alias moves
    track: bool = True  # False: no run of its own (the caller's run holds what matters, e.g. the sweep's)
    best_weights: bool = True  # keep the best validation epoch's weights (False: the last epoch's)
    unit: str = "examples"  # what one training example is, for the throughput figure ("images", "patches")


@dataclass
class TrainingPlan:
    """Every model one stage trains; ``group_key`` names the list in ``run.json`` when there are several
    (``"series"``: one detector per series)."""

    use_case: str
    jobs: list[TrainingJob]
    group_key: str | None = None
    stage: str = "train"  # the lineage tag of every run it opens


def register_model_file(
    tracking: Any, run_id: str, model_file: Path, use_case: str, description: str = ""
) -> dict[str, str]:
    """Register the autoencoder saved in ``model_file`` as a new version of the use case's model (MLflow's
    PyTorch flavour): the registrar of every job that names no other."""
    from aeflow import tracking as tr
    from aeflow.models.registry import load_model

    return tr.log_and_register_model(tracking, run_id, load_model(str(model_file)), use_case, description)


def check_validation(report: Path) -> None:
    """Refuse to train on data whose validation report is missing or failed."""
    if not report.is_file():
        raise DataError(
            f"{report}: validation report missing. Fix: run the validate stage first (dvc repro)."
        )
    if not read_json(report).get("success"):
        raise DataError(f"{report}: the data failed validation. Fix the data and run dvc repro again.")


def resume_folder(models: Path) -> Path:
    """Where a training keeps what it needs to continue after a kill (``models/.mnist.resume``): beside the
    output, outside it (the output's temporary folder is discarded by a kill) and outside every DVC output."""
    return models.with_name(f".{models.name}.resume")


@dataclass
class JobResult:
    """One fitted job: its ``run.json`` record and the folder holding ``model.pt``, ``loss.csv``,
    ``recon/`` and ``checkpoints/`` (its resume folder, kept until the caller's outputs are safe)."""

    job: TrainingJob
    record: dict[str, Any]
    folder: Path

    def load(self) -> Any:
        """The fitted model (best weights), as saved."""
        from aeflow.models.registry import load_model

        return load_model(str(self.folder / "model.pt"))


def fit_jobs(params: Params, plan: TrainingPlan, data_path: str, root: Path, models: Path) -> list[JobResult]:
    """Fit, track and register every job of ``plan``, each resumable in its own folder under ``root``.

    The caller writes its outputs from the results and then removes ``root`` (see :func:`train`); a kill
    before that leaves every finished job to be reused and the current one to be resumed mid-epoch.
    ``models`` is the folder offline runs wait beside (``.<name>.pending``, which ``aeflow sync`` uploads).
    """
    from aeflow.training.engine import build_seeded

    if not plan.jobs:
        raise DataError(f"{data_path}: nothing to train for {plan.use_case}. Fix: check the ingested data.")
    # Every model is built once, here: bad model params (or a model that does not fit the data) stop the
    # stage before an MLflow run or a resume folder exists, and the fit trains exactly these models.
    built = [
        build_seeded(job.model, job.input_shape, job.train, params.seed, job.output, f"{plan.use_case}.model")
        for job in plan.jobs
    ]
    for job, seeded in zip(plan.jobs, built, strict=True):
        seeded.model.data_loss = job.data_loss
    several = len(plan.jobs) > 1 or plan.group_key is not None
    results = []
    progress = _Progress(f"{plan.stage}@{plan.use_case}", len(plan.jobs))
    for job, model in zip(plan.jobs, built, strict=True):
        folder = root / job.folder if several else root
        progress.show(f"training {job.key}" if job.key else "training")
        record, files = _run_job(params, plan, job, model, folder, data_path, models)
        results.append(JobResult(job, record, files))
        progress.done += 1
    progress.show("all trained")
    return results


class _Progress:
    """One line per model on stderr for a stage that trains several (a bar, the count, the elapsed time
    and an estimate of the time left from the models done so far), so a long sweep is never silent."""

    WIDTH = 20

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.began = time.monotonic()

    def show(self, what: str) -> None:
        if self.total < 2:
            return
        elapsed = time.monotonic() - self.began
        filled = round(self.WIDTH * self.done / self.total)
        left = elapsed / self.done * (self.total - self.done) if 0 < self.done < self.total else None
        eta = f", about {_duration(left)} left" if left is not None else ""
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        count = f"{self.done}/{self.total}"
        print(
            f"[aeflow] {self.name} [{bar}] {count} {what} ({_duration(elapsed)} elapsed{eta})",
            file=sys.stderr,
            flush=True,
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def fit_model(
    params: Params,
    use_case: str,
    model: AEConfig,
    train: TrainParams,
    arrays: tuple[np.ndarray | None, ...],
    output: str = "sigmoid",
) -> tuple[Any, dict[str, Any]]:
    """One fit with no run and nothing registered, through the same service (benchmarks, analyses):
    the fitted model (last epoch) and its summary (``train_seconds``, throughput, …). Its folder is
    temporary."""
    import tempfile

    inputs = arrays[0]
    if inputs is None:
        raise ValueError("fit_model needs training inputs")
    job = TrainingJob(
        model=model,
        train=train,
        input_shape=list(inputs.shape[1:]),
        run_name=f"{use_case}-fit",
        description=lambda fitted, fit: "",
        arrays=arrays,
        data_digest=tuple(a for a in arrays if a is not None),
        output=output,
        registrar=None,
        track=False,
        best_weights=False,
    )
    with tempfile.TemporaryDirectory(prefix="aeflow-fit-") as tmp:
        (done,) = fit_jobs(params, TrainingPlan(use_case, [job], stage="fit"), "", Path(tmp), Path(tmp))
        return done.load(), done.record


def train(params: Params, plan: TrainingPlan, data_path: str, models: Path, plots: Path) -> dict[str, Any]:
    """Fit, track and register every job of ``plan``; write ``models``, ``plots/recon``, ``plots/loss.csv``.

    Returns the first job's summary (with the aliases its version got), or a summary per job key.
    """
    root = resume_folder(models)
    results = fit_jobs(params, plan, data_path, root, models)
    several = len(plan.jobs) > 1 or plan.group_key is not None
    records: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        models_tmp = stack.enter_context(atomic_dir(models))
        recon_tmp = stack.enter_context(atomic_dir(plots / "recon"))
        loss_tmp = stack.enter_context(atomic_file(plots / "loss.csv"))
        for n, done in enumerate(results):
            job, record, files = done.job, done.record, done.folder
            if several:
                record = {plan.group_key or "key": job.key, "folder": job.folder, **record}
            out = models_tmp / job.folder
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(files / "model.pt", out / "model.pt")
            (out / "checkpoints").mkdir(exist_ok=True)
            for ckpt in sorted((files / "checkpoints").glob("*.ckpt")):
                shutil.copy2(ckpt, out / "checkpoints" / ckpt.name)
            prefix = f"{job.folder}_" if several else ""
            for png in sorted((files / "recon").glob("epoch_*.png")):
                shutil.copy2(png, recon_tmp / f"{prefix}{png.name}")
            if several:
                shutil.copy2(files / "loss.csv", recon_tmp / f"loss_{job.folder}.csv")
            if n == 0:
                shutil.copy2(files / "loss.csv", loss_tmp)
            records.append(record)
        first = records[0]
        if several:
            head = (
                "run_id",
                "experiment_id",
                "registered_model",
                "version",
                "model_uri",
                "tracking",
                "pending",
            )
            run_json = {
                "experiment_name": first.get("experiment_name"),
                "tracking_uri": params.tracking.resolved_uri(),
                plan.group_key or "jobs": records,
                **{k: first[k] for k in head if k in first},
            }
        else:
            run_json = first
        write_json(models_tmp / "run.json", run_json)
    aliases: dict[str, str] = {}
    if first.get("tracking") != "offline":
        from aeflow.tracking.promotion import mark_candidate

        # One champion per registered model: the first job's version is the candidate (runs with many
        # series register one version each, for the record and for serving any of them by version).
        aliases = mark_candidate(params.tracking, first["registered_model"], first["version"])
    shutil.rmtree(root, ignore_errors=True)  # every job's resume folder: the results are safe now
    if several:
        return {job.key: _short(r) for job, r in zip(plan.jobs, records, strict=True)}
    return {**{k: v for k, v in first.items() if k not in _RUN_KEYS}, "aliases": aliases}


_RUN_KEYS = ("run_id", "experiment_id", "experiment_name", "tracking_uri", "registered_model", "model_uri")


def _short(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("version", "threshold", "epochs") if k in record}


def _run_job(
    params: Params,
    plan: TrainingPlan,
    job: TrainingJob,
    model: SeededModel,
    folder: Path,
    data_path: str,
    models: Path,
) -> tuple[dict[str, Any], Path]:
    """Train one job (or take it finished from its resume folder); return its ``run.json`` record and the
    folder holding ``model.pt``, ``loss.csv``, ``recon/`` and ``checkpoints/``."""
    from aeflow import tracking
    from aeflow.training.engine import ResumeState, code_fingerprint, fingerprint

    use_case = plan.use_case
    settings = {
        "seed": params.seed,
        "model": job.model.model_dump(),
        "train": job.train.model_dump(),
        "hparams": job.hparams,
        "key": job.key,
    }
    uri = params.tracking.resolved_uri()
    resume = ResumeState(folder, fingerprint(settings, uri, code_fingerprint(), *job.data_digest))
    done = resume.record.get("done")
    if done and resume.record.get("fingerprint") == resume.fingerprint and (folder / "model.pt").is_file():
        return done, folder  # finished before a kill stopped a later job: nothing to train again
    if not resume.resumable:
        _abandon(params, resume.record)
        resume.reset()
    tags = tracking.lineage_tags(
        use_case, plan.stage, data_path, {tracking.TAG_VARIANT: job.model.variant, **job.tags}
    )
    logger, offline = None, False
    if job.track:
        pending = resume.record.get("pending") if resume.resumable else None
        run_id = resume.record.get("run_id") if resume.resumable else None
        logger, offline = open_run(
            params,
            use_case,
            job.run_name,
            tags,
            models,
            job.hparams,
            run_id=run_id,
            pending=pending,
            on_offline=lambda fallen: resume.save(pending=str(fallen.folder)),  # a resume stays offline
        )
        resume.save(
            run_id=logger.run_id or resume.record.get("run_id"),
            pending=str(logger.folder) if offline else None,
        )
    try:
        record = _fit_and_register(params, use_case, job, model, logger, resume, tags)
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be what failed
            if logger is not None:
                logger.finalize("failed")
        if not resume.checkpoint.is_file():  # nothing to resume: leave no trace
            resume.clear()
        raise
    if logger is not None:
        logger.finalize("success")
    fallen = getattr(logger, "pending", None)  # the store went away during the run
    if offline or fallen is not None:
        warn_offline(params, fallen or logger, at_end=True)
    resume.save(done=record)
    return record, folder


def open_run(
    params: Params,
    use_case: str,
    run_name: str,
    tags: dict[str, str],
    models: Path,
    hparams: dict[str, Any] | None = None,
    run_id: str | None = None,
    pending: str | None = None,
    on_offline: Callable[[Any], None] | None = None,
) -> tuple[Any, bool]:
    """A run in the use case's experiment: the ``MLFlowLogger`` when the store can take it, else a
    :class:`~aeflow.tracking.offline.PendingLogger` in ``<models>/.<name>.pending/`` that ``aeflow sync``
    uploads later (``True`` as the second value). Tracking never stops a stage.

    ``run_id`` continues an MLflow run, ``pending`` an offline one (a resumed training stays offline to the
    end, so one run holds its whole history). The whole params file is logged with the run.

    A store that goes away *during* the run hands the rest of it to a pending folder that remembers the
    run (the logger's ``pending``; ``on_offline`` is told), and ``aeflow sync`` appends it to that run.
    """
    from aeflow import tracking

    flat = tracking.flatten(hparams or {})
    problem = "this training started offline and resumes offline" if pending else None
    if problem is None:
        problem = tracking.store_problem(params.tracking)
    if problem is None:

        def fallback(online_run_id: str, reason: str) -> Any:
            fallen = _pending_logger(params, use_case, run_name, tags, models, reason, run_id=online_run_id)
            print(f"[aeflow] the MLflow store failed during the run ({reason}).", file=sys.stderr)
            warn_offline(params, fallen)
            if on_offline is not None:
                on_offline(fallen)
            return fallen

        try:
            logger = tracking.make_logger(
                params.tracking, use_case, run_name, tags, params.dump(), run_id=run_id, fallback=fallback
            )
            logger.log_hyperparams(flat)
            return logger, False
        except Exception as exc:  # the store went away between the probe and the run
            problem = tracking.describe_error(exc)
    logger = _pending_logger(params, use_case, run_name, tags, models, problem, run_id=run_id, folder=pending)
    logger.log_dict(params.dump(), "params.yaml")
    logger.log_hyperparams(flat)
    warn_offline(params, logger)
    return logger, True


def _pending_logger(
    params: Params,
    use_case: str,
    run_name: str,
    tags: dict[str, str],
    models: Path,
    reason: str,
    run_id: str | None = None,
    folder: str | None = None,
) -> Any:
    """The offline logger of a run: a new folder under ``<models>/.<name>.pending/`` (or ``folder``)."""
    from aeflow import tracking
    from aeflow.tracking import offline

    meta = {
        "use_case": use_case,
        "experiment_name": tracking.experiment_name(params.tracking, use_case),
        "run_name": run_name,
        "tags": tags,
        "tracking_uri": params.tracking.resolved_uri(),
        "reason": reason,
    }
    if run_id:
        meta["run_id"] = run_id  # a run that started online: sync appends to it
    where = Path(folder) if folder else offline.pending_root(models) / offline.new_id()
    return offline.PendingLogger(where, meta)


def log_artifact(logger: Any, path: Path, folder: str) -> None:
    """Add a file to the run of ``logger``, online or offline (uploaded by ``aeflow sync``)."""
    if hasattr(logger, "log_file"):  # online until the store fails, then offline
        logger.log_file(path, folder)
    elif getattr(logger, "run_id", None) is None:
        logger.log_artifact(path, folder)
    else:
        logger.experiment.log_artifact(logger.run_id, str(path), folder)


def warn_offline(params: Params, logger: Any, at_end: bool = False) -> None:
    """Say on stderr that a run is kept offline, where, and that ``aeflow sync`` uploads it."""
    uri = params.tracking.resolved_uri()
    if at_end:
        lines = [
            f"[aeflow] OFFLINE: ran without the MLflow store at {uri}.",
            f"  The run waits in {logger.folder}: nothing was registered and no alias moved.",
            "  When the store is back, run `aeflow sync` to upload it and register the model.",
        ]
    else:
        lines = [
            f"[aeflow] WARNING: the MLflow tracking store at {uri} is unreachable:",
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
    if not run_id or record.get("done"):
        return
    if tracking.store_problem(params.tracking, timeout_s=5) is not None:
        return
    with contextlib.suppress(Exception):
        c = tracking.client(params.tracking)
        if c.get_run(run_id).info.status == "RUNNING":
            c.set_terminated(run_id, "KILLED")


def _fit_and_register(
    params: Params,
    use_case: str,
    job: TrainingJob,
    built: SeededModel,
    logger: Any,
    resume: Any,
    tags: dict[str, str],
) -> dict[str, Any]:
    from aeflow import tracking
    from aeflow.models.registry import save_model
    from aeflow.tracking.callbacks import EpochHistory
    from aeflow.training.engine import fit_autoencoder

    folder = resume.folder
    # Epoch files and checkpoints go to the resume folder: they must survive a kill.
    history = EpochHistory(folder / "loss.csv")
    (folder / "recon").mkdir(parents=True, exist_ok=True)
    callbacks = [*(job.figures(folder / "recon") if job.figures else []), history]
    train_x, train_t, val_x, val_t = job.arrays if job.arrays is not None else (None, None, None, None)
    has_val = val_x is not None and len(val_x) > 0
    result = fit_autoencoder(
        built,
        train_x,
        val_x if has_val else None,
        job.train,
        params.seed,
        train_target=train_t,
        val_target=val_t if has_val else None,
        datamodule=job.datamodule() if job.datamodule is not None else None,
        input_shape=job.input_shape,
        output=job.output,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        checkpoint_dir=folder / "checkpoints" if job.best_weights else None,
        where=f"{use_case}.model",
        resume_dir=folder,
        resume_every_n_steps=RESUME_EVERY_N_STEPS,
    )
    history.write()  # complete even when the fit resumed after its last epoch
    model = result.model
    extra, metrics = job.finish(model, result) if job.finish is not None else ({}, {})
    save_model(model, str(folder / "model.pt"))
    summary: dict[str, Any] = {
        "variant": model.variant_name,
        "latent_dim": model.latent_dim,
        "input_shape": list(model.input_shape),
        "epochs": result.epochs,
        "best_val_loss": result.best_val_loss,
        "train_seconds": round(result.seconds, 2),
        f"train_{job.unit}_per_second": round(result.images_per_second, 1),
        **extra,
    }
    if result.resumed_from_step is not None:
        summary["resumed_from_step"] = result.resumed_from_step
    if logger is None:
        return {"tracking": "none", **summary}
    logger.log_metrics({f"train/{job.unit}_per_second": result.images_per_second, **metrics})
    # offline from the start, or since the store went away during the fit (then its pending logger)
    logger = getattr(logger, "pending", None) or logger
    offline = logger.run_id is None
    description = (
        f"{job.description(model, result)} Trained {result.epochs} epochs on {tags[tracking.TAG_DATA_PATH]} "
        f"(DVC hash {tags[tracking.TAG_DATA_HASH]})."
    )
    name = job.registered_name or use_case
    if offline:
        if job.registrar is not None:
            logger.set_register(
                folder / "model.pt", name, description, registrar=job.registrar, candidate=job.candidate
            )
        for png in sorted((folder / "recon").glob("epoch_*.png")):
            logger.log_artifact(png, "reconstructions")
        record = {
            "tracking": "offline",
            "pending": str(logger.folder),
            "run_id": None,
            "experiment_id": None,
            "experiment_name": tracking.experiment_name(params.tracking, use_case),
            "tracking_uri": params.tracking.resolved_uri(),
        }
        return {**record, **summary}
    registration: dict[str, str] = {}
    if job.registrar is not None:
        # Registered once per run: a training killed after registering reuses that version on resume.
        registration = resume.record.get("registration") or tracking.registrar(job.registrar)(
            params.tracking, logger.run_id, folder / "model.pt", name, description
        )
        resume.save(registration=registration)
    return {**tracking.run_record(params.tracking, logger, use_case), **registration, **summary}
