"""The ``model`` section, typed per variant, without Lightning.

A ``model`` section is one of the classes here, chosen by its ``variant`` key (``vanilla`` when absent), and
validated whole when ``params.yaml`` is loaded: a key of another variant (``beta`` under ``variant: sparse``)
or a bad value stops every stage with the dotted key, before anything runs. The classes live here rather
than beside their Lightning modules in :mod:`aeflow.models.variants` because every stage loads params and
importing Lightning costs seconds; a variant module takes its class from here (``@register(name,
config=...)``), and ``tests/unit/test_variants.py`` holds the two lists against each other.

A new variant = its module in ``models/variants/`` + its class here, added to :data:`CONFIGS`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, TypeAdapter

from aeflow.sections import PositiveInt, Strict


class AEConfig(Strict):
    """Fields every autoencoder variant shares; each variant's class below adds its own.

    ``latent_dim: auto`` applies the rule of thumb round(log2(input size)), 10 for 28×28 digits.
    ``architecture`` picks the encoder/decoder pair (``mlp`` and ``conv`` for images and spectrograms,
    ``conv1d`` and ``lstm`` for windows of time series shaped (sensors, time); ``temporal_conv`` for either
    kind of sequence (last axis = time): a code of ``latent_dim`` per time step from dilated convolutions,
    ``hidden_dims[0]`` wide, ``blocks_per_stage`` deep);
    ``channels``/``blocks_per_stage``/``batch_norm`` shape the convolutional ones, ``hidden_dims`` the fully
    connected layers (the whole MLP, or the layers between the convolutional features and the code).
    ``members`` > 1 trains that many such autoencoders side by side, each from its own initial weights
    (:class:`~aeflow.models.ensemble.AutoencoderEnsemble`): steadier scores from models fitted on little
    data, at ``members`` times the training and inference work.
    """

    variant: str = "vanilla"
    architecture: Literal["mlp", "conv", "conv1d", "lstm", "temporal_conv"] = "conv"
    latent_dim: PositiveInt | Literal["auto"] = "auto"
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [256])
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=4)
    blocks_per_stage: Annotated[int, Field(ge=0, le=4)] = 1
    batch_norm: bool = True
    loss: Literal["bce", "mse"] = "bce"
    members: PositiveInt = 1

    def code_input_size(self, input_shape: list[int]) -> int:
        """How many input values one code vector describes: all of them, or one time step's
        (``temporal_conv``, whose code is per step): the size ``auto`` and the undercomplete check use."""
        return math.prod(input_shape[:-1] if self.architecture == "temporal_conv" else input_shape)

    def resolved_latent_dim(self, input_size: int) -> int:
        """The latent size in effect: the explicit value, or round(log2(input size))."""
        if self.latent_dim == "auto":
            return max(1, round(math.log2(input_size)))
        return self.latent_dim


class VanillaAEConfig(AEConfig):
    """No options beyond the common ones."""

    variant: Literal["vanilla"] = "vanilla"


class DenoisingAEConfig(AEConfig):
    """No options beyond the common ones: the noise is configured in the noise stage."""

    variant: Literal["denoising"] = "denoising"


class SparseAEConfig(AEConfig):
    """Adds the sparsity penalty, its target activation ρ and its weight."""

    variant: Literal["sparse"] = "sparse"
    sparsity: Literal["kl", "l1"] = "kl"
    rho: Annotated[float, Field(gt=0, lt=1)] = 0.05
    sparsity_weight: Annotated[float, Field(ge=0)] = 0.01


class ContractiveAEConfig(AEConfig):
    """Adds λ, the weight of the Jacobian penalty, and how many examples per batch it is computed on.

    The penalty is exact for each example it is computed on; ``jacobian_examples`` of them, drawn at
    random from each training batch, give an unbiased estimate of the batch mean at a fraction of the
    cost (0 = every example). That extra forward pass leaves BatchNorm's running statistics alone.
    """

    variant: Literal["contractive"] = "contractive"
    contractive_weight: Annotated[float, Field(ge=0)] = 0.01
    jacobian_examples: Annotated[int, Field(ge=0)] = 16


class VAEConfig(AEConfig):
    """Adds β, the pixel likelihood and (for the Gaussian one) its standard deviation."""

    variant: Literal["vae"] = "vae"
    beta: Annotated[float, Field(ge=0)] = 1.0
    likelihood: Literal["bernoulli", "continuous_bernoulli", "gaussian"] = "bernoulli"
    gaussian_sigma: Annotated[float, Field(gt=0)] = 0.1
    binarization: Literal["threshold", "dynamic"] = "threshold"


#: variant name → the class of its ``model`` section.
CONFIGS: dict[str, type[AEConfig]] = {
    cls.model_fields["variant"].default: cls
    for cls in (VanillaAEConfig, DenoisingAEConfig, SparseAEConfig, ContractiveAEConfig, VAEConfig)
}


def _variant_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("variant", "vanilla")
    return getattr(value, "variant", None)


#: The type of every ``model`` section: the class its ``variant`` names.
ModelSection = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in CONFIGS.items())],  # noqa: UP007
    Discriminator(
        _variant_of,
        custom_error_type="unknown_variant",
        custom_error_message=f"unknown variant; available variants: {', '.join(CONFIGS)}",
    ),
]

_ADAPTER: TypeAdapter[AEConfig] = TypeAdapter(ModelSection)


def model_section(data: AEConfig | dict[str, Any]) -> AEConfig:
    """``data`` as its variant's class (a dict is validated; raises pydantic's ``ValidationError``)."""
    if isinstance(data, AEConfig) and type(data) is CONFIGS.get(data.variant):
        return data
    if isinstance(data, AEConfig):
        data = data.model_dump()
    return _ADAPTER.validate_python(data)


def with_overrides(model: AEConfig, variant: str, overrides: dict[str, Any]) -> AEConfig:
    """The ``model`` section for ``variant``: the common fields of ``model`` with ``overrides`` on top (the
    variant comparison's ``options``: a sparse code may be overcomplete while the others are not).

    ``members`` is not carried over: the variant comparison and the latent sweep compare single models
    (variants, code sizes), and a VAE has no ensemble."""
    common = {  # reads only the fields it keeps (ReadLog: a stage depends on what it reads)
        k: getattr(model, k)
        for k in AEConfig.model_fields
        if k not in ("variant", "members") and k not in overrides
    }
    return model_section({**common, **overrides, "variant": variant})


def check_overrides(variant: str, overrides: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the key when ``overrides`` holds a key ``variant`` does not have, or a
    value it does not allow (checked on top of the defaults, at load time)."""
    from pydantic import ValidationError

    if variant not in CONFIGS:
        raise ValueError(f"unknown variant {variant!r}; available variants: {', '.join(CONFIGS)}")
    if "variant" in overrides:
        raise ValueError(f"options.{variant} must not set 'variant' (the key already names it)")
    cls = CONFIGS[variant]
    try:
        cls.model_validate({**overrides, "variant": variant})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(
                    f"'{key}' is not a key of variant {variant} (keys: {', '.join(cls.model_fields)})"
                )
            else:
                problems.append(f"'{key}' = {err.get('input')!r}: {err['msg']}")
        raise ValueError(f"options.{variant}: " + "; ".join(problems)) from None
