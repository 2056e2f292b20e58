"""Fit an autoencoder with Lightning: the one training routine behind the train stage, the latent-size
sweep and the benchmarks.

It takes arrays and returns the fitted model; what to do with files and runs is the caller's business
(loggers and callbacks are passed in).

**Resuming a killed fit** (``resume_dir``): :class:`ResumeCheckpoint` keeps ``<resume_dir>/last.ckpt``
current (atomically, every ``resume_every_n_steps`` optimizer steps and at every epoch end) and a later
call with the same folder continues from it (``trainer.fit(ckpt_path=...)``) to the same weights and metrics
as an uninterrupted fit. Lightning restores weights, optimiser, scheduler, loop counters and callback states;
exactness mid-epoch needs three more things, all kept here:

* the shuffled order of the interrupted epoch: torch's ``RandomSampler`` draws it from the global RNG, so it
  is replaced by :class:`ResumableSampler`, whose order is a function of (seed, epoch) alone and which skips
  the batches already trained (Lightning counts them; a plain loader would restart the epoch in a new order);
* the global RNG states (augmentation, dropout, VAE sampling), restored just before the first batch is drawn;
* the running sums behind the epoch means logged with ``on_epoch=True`` (``train/loss`` …), which Lightning
  does not checkpoint; they are added back after the first resumed batch (``a + b == b + a`` exactly).

Exact resumption is for one process (the default); under DDP the fit still resumes from epoch ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from aeflow.data.datamodules import PairDataModule
from aeflow.errors import ParamsError
from aeflow.models.base import BaseAutoencoder
from aeflow.models.configs import AEConfig
from aeflow.models.registry import build_model
from aeflow.sections import TrainParams


@dataclass
class FitResult:
    """The fitted model (best validation weights when there is a validation split) and a summary."""

    model: BaseAutoencoder
    epochs: int
    best_val_loss: float | None
    best_checkpoint: str | None
    seconds: float
    images_per_second: float
    resumed_from_step: int | None = None  # the global step of the checkpoint a killed fit continued from


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter (GPU/TPU availability, tips) that is noise on CPU-only runs."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*Total length of .* across ranks is zero.*")
    warnings.filterwarnings("ignore", ".*`training_step` returned.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")  # a resumed fit


def check_strategy(name: str) -> None:
    """Stop on an unknown ``train.strategy`` with the names Lightning knows (before any process starts)."""
    import difflib

    from pytorch_lightning.strategies import StrategyRegistry

    known = ["auto", *StrategyRegistry.available_strategies()]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ParamsError(
            f"train.strategy: unknown Lightning strategy {name!r}.{hint} Available: {', '.join(known)}."
        )


def make_trainer(
    train: TrainParams,
    *,
    epochs: int | None = None,
    logger: Any = False,
    callbacks: Sequence[pl.Callback] = (),
    checkpoint_dir: Path | None = None,
    has_val: bool = True,
    progress_bar: bool | None = None,
    resume: ResumeCheckpoint | None = None,
) -> pl.Trainer:
    """A Trainer configured from params (CPU, one process and deterministic by default).

    ``train.strategy``/``devices``/``num_nodes`` scale the same run out (DDP & co.); Lightning's own
    loggers and checkpointing write from rank 0 only, so a distributed fit still makes one MLflow run.
    ``resume`` goes after the best-model checkpoint, so its epoch-end state includes that epoch's best.
    """
    from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar

    check_strategy(train.strategy)
    cbs = list(callbacks)
    show_progress = train.progress_bar if progress_bar is None else progress_bar
    if show_progress:
        cbs.append(RichProgressBar(leave=True))
    if checkpoint_dir is not None:
        cbs.append(
            ModelCheckpoint(
                dirpath=str(checkpoint_dir),
                filename="best-{epoch:03d}",
                monitor="val/loss" if has_val else "train/loss",
                mode="min",
                save_top_k=1,
                save_last=True,
                # a resumed fit may save an epoch's file again: overwrite it rather than add "-v1"
                enable_version_counter=resume is None,
            )
        )
    if resume is not None:
        cbs.append(resume)
    return pl.Trainer(
        max_epochs=epochs or train.epochs,
        accelerator=train.accelerator,
        strategy=train.strategy,
        devices=train.devices,
        num_nodes=train.num_nodes,
        deterministic=train.deterministic,
        logger=logger,
        callbacks=cbs,
        enable_checkpointing=checkpoint_dir is not None or resume is not None,
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )


@dataclass
class SeededModel:
    """A model built by :func:`build_seeded`, with the RNG state right after its weights were drawn: a fit
    that takes it continues exactly as if it had built the model itself, so a caller can build (and check)
    the model once, before it opens a tracking run, without changing a single weight of the result."""

    model: BaseAutoencoder
    rng: dict[str, Any]


def _optim(train: TrainParams) -> dict[str, Any]:
    return {"lr": train.lr, "weight_decay": train.weight_decay, "scheduler": train.scheduler}


def _seed(seed: int, train: TrainParams) -> None:
    quiet_lightning()
    pl.seed_everything(seed, workers=True, verbose=False)
    if train.num_threads:
        torch.set_num_threads(train.num_threads)


def build_seeded(
    model_section: AEConfig | dict[str, Any],
    input_shape: Sequence[int],
    train: TrainParams,
    seed: int,
    output: str = "sigmoid",
    where: str = "model",
) -> SeededModel:
    """Seed, then build the model :func:`fit_autoencoder` would build (a bad section raises
    :class:`~aeflow.errors.ParamsError` here, before anything else happened)."""
    _seed(seed, train)
    model = build_model(model_section, list(input_shape), optim=_optim(train), output=output, where=where)
    return SeededModel(model, _rng_state())


def fit_autoencoder(
    model_section: AEConfig | dict[str, Any] | SeededModel,
    train_x: np.ndarray | None,
    val_x: np.ndarray | None,
    train: TrainParams,
    seed: int,
    *,
    datamodule: pl.LightningDataModule | None = None,
    input_shape: Sequence[int] | None = None,
    train_target: np.ndarray | None = None,
    val_target: np.ndarray | None = None,
    epochs: int | None = None,
    logger: Any = False,
    callbacks: Sequence[pl.Callback] = (),
    checkpoint_dir: Path | None = None,
    output: str = "sigmoid",
    progress_bar: bool | None = None,
    where: str = "model",
    resume_dir: Path | None = None,
    resume_every_n_steps: int | None = None,
) -> FitResult:
    """Train the variant named in ``model_section`` on ``train_x`` (targets default to the inputs); a
    :class:`SeededModel` is trained as it is.

    Data that does not fit the in-memory (input, target) arrays (e.g. spectrogram patches cut on the fly)
    comes as a ready ``datamodule`` with the ``input_shape`` of one example instead of ``train_x``/``val_x``.

    With ``resume_dir`` the fit keeps a resume checkpoint there and continues from it when one exists (the
    caller decides whether it belongs to the same data and params, e.g. with :class:`ResumeState`, and
    deletes the folder once the results are safe). ``checkpoint_dir`` should then survive a kill too (the
    best-model state in the resume checkpoint points at it).
    """
    import time

    _seed(seed, train)
    if datamodule is None:
        if train_x is None:
            raise ValueError("fit_autoencoder needs train_x or a datamodule")
        input_shape = list(train_x.shape[1:])
        has_val = val_x is not None and len(val_x) > 0
        dm: pl.LightningDataModule = PairDataModule(
            train_x,
            val_x if has_val else None,
            train.batch_size,
            train_target=train_target,
            val_target=val_target,
            augment=train.augment,
        )
        n_train = len(train_x)
    else:
        if input_shape is None:
            raise ValueError("a datamodule needs the input_shape of one example")
        dm = datamodule
        has_val = getattr(dm, "val_set", None) is not None
        n_train = len(dm.train_set)  # type: ignore[attr-defined]
    if isinstance(model_section, SeededModel):  # built by the caller: take up its RNG where it left off
        model = model_section.model
        _set_rng_state(model_section.rng)
    else:
        model = build_model(model_section, list(input_shape), optim=_optim(train), output=output, where=where)
    resume = None
    if resume_dir is not None:
        resume = ResumeCheckpoint(resume_dir, every_n_steps=resume_every_n_steps)
    trainer = make_trainer(
        train,
        epochs=epochs,
        logger=logger,
        callbacks=callbacks,
        checkpoint_dir=checkpoint_dir,
        has_val=has_val,
        progress_bar=progress_bar,
        resume=resume,
    )
    ckpt_path = None
    if resume is not None:
        if trainer.num_devices * trainer.num_nodes == 1:
            _use_resumable_sampler(dm, seed, resume.start_position)
        else:  # other ranks' RNG and data order are not in rank 0's checkpoint: resume at epoch ends only
            resume.every_n_steps = None
        ckpt_path = str(resume.path) if _readable(resume.path) else None
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    seconds = time.perf_counter() - start
    best_path, best_val = None, None
    ckpt = next((c for c in trainer.checkpoint_callbacks if hasattr(c, "best_model_path")), None)
    if ckpt is not None and getattr(ckpt, "best_model_path", ""):
        best_path = ckpt.best_model_path
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
        if has_val and ckpt.best_model_score is not None:
            best_val = float(ckpt.best_model_score)
    model.eval()
    n_epochs = trainer.current_epoch
    return FitResult(
        model=model,
        epochs=n_epochs,
        best_val_loss=best_val,
        best_checkpoint=best_path,
        seconds=seconds,
        images_per_second=n_train * max(n_epochs, 1) / max(seconds, 1e-9),
        resumed_from_step=None if resume is None else resume.resumed_from_step,
    )


# ------------------------------------------------------------------------------------------------ resuming
RESUME_CHECKPOINT = "last.ckpt"
_STATE_KEY = "aeflow_resume"


def _rng_state() -> dict[str, Any]:
    """The global torch/numpy/python RNG states, as types ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), cached],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _epoch_sums(trainer: pl.Trainer) -> dict[str, dict[str, torch.Tensor]]:
    """Running sums (and counts) of the epoch-level means and sums logged so far in this training epoch."""
    from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric

    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, metric in trainer.fit_loop.epoch_loop._results.items():
        if not isinstance(metric, _ResultMetric) or not metric.is_tensor or not metric.meta.on_epoch:
            continue
        if metric.meta.is_mean_reduction:
            count = metric.cumulated_batch_size.cpu()
            out[key] = {"value": metric.value.detach().cpu().clone(), "count": count}
        elif metric.meta.is_sum_reduction:
            out[key] = {"value": metric.value.detach().cpu().clone()}
    return out


def _add_epoch_sums(trainer: pl.Trainer, sums: dict[str, dict[str, torch.Tensor]]) -> None:
    results = trainer.fit_loop.epoch_loop._results
    for key, saved in sums.items():
        metric = results.get(key)
        if metric is None:
            continue
        metric.value = saved["value"].to(metric.value.device) + metric.value
        if "count" in saved:
            metric.cumulated_batch_size = saved["count"].to(metric.value.device) + metric.cumulated_batch_size


class ResumeCheckpoint(Checkpoint):
    """Keep ``<folder>/last.ckpt`` current so that a killed fit can continue exactly where it stopped.

    Written to a temporary name and renamed, so a kill mid-write leaves the previous checkpoint whole. Saved
    every ``every_n_steps`` optimizer steps inside an epoch (not on its last batch: validation follows) and at
    the end of every epoch, after the epoch's other callbacks (a ``Checkpoint`` runs last).
    """

    def __init__(self, folder: Path | str, every_n_steps: int | None = None) -> None:
        self.folder = Path(folder)
        self.every_n_steps = every_n_steps
        self.resumed_from_step: int | None = None
        self._mid_epoch = False
        self._pending_rng: dict[str, Any] | None = None
        self._pending_sums: dict[str, dict[str, torch.Tensor]] | None = None
        self._trainer: pl.Trainer | None = None

    @property
    def path(self) -> Path:
        return self.folder / RESUME_CHECKPOINT

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer
        self.folder.mkdir(parents=True, exist_ok=True)

    def _save(self, trainer: pl.Trainer, mid_epoch: bool) -> None:
        tmp = self.folder / f".{RESUME_CHECKPOINT}.{os.getpid()}.tmp"
        self._mid_epoch = mid_epoch
        try:
            trainer.save_checkpoint(tmp)
        finally:
            self._mid_epoch = False
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._pending_sums is not None:  # the first batch after a mid-epoch resume
            _add_epoch_sums(trainer, self._pending_sums)
            self._pending_sums = None
        n = self.every_n_steps
        if n and trainer.global_step % n == 0 and batch_idx + 1 < trainer.num_training_batches:
            self._save(trainer, mid_epoch=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._save(trainer, mid_epoch=False)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[_STATE_KEY] = {
            "rng": _rng_state(),
            "epoch_sums": _epoch_sums(trainer) if self._mid_epoch else {},
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(_STATE_KEY) or {}
        self._pending_rng = state.get("rng")
        self._pending_sums = state.get("epoch_sums") or None
        self.resumed_from_step = int(checkpoint.get("global_step", 0))

    def start_position(self) -> int:
        """Called as an epoch's first batch is drawn: the batches of this epoch already trained (0 unless
        resumed mid-epoch). Restores the checkpoint's RNG states here, after Lightning's own set-up."""
        skip = 0
        if self._trainer is not None:
            skip = int(self._trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        if self._pending_rng is not None:
            _set_rng_state(self._pending_rng)
            self._pending_rng = None
        return skip


def _readable(path: Path) -> bool:
    """Whether ``path`` is a checkpoint that loads; an unreadable one (a full disk, a foreign file) is
    removed with a warning, so the fit starts afresh instead of failing at every retry."""
    if not path.is_file():
        return False
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        warnings.warn(f"{path}: unreadable resume checkpoint ({exc}); training starts afresh", stacklevel=2)
        path.unlink(missing_ok=True)
        return False
    return True


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Shuffles like ``RandomSampler``, but each epoch's order depends on (seed, epoch) only, and iteration
    can start part-way through an epoch (``start()`` returns the batches to skip)."""

    def __init__(self, n: int, seed: int, batch_size: int, start: Callable[[], int] | None = None) -> None:
        self.n, self.seed, self.batch_size, self.start = n, seed, batch_size, start
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it before every epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0])
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))
        skip = self.start() if self.start is not None else 0
        yield from order[skip * self.batch_size :].tolist()


def _use_resumable_sampler(dm: pl.LightningDataModule, seed: int, start: Callable[[], int]) -> None:
    """Make ``dm``'s shuffled training loader resumable (same dataset, batches and collation)."""
    from torch.utils.data import DataLoader, RandomSampler

    original = dm.train_dataloader

    def train_dataloader() -> Any:
        loader = original()
        if not isinstance(loader, DataLoader) or type(loader.sampler) is not RandomSampler:
            return loader
        if loader.sampler.replacement or loader.batch_size is None:
            return loader
        return DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=ResumableSampler(len(loader.dataset), seed, loader.batch_size, start),  # type: ignore[arg-type]
            drop_last=loader.drop_last,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
            # worker seeds come from this generator, not the global RNG (whose state the checkpoint holds)
            generator=torch.Generator().manual_seed(seed),
        )

    dm.train_dataloader = train_dataloader  # type: ignore[method-assign]


def fingerprint(*parts: Any) -> str:
    """A digest of what a resume must match: params (JSON-able values) and arrays (their bytes)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def code_fingerprint() -> str:
    """A digest of the installed ``aeflow`` sources and the training libraries' versions: a checkpoint
    written by other code is not resumed."""
    import aeflow

    h = hashlib.sha256(f"{torch.__version__} {pl.__version__}".encode())
    root = Path(aeflow.__file__).parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


class ResumeState:
    """A resume folder (``last.ckpt``, the best-model checkpoints, per-epoch files) and ``state.json``, which
    records the fingerprint of the data/params/code it belongs to and where the run is tracked.

    ``resumable`` is true only when a checkpoint exists and the fingerprint matches; anything else found in
    the folder is stale and :meth:`reset` removes it.
    """

    def __init__(self, folder: Path | str, fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.record: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            self.record = json.loads((self.folder / "state.json").read_text(encoding="utf-8"))

    @property
    def checkpoint(self) -> Path:
        return self.folder / RESUME_CHECKPOINT

    @property
    def resumable(self) -> bool:
        return self.record.get("fingerprint") == self.fingerprint and self.checkpoint.is_file()

    def reset(self) -> None:
        """Start afresh: an empty folder."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.record = {}

    def save(self, **fields: Any) -> None:
        """Record ``fields`` (e.g. the MLflow run id) with the fingerprint."""
        from aeflow.io import write_json

        self.record = {**self.record, **fields, "fingerprint": self.fingerprint}
        write_json(self.folder / "state.json", self.record)

    def clear(self) -> None:
        """Delete the folder (after the results it could recreate are safely in place)."""
        shutil.rmtree(self.folder, ignore_errors=True)
