"""The params sections every use case and every shared floor reads: the strict base, tracking, training,
evaluation, the latent sweep, thresholds for anomaly scores and the promotion gate (the ``model`` section,
typed per variant, is :mod:`aeflow.models.configs`).

Each use case adds its own section in ``aeflow/usecases/<name>/params.py`` from these parts;
:mod:`aeflow.config` composes the whole ``params.yaml`` from them. Shared code imports from here, never from
a use case's section, so no floor below the use cases depends on one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ReadLog:
    """The ``params.yaml`` keys one process read, for holding ``dvc.yaml``'s per-stage ``params:`` lists
    against the code (``tests/pipeline``): a stage must depend on exactly the keys it reads, so an
    experiment reruns what a change affects and nothing else. Off unless :func:`record_reads` was called
    (``AEFLOW_RECORD_PARAMS``); a read is an attribute access on a section, or a dump or copy of one
    (every field it carries)."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.keys: set[str] = set()

    def note(self, section: Strict, name: str, value: Any) -> None:
        base = self.paths.get(id(section))
        if base is None:  # a section built by the code (a copy with overrides), not read from the file
            return
        field = type(section).model_fields[name]
        key = f"{base}.{field.alias or name}" if base else field.alias or name
        if isinstance(value, Strict):
            self.paths.setdefault(id(value), key)  # walking down: the keys below are what counts
        else:
            self.keys.add(key)

    def note_all(self, section: Strict, skip: Iterable[str] = ()) -> None:
        for name in type(section).model_fields:
            if name not in skip:
                value = getattr(section, name)
                if isinstance(value, Strict):
                    self.note_all(value)


_READS: ReadLog | None = None


def record_reads(root: Strict) -> ReadLog:
    """Start (or continue) recording which keys of ``root`` (a whole params file) this process reads."""
    global _READS
    if _READS is None:
        _READS = ReadLog()
    _READS.paths[id(root)] = ""
    return _READS


def reads() -> ReadLog | None:
    """The running :class:`ReadLog`, if recording."""
    return _READS


@contextmanager
def unrecorded() -> Iterator[None]:
    """Reads that are not dependencies: the whole file logged with a run as a snapshot of its settings."""
    global _READS
    saved, _READS = _READS, None
    try:
        yield
    finally:
        _READS = saved


class Strict(BaseModel):
    """Base for every params section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if _READS is not None and not name.startswith("_") and name in type(self).model_fields:
            _READS.note(self, name, value)
        return value

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        if _READS is not None:
            _READS.note_all(self, _skipped(self, kwargs.get("include"), kwargs.get("exclude")))
        return super().model_dump(**kwargs)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        if _READS is not None:
            _READS.note_all(self, update or ())
        return super().model_copy(update=update, deep=deep)


def _names(keys: Any) -> set[str]:
    return set(keys) if isinstance(keys, set | dict | list | tuple) else set()


def _skipped(self: Strict, include: Any, exclude: Any) -> set[str]:
    """The fields a ``model_dump(include=…, exclude=…)`` leaves out (top level)."""
    skip = _names(exclude)
    if include is not None:
        skip |= set(type(self).model_fields) - _names(include)
    return skip


class UseCaseSection(Strict):
    """Base of a use case's own section (``mnist:``, ``speech:``, …): :class:`Params` knows its use cases
    by these fields, and ``tests/unit/test_use_cases.py`` holds them against the registry in
    :mod:`aeflow.usecases` (which names them; this module imports no use case)."""


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]


class TrackingParams(Strict):
    """Where MLflow writes. ``MLFLOW_TRACKING_URI`` in the environment wins over ``tracking_uri``."""

    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_location: str = "mlartifacts"
    experiment_prefix: str = "aeflow"
    registered_model_prefix: str = "aeflow"
    ui_url: str = "http://127.0.0.1:5000"

    def resolved_uri(self) -> str:
        """The URI actually used: the environment override, else the params value."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri


class AugmentParams(Strict):
    """Random affine augmentation of training images (0 disables each part).

    With only 5,000 digits an autoencoder over-fits quickly; small shifts, rotations and zooms act like
    more data and lowered held-out MSE by ~20 % in our measurements (see README benchmark).
    """

    rotation_deg: Annotated[float, Field(ge=0, le=45)] = 10.0
    translate_px: Annotated[float, Field(ge=0, le=8)] = 2.0
    scale: Annotated[float, Field(ge=0, le=0.5)] = 0.1

    @property
    def enabled(self) -> bool:
        return self.rotation_deg > 0 or self.translate_px > 0 or self.scale > 0


class TrainParams(Strict):
    """Optimisation and Lightning Trainer settings.

    ``strategy``/``devices``/``num_nodes`` are handed to the Trainer unchanged, so scaling out is a params
    change: e.g. ``strategy: ddp, devices: 4`` on one GPU machine, plus ``num_nodes: 2`` under a cluster
    launcher (torchrun/SLURM). On CPU, DDP uses the gloo process-group backend. The defaults train in the
    one process that runs the stage.
    """

    epochs: PositiveInt = 15
    batch_size: PositiveInt = 128
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    scheduler: Literal["onecycle", "constant"] = "onecycle"
    augment: AugmentParams = Field(default_factory=AugmentParams)
    num_recon_images: Annotated[int, Field(ge=1, le=64)] = 16
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    strategy: str = "auto"
    devices: PositiveInt | Literal["auto"] = 1
    num_nodes: PositiveInt = 1
    deterministic: bool = True
    num_threads: PositiveInt | None = None
    progress_bar: bool = True


class EvaluateParams(Strict):
    """Evaluation settings. PCA always uses the model's latent size, fitted on the same training split."""

    batch_size: PositiveInt = 1000
    clip_pca: bool = True


class SweepParams(Strict):
    """AE against PCA at several latent sizes ("is this just fancy PCA?")."""

    latent_dims: list[PositiveInt] = Field(default_factory=lambda: [2, 4, 8, 10, 16, 32, 64], min_length=1)
    epochs: PositiveInt = 5


class ThresholdRule(Strict):
    """How an anomaly threshold is set on validation scores of normal data (any use case that flags).

    ``percentile`` of the validation scores; ``mean_k_sigma`` (mean + k·std of them); ``pot`` (peaks over
    threshold: a generalised Pareto tail fitted above the ``pot_quantile`` of validation scores, threshold
    at false-alarm ``pot_risk`` per point); ``fixed``: the number in ``value`` as it is.
    """

    method: Literal["percentile", "mean_k_sigma", "pot", "fixed"] = "pot"
    percentile: Annotated[float, Field(gt=50, lt=100)] = 99.5
    k: Annotated[float, Field(gt=0, le=20)] = 4.0
    pot_quantile: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    pot_risk: Annotated[float, Field(gt=0, lt=0.1)] = 3e-4
    value: float | None = None

    @model_validator(mode="after")
    def _fixed_needs_value(self) -> ThresholdRule:
        if self.method == "fixed" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(
                "method 'fixed' needs a finite 'value' (the threshold itself, e.g. value: 3.5 with history: "
                "750 for 3.5 standard deviations above the recent past). Fix: set threshold.value."
            )
        return self


class ThresholdParams(ThresholdRule):
    """A threshold rule (:class:`ThresholdRule`) for scores of time series, and how those scores are made.

    ``fixed`` is meaningful when scores are on a known scale, i.e. with ``history`` (then ``value`` is
    "standard deviations above the recent past").

    ``history``: 0 scores the (smoothed) error as it is. N > 0 re-expresses it, row by row, in standard
    deviations above the mean of the N errors before it (an anomaly likelihood in the spirit of HTM's):
    real series drift after training, and an error level that was rare in the probationary period can be
    everyday a month later; measuring against the recent past re-fits the error's scale online, at no
    training cost, and a sustained change stops alarming once it is the new normal.

    ``history_outlier``: with ``history``, a row scored more than this many standard deviations above its
    past keeps its error out of the past (``null``: every error joins). The past's spread is the scale, so
    a fault thousands of deviations high would shrink every score for ``history`` rows after it and hide
    the next fault; ``history_outlier_rows`` is the most rows in a row kept out, after which a level that
    stays is the new normal.

    ``cooldown``: after an alarm, further flagged rows within this many rows raise no new alarm (they stay
    flagged). One incident, one page; NAB scores count every alarm outside a window as a false positive.

    ``season``: a duration such as ``1D`` (pandas notation: ``12h``, ``7D``): a score counts only by how
    far it rises above the highest score one season earlier (within ``season_tolerance`` rows), so what
    recurs at the same time every day — a nightly job, a shift change — stops alarming after its first
    day (:func:`~aeflow.evaluation.thresholds.seasonal_excess`). A list (``[1D, 7D]``) measures against
    the highest score one season earlier for each: what recurred yesterday *or* the same day last week
    (a Monday batch, a weekend dip) is no news. ``null`` turns it off.

    ``season_readings`` (with ``season`` and ``history``): each row's readings are also compared with the
    closest readings around the same time one season earlier (any of the seasons), that difference is
    measured against its own past as the errors are, and a row scores the higher of the two. An error
    judges a window's shape, and a holiday is shaped like an ordinary Sunday: a series that repeats daily
    or weekly says what to expect at each time, so a reading unlike yesterday's and last week's at that
    time is news even where the model reconstructs it well
    (:func:`~aeflow.evaluation.thresholds.seasonal_difference`). ``season_readings_correlation``: readings
    are compared only where the normal data repeat at a season, i.e. where their correlation with the
    readings one season earlier (mean over sensors, the best season) is at least this; where a series does
    not repeat (a server's load), the readings a season back are as far from today's as any others and
    their difference is noise (:func:`~aeflow.usecases.sensor.detector.season_repeat`; measured at
    training and said in the run's description).

    ``flatline_min_run``: a sensor that repeats one exact reading for this many samples, and for twice
    the longest repeat it showed in training, is flagged as stuck (0 turns the guard off); a frozen value
    is the one fault a reconstruction error cannot see. ``flatline_risk``: the run must also be one a
    live sensor makes by chance less often than this, per reading, judged from how often it repeated its
    previous reading in training (quantised sensors, e.g. readings rounded to one decimal, repeat
    legitimately).
    """

    smoothing: Annotated[int, Field(ge=1, le=500)] = 1
    history: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    history_outlier: Annotated[float, Field(gt=0)] | None = None
    history_outlier_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    cooldown: Annotated[int, Field(ge=0, le=1_000_000)] = 48
    season: str | list[str] | None = None
    season_tolerance: Annotated[int, Field(ge=0, le=10000)] = 2
    season_readings: bool = False
    season_readings_correlation: Annotated[float, Field(ge=-1, le=1)] = 0.5
    flatline_min_run: Annotated[int, Field(ge=0, le=10000)] = 4
    flatline_risk: Annotated[float, Field(gt=0, lt=0.5)] = 1e-4

    @model_validator(mode="after")
    def _time_series_settings(self) -> ThresholdParams:
        self.season_seconds()  # raises on a duration pandas cannot read
        if self.history and self.history < 2 * self.smoothing:
            raise ValueError(
                f"history ({self.history}) must be at least twice smoothing ({self.smoothing}): the recent "
                "errors are compared with a longer past. Fix: raise history or set it to 0."
            )
        if self.season_readings and not (self.season and self.history):
            raise ValueError(
                "season_readings compares readings with the same time one season earlier, relative to their "
                f"past, and season is {self.season!r}, history {self.history}. Fix: set season (e.g. 1D) and "
                "history (e.g. 8640), or season_readings: false."
            )
        if self.history_outlier is not None and not self.history:
            raise ValueError(
                f"history_outlier ({self.history_outlier:g}) keeps outliers out of the past errors, and "
                "history is 0 (no past). Fix: set history (e.g. 8640) or history_outlier: null."
            )
        return self

    @property
    def seasons(self) -> list[str]:
        """``season`` as a list of durations (empty when off)."""
        if self.season is None:
            return []
        return [self.season] if isinstance(self.season, str) else list(self.season)

    def season_seconds(self) -> list[float]:
        """Each of ``seasons`` in seconds (empty when off)."""
        import pandas as pd

        out = []
        for season in self.seasons:
            try:
                seconds = pd.Timedelta(season).total_seconds()
            except (ValueError, TypeError):
                seconds = float("nan")
            if not seconds > 0:
                raise ValueError(
                    f"season {season!r} is not a positive duration. Fix: write it as pandas does, e.g. "
                    "'1D' (a day), '12h', '7D', a list such as [1D, 7D], or null to turn seasons off."
                )
            out.append(seconds)
        return out


class GateParams(Strict):
    """The champion/challenger gate of one use case (``aeflow promote`` / ``aeflow retrain``).

    Both models are scored on the same DVC-tracked evaluation set; the challenger replaces the champion only
    when ``metric`` improves by at least ``margin`` (a fraction of the champion's score when
    ``margin_type`` is relative, in the metric's own units when absolute), so noise between two equally good
    trainings does not flip the alias back and forth.
    """

    metric: str
    mode: Literal["min", "max"]
    margin: Annotated[float, Field(ge=0)] = 0.01
    margin_type: Literal["relative", "absolute"] = "relative"
