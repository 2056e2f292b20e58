"""The ``sensor`` section of params.yaml: everything the sensor use case reads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from aeflow.models.configs import AEConfig, ModelSection, model_section
from aeflow.sections import (
    GateParams,
    PositiveInt,
    Strict,
    SweepParams,
    ThresholdParams,
    TrainParams,
    UseCaseSection,
)

DEFAULT_NAB_BASE_URL = "https://raw.githubusercontent.com/numenta/NAB/master/"
DEFAULT_SENSORS = ["vibration_rms", "motor_current", "pressure", "temperature", "flow"]
ANOMALY_KINDS = ("spike", "drop", "level_shift", "drift", "noise_burst", "stuck")


class SensorIngestParams(Strict):
    """Where sensor readings come from and how the time line is split.

    ``simulator`` (default, offline) generates a pump: vibration RMS, motor current, pressure, temperature
    and flow driven by a daily load cycle and random load regimes, correlated through the load, with sensor
    noise. ``csv`` reads ``path`` (a file or a folder of files): the NAB layout (``timestamp,value``; anomaly
    windows from ``labels_json``) or a wide layout (a datetime column, one column per sensor, optional
    ``label_column``). ``nab`` downloads ``nab_files`` from ``nab_base_url`` (+ the label windows).

    Splits are in time order: the first ``train_fraction`` trains (normal data only), the next
    ``val_fraction`` sets the threshold, the rest is scored. Where each file is its own experiment whose
    first readings are normal (a test rig, a run of a machine), split by what is known instead: the first
    ``train_rows`` rows (or the first ``train_span`` of time, e.g. ``"2min"``) train, then ``val_rows`` /
    ``val_span`` set the threshold (none: the threshold is fitted on the training rows, scored in
    context), and the rest of each file is scored. For NAB files the whole series is scored as NAB does,
    and training uses the probationary period (the first 15 %).
    """

    source: Literal["simulator", "csv", "nab"] = "simulator"
    days: Annotated[float, Field(gt=0, le=3650)] = 21.0
    sample_minutes: Annotated[float, Field(gt=0, le=1440)] = 5.0
    sensors: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSORS), min_length=1)
    noise_level: Annotated[float, Field(ge=0, le=1)] = 0.03
    start: str = "2026-01-05 00:00:00"
    path: str | None = None
    layout: Literal["auto", "nab", "wide"] = "auto"
    delimiter: str | None = None
    timestamp_column: str = "timestamp"
    label_column: str | None = None
    labels_json: str | None = None
    files: list[str] | None = None
    nab_base_url: str = DEFAULT_NAB_BASE_URL
    nab_files: list[str] = Field(
        default_factory=lambda: ["realKnownCause/machine_temperature_system_failure.csv"], min_length=1
    )
    download_dir: str = "data/downloads/nab"
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    train_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.15
    train_rows: PositiveInt | None = None
    val_rows: Annotated[int, Field(ge=0)] | None = None
    train_span: str | None = None
    val_span: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SensorIngestParams:
        if self.source == "csv" and not self.path:
            raise ValueError("source 'csv' needs path: a CSV file or a folder of CSV files")
        if self.train_rows is not None and self.train_span is not None:
            raise ValueError("give train_rows or train_span, not both")
        if self.val_rows is not None and self.val_span is not None:
            raise ValueError("give val_rows or val_span, not both")
        if (self.val_rows is not None or self.val_span is not None) and self.split_by is None:
            raise ValueError("val_rows / val_span need train_rows or train_span (else val_fraction applies)")
        for name in ("train_span", "val_span"):
            text = getattr(self, name)
            if text is not None:
                span_seconds(text, name)
        if self.split_by is None and self.train_fraction + self.val_fraction >= 0.95:
            raise ValueError("train_fraction + val_fraction must leave at least 5% of the series to score")
        return self

    @property
    def split_by(self) -> str | None:
        """``"rows"`` or ``"span"`` when every series is split by a count or a time span; else ``None``
        (fractions)."""
        return "rows" if self.train_rows is not None else "span" if self.train_span is not None else None


def span_seconds(text: str, name: str) -> float:
    """A time span such as ``"2h"``, ``"90s"``, ``"1D"`` in seconds (pandas' notation), positive."""
    import pandas as pd

    try:
        seconds = pd.Timedelta(text).total_seconds()
    except (ValueError, TypeError):
        raise ValueError(f"{name} {text!r} is not a time span; use e.g. '400s', '2min', '6h', '1D'") from None
    if seconds <= 0:
        raise ValueError(f"{name} {text!r} must be longer than zero")
    return seconds


class SensorValidateParams(Strict):
    """Bounds of the great-expectations suite on sensor series.

    A step longer than ``max_gap_factor`` × the median step is a gap; the series fails when gaps are more
    than ``max_gap_ratio`` of its rows (the windows assume a regular time grid). NAB files keep their own
    row order, so up to ``nab_order_tolerance`` of their rows may break strict time order (clock artefacts).
    """

    max_missing_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05
    max_gap_factor: Annotated[float, Field(ge=1)] = 10.0
    max_gap_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05
    nab_order_tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.01
    min_rows: PositiveInt = 100


class AnomalyParams(Strict):
    """Faults injected into the scored segment (never into train or validation), deterministic by seed.

    ``magnitude`` is in units of the affected sensor's standard deviation on the training segment; durations
    are in samples. ``inject`` decides for which sources: ``simulator`` (default: real data such as NAB keeps
    only its own labels) or ``always``.
    """

    kinds: list[Literal["spike", "drop", "level_shift", "drift", "noise_burst", "stuck"]] = Field(
        default_factory=lambda: list(ANOMALY_KINDS), min_length=1
    )
    events_per_kind: Annotated[int, Field(ge=0, le=100)] = 3
    magnitude: Annotated[float, Field(gt=0, le=50)] = 4.0
    min_duration: PositiveInt = 6
    max_duration: PositiveInt = 48
    min_gap: Annotated[int, Field(ge=0)] = 48
    inject: Literal["simulator", "always", "never"] = "simulator"

    @model_validator(mode="after")
    def _check(self) -> AnomalyParams:
        if self.min_duration > self.max_duration:
            raise ValueError("min_duration must not exceed max_duration")
        return self


class WindowParams(Strict):
    """Sliding windows the model sees, and the scaler fitted on the training segment only."""

    length: Annotated[int, Field(ge=4, le=1024)] = 32
    train_stride: PositiveInt = 2
    #: A point's score is the reconstruction error of the newest ``score_steps`` readings of the window
    #: that ends at it: a spike counts the moment it arrives, not diluted over the whole window.
    score_steps: PositiveInt = 4
    scaler: Literal["standard", "robust", "minmax"] = "robust"


class SensorEvaluateParams(Strict):
    """Scoring of detections and which baselines run beside the autoencoder."""

    baselines: list[Literal["isolation_forest", "rolling_zscore", "pca"]] = Field(
        default_factory=lambda: ["isolation_forest", "rolling_zscore", "pca"]
    )
    zscore_window: Annotated[int, Field(ge=4)] = 288
    pca_components: PositiveInt = 2
    nab_profiles: list[Literal["standard", "reward_low_FP_rate", "reward_low_FN_rate"]] = Field(
        default_factory=lambda: ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
    )


def _sensor_model() -> AEConfig:
    return model_section(
        {
            "variant": "vanilla",
            "architecture": "conv1d",
            "latent_dim": 16,
            "channels": [32, 64],
            "blocks_per_stage": 0,
            "hidden_dims": [64],
            "batch_norm": True,
            "loss": "mse",
        }
    )


def _sensor_train() -> TrainParams:
    return TrainParams.model_validate(
        {
            "epochs": 15,
            "batch_size": 128,
            "lr": 2e-3,
            "augment": {"rotation_deg": 0, "translate_px": 0, "scale": 0},
        }
    )


class SensorParams(UseCaseSection):
    """Everything the ``sensor`` use case reads."""

    ingest: SensorIngestParams = Field(default_factory=SensorIngestParams)
    validate_: SensorValidateParams = Field(default_factory=SensorValidateParams, alias="validate")
    anomalies: AnomalyParams = Field(default_factory=AnomalyParams)
    windows: WindowParams = Field(default_factory=WindowParams)
    model: ModelSection = Field(default_factory=_sensor_model)
    train: TrainParams = Field(default_factory=_sensor_train)
    threshold: ThresholdParams = Field(default_factory=ThresholdParams)
    evaluate: SensorEvaluateParams = Field(default_factory=SensorEvaluateParams)
    sweep: SweepParams = Field(default_factory=lambda: SweepParams(latent_dims=[2, 4, 8, 16, 32], epochs=5))
    promotion: GateParams = Field(
        default_factory=lambda: GateParams(
            metric="test/pr_auc", mode="max", margin=0.005, margin_type="absolute"
        )
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SECTION = SensorParams
