"""The variant registry: ``register`` / ``build_model`` / ``available``.

A variant is one module in :mod:`aeflow.models.variants` that subclasses :class:`BaseAutoencoder` and
decorates itself with ``@register("name", config=NameAEConfig)``. Importing this module imports every
variant module, so adding a file is all it takes to make a variant available to params, the pipeline and
the tests parametrised over :func:`available`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from aeflow.errors import ParamsError
from aeflow.models.base import BaseAutoencoder
from aeflow.models.configs import CONFIGS, AEConfig, ModelSection, model_section

_REGISTRY: dict[str, type[BaseAutoencoder]] = {}


def register(name: str, config: type[AEConfig]) -> Callable[[type[BaseAutoencoder]], type[BaseAutoencoder]]:
    """Class decorator that makes a ``BaseAutoencoder`` subclass available under ``name``."""

    def decorate(cls: type[BaseAutoencoder]) -> type[BaseAutoencoder]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"variant {name!r} is registered twice")
        if CONFIGS.get(name) is not config:
            raise TypeError(
                f"variant {name!r}: its config class must be aeflow.models.configs.CONFIGS[{name!r}] (params "
                "are validated with it before Lightning is imported)"
            )
        cls.variant_name = name
        cls.config_class = config
        _REGISTRY[name] = cls
        return cls

    return decorate


def variant_modules() -> list[str]:
    """Names of the modules in :mod:`aeflow.models.variants` (each registers the variant of its name)."""
    folder = Path(__file__).with_name("variants")
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if not m.name.startswith("_"))


def _load_all() -> None:
    for name in variant_modules():
        importlib.import_module(f"aeflow.models.variants.{name}")


def available() -> list[str]:
    """Names of every registered variant."""
    _load_all()
    return sorted(_REGISTRY)


def get_variant(name: str) -> type[BaseAutoencoder]:
    """The class registered as ``name``; an unknown name fails listing what exists."""
    _load_all()
    if name not in _REGISTRY:
        raise ParamsError(f"unknown variant {name!r}; available variants: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def variant_config(
    section: AEConfig | dict[str, Any], where: str = "model", file: str = "params.yaml"
) -> AEConfig:
    """``section`` as its variant's config class (:mod:`aeflow.models.configs`). A section loaded from
    ``params.yaml`` already is one and comes back as it is; a mapping (a test, a benchmark, a saved model's
    hyperparameters) is validated here, with the same messages a bad ``params.yaml`` gets."""
    from aeflow.config import describe

    try:
        return model_section(section)
    except ValidationError as exc:
        lines = describe(exc, file, ModelSection, tuple(where.split(".")))
        raise ParamsError("invalid model parameters:\n  - " + "\n  - ".join(lines)) from None


def build_model(
    section: AEConfig | dict[str, Any],
    input_shape: list[int],
    optim: dict[str, Any] | None = None,
    output: str = "sigmoid",
    where: str = "model",
    file: str = "params.yaml",
) -> BaseAutoencoder:
    """Validate ``section`` and build the variant it names for inputs of ``input_shape``."""
    cfg = variant_config(section, where, file)
    cls = get_variant(cfg.variant)
    size = cfg.code_input_size([int(s) for s in input_shape])
    latent = cfg.resolved_latent_dim(size)
    if cls.needs_flat_code and cfg.architecture == "temporal_conv":
        raise ParamsError(
            f"{file}: '{where}.architecture' 'temporal_conv' makes a code per time step, but the "
            f"{cls.variant_name} autoencoder needs one flat code per example. Fix: choose another "
            "architecture (conv, conv1d, lstm, mlp) or the vanilla or denoising variant."
        )
    if cls.undercomplete and latent >= size:
        raise ParamsError(
            f"{file}: '{where}.latent_dim' = {latent} is not smaller than the {size} input values one code "
            f"describes; the {cls.variant_name} autoencoder is undercomplete, so its code must compress "
            "the input. "
            f"Fix: choose latent_dim < {size} (or 'auto'), or a variant that allows overcomplete codes "
            "(e.g. sparse)."
        )
    if cfg.members > 1 and cls.generative:
        raise ParamsError(
            f"{file}: '{where}.members' = {cfg.members}, but the {cls.variant_name} autoencoder generates "
            "examples from its own latent space, and an ensemble of several has no single one to sample. "
            "Fix: set members: 1 for this variant."
        )
    try:
        return construct(cfg, list(input_shape), optim, output)
    except ValueError as exc:  # a setting that does not fit this data (e.g. a conv1d model for images)
        raise ParamsError(
            f"{file}: '{where}' does not fit inputs of shape {list(input_shape)}: {exc}."
        ) from None


def construct(cfg: AEConfig, input_shape: list[int], optim: dict[str, Any] | None, output: str) -> Any:
    """The model a validated ``model`` section describes: its variant, or an ensemble of ``members``."""
    cls = get_variant(cfg.variant)
    if cfg.members > 1:
        from aeflow.models.ensemble import AutoencoderEnsemble

        return AutoencoderEnsemble(cls, cfg, input_shape, optim, output)
    return cls(config=cfg, input_shape=input_shape, optim=optim, output=output)


def load_model(path: str, map_location: str = "cpu") -> BaseAutoencoder:
    """Rebuild a model saved by :func:`save_model` without unpickling code (``weights_only=True``)."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    hp = blob["hyper_parameters"]
    model = construct(variant_config(hp["config"]), hp["input_shape"], hp["optim"], hp["output"])
    model.load_state_dict(blob["state_dict"])
    if blob.get("data_config") is not None:
        model.data_config = blob["data_config"]
    model.eval()
    return model


def save_model(model: BaseAutoencoder, path: str) -> None:
    """Save weights and the (plain) hyperparameters needed to rebuild the model."""
    from aeflow.io import atomic_file

    hp = {k: v for k, v in dict(model.hparams).items()}
    with atomic_file(path, suffix=".pt") as tmp:
        torch.save(
            {
                "state_dict": model.state_dict(),
                "hyper_parameters": hp,
                "variant": model.variant_name,
                "data_config": getattr(model, "data_config", None),
            },
            tmp,
        )
