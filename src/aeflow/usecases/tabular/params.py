"""The ``tabular`` section of params.yaml: everything the tabular use case reads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from aeflow.models.configs import AEConfig, ModelSection, model_section
from aeflow.sections import GateParams, PositiveInt, Strict, ThresholdRule, TrainParams, UseCaseSection

INJECTED_KINDS = ("local", "global", "dependency", "clustered")
BASELINES = ("isolation_forest", "ecod", "pyod_autoencoder", "pca")


class TabularIngestParams(Strict):
    """Where the table comes from.

    ``simulator`` (default, offline) generates card transactions (amount, hour, merchant category, channel,
    country, the card's usual spend, distance from home, ...), normal behaviour only: the anomalies are
    injected later (``tabular.anomalies``). ``file`` reads ``path``: a CSV or Parquet file, a folder of
    them (same columns), or an ``.npz`` in ADBench's layout (``X`` rows × features, ``y`` 0/1). ``download``
    fetches ``url`` into ``download_dir`` and reads it as ``file`` does.

    ``label_column`` names an optional 0/1 anomaly column (``npz``: ``y``); ``drop_columns`` removes
    columns that identify rather than describe a row (ids, timestamps); ``categorical_columns`` forces
    columns to be categories (``null``: every column that holds text). ``max_rows`` keeps a seeded random
    sample of a large table (anomalies in proportion).
    """

    source: Literal["simulator", "file", "download"] = "simulator"
    rows: Annotated[int, Field(ge=100, le=10_000_000)] = 4000
    path: str | None = None
    format: Literal["auto", "csv", "parquet", "npz"] = "auto"
    delimiter: str | None = None
    label_column: str | None = None
    drop_columns: list[str] = Field(default_factory=list)
    categorical_columns: list[str] | None = None
    max_rows: Annotated[int, Field(ge=100)] | None = None
    url: str | None = None
    download_dir: str = "data/downloads/tabular"
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    retries: Annotated[int, Field(ge=1, le=10)] = 3

    @model_validator(mode="after")
    def _check(self) -> TabularIngestParams:
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs path: a CSV, Parquet or npz file, or a folder of them")
        if self.source == "download" and not self.url:
            raise ValueError("source 'download' needs url: where the CSV, Parquet or npz file is served")
        return self


class TabularValidateParams(Strict):
    """Bounds of the great-expectations suite on the ingested table."""

    min_rows: PositiveInt = 200
    max_missing_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05  # per column
    allow_constant_columns: bool = False  # a column with one value carries no information
    max_categories: PositiveInt = 100  # more distinct texts than this: an id, not a category


class SplitParams(Strict):
    """How rows are split (stratified by label, seeded).

    ``semi_supervised`` (default, the seed's setting): the model and every baseline fit on the normal rows
    of the training split only. ``unsupervised`` (ADBench's protocol): they fit on the whole training split,
    anomalies included, as one would on unlabelled data. The test split is the same in both.
    ``val_fraction`` of the training rows (normal rows under semi_supervised) stop training early and set
    the threshold.
    """

    protocol: Literal["semi_supervised", "unsupervised"] = "semi_supervised"
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.3
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.15


class TabularAnomalyParams(Strict):
    """Synthetic anomalies of ADBench's four kinds, injected into the test split (never into training).

    ``local``: drawn from a Gaussian mixture fitted to normal rows with its covariances scaled by
    ``local_scale``; ``global``: each column uniform over its training range widened by ``global_scale``;
    ``dependency``: a normal row whose ``dependency_columns`` columns take values from other rows (each
    column's values stay plausible, their relation to the rest breaks; the corrupted columns are recorded,
    so the report can check the attribution); ``clustered``: a mixture whose means are shifted by
    ``cluster_shift``. ``inject``: ``unlabelled`` (data without a label column), ``always`` or ``never``.
    """

    inject: Literal["unlabelled", "always", "never"] = "unlabelled"
    kinds: list[Literal["local", "global", "dependency", "clustered"]] = Field(
        default_factory=lambda: list(INJECTED_KINDS), min_length=1
    )
    fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.05  # injected rows per test row
    local_scale: Annotated[float, Field(gt=1, le=100)] = 5.0
    global_scale: Annotated[float, Field(gt=0, le=10)] = 0.1
    cluster_shift: Annotated[float, Field(gt=0, le=100)] = 5.0
    dependency_columns: PositiveInt = 1
    mixture_components: Annotated[int, Field(ge=1, le=20)] = 5


class EncodingParams(Strict):
    """Preprocessing fitted on training rows only: numeric columns scaled (``standard``: mean/std,
    ``robust``: median/IQR, ``minmax``), missing numbers filled with the training median; categorical
    columns one-hot over their ``max_categories`` most common training values (the rest, and values never
    seen in training, share one ``other`` slot). ``latent_fraction`` sizes the code from the encoded width."""

    scaler: Literal["standard", "robust", "minmax"] = "standard"
    max_categories: Annotated[int, Field(ge=1, le=1000)] = 20
    #: The latent size when ``tabular.model.latent_dim`` is ``auto``: this share of the encoded width.
    #: Tables are not images: their columns are few and each carries its own information, so a code of
    #: log2(width) (the images' rule) drops what anomalies differ in; measured on 13 ADBench sets
    #: (semi-supervised, mean ROC-AUC): log2 0.82, half the width 0.83, three quarters 0.87.
    latent_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.75


class TabularEvaluateParams(Strict):
    """Which baselines run beside the autoencoder, on the same split and the same encoded columns.

    PyOD's Isolation Forest, ECOD and AutoEncoder (PyOD's defaults; ``pyod_epochs`` trains the last), and
    PCA's reconstruction error with the components that explain ``pca_variance`` of the training rows'
    variance (at the autoencoder's latent size, most of a table's columns, PCA would leave no residual).
    """

    baselines: list[Literal["isolation_forest", "ecod", "pyod_autoencoder", "pca"]] = Field(
        default_factory=lambda: list(BASELINES)
    )
    pyod_epochs: PositiveInt = 10  # PyOD's own default
    pca_variance: Annotated[float, Field(gt=0, lt=1)] = 0.9  # PCA keeps the components explaining this share
    top_k: Annotated[int, Field(ge=1, le=20)] = 3  # columns named per flagged row
    shown_rows: Annotated[int, Field(ge=1, le=1000)] = 20  # flagged rows listed in the report


def _tabular_model() -> AEConfig:
    return model_section(
        {
            "variant": "vanilla",
            "architecture": "mlp",
            "latent_dim": "auto",
            "hidden_dims": [128, 64],
            "batch_norm": True,
            "loss": "mse",
        }
    )


def _tabular_train() -> TrainParams:
    return TrainParams.model_validate(
        {
            "epochs": 60,
            "batch_size": 128,
            "lr": 2e-3,
            "weight_decay": 1e-5,
            "augment": {"rotation_deg": 0, "translate_px": 0, "scale": 0},
            "progress_bar": False,
        }
    )


class TabularParams(UseCaseSection):
    """Everything the ``tabular`` use case reads."""

    ingest: TabularIngestParams = Field(default_factory=TabularIngestParams)
    validate_: TabularValidateParams = Field(default_factory=TabularValidateParams, alias="validate")
    split: SplitParams = Field(default_factory=SplitParams)
    anomalies: TabularAnomalyParams = Field(default_factory=TabularAnomalyParams)
    encoding: EncodingParams = Field(default_factory=EncodingParams)
    model: ModelSection = Field(default_factory=_tabular_model)
    train: TrainParams = Field(default_factory=_tabular_train)
    threshold: ThresholdRule = Field(
        default_factory=lambda: ThresholdRule(method="percentile", percentile=99.0)
    )
    evaluate: TabularEvaluateParams = Field(default_factory=TabularEvaluateParams)
    promotion: GateParams = Field(
        default_factory=lambda: GateParams(
            metric="test/pr_auc", mode="max", margin=0.005, margin_type="absolute"
        )
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SECTION = TabularParams
