"""Typed parameters: ``params.yaml`` is the single source of truth, validated here.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error rather than a silently
ignored setting. :func:`load_params` turns pydantic's errors into one message per problem that names the
file, the dotted key, the offending value and what is allowed.

The whole file is composed here: the shared top (``seed``, ``tracking``, ``promotion``) and one section
per registered use case, each defined by its own package (``aeflow/usecases/<name>/params.py``, its
``SECTION``), so a new use case adds its section without editing this file. The parts those sections share
live in :mod:`aeflow.sections`, which shared code imports instead of this module.

The ``model`` section is validated in two steps on purpose: the common fields here (cheap, every stage),
and the variant's own fields by the variant's config class when a model is built (train/evaluate). The
variant classes live next to their Lightning modules, and importing Lightning costs ~5 s, which the
ingest and validate stages should not pay.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model

from aeflow import usecases
from aeflow.errors import ParamsError
from aeflow.sections import (
    AEConfig,
    AugmentParams,
    EvaluateParams,
    GateParams,
    ModelSection,
    Strict,
    SweepParams,
    ThresholdParams,
    TrackingParams,
    TrainParams,
    UseCaseSection,
)

__all__ = [
    "USE_CASES",
    "AEConfig",
    "AugmentParams",
    "EvaluateParams",
    "GateParams",
    "ModelSection",
    "Params",
    "PromotionParams",
    "Strict",
    "SweepParams",
    "ThresholdParams",
    "TrackingParams",
    "TrainParams",
    "UseCaseSection",
    "load_params",
    "parse_params",
]


class PromotionParams(Strict):
    """What every gate shares: the lock that keeps two retrains from overlapping, and their log. (Each use
    case's gate, metric and margin, is its own ``<use case>.promotion``.)"""

    lock_file: str = ".aeflow/retrain.lock"
    log_file: str = ".aeflow/retrain.jsonl"


class ParamsBase(Strict):
    """The top of ``params.yaml``; :data:`Params` adds one field per registered use case."""

    seed: Annotated[int, Field(ge=0)] = 42
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    promotion: PromotionParams = Field(default_factory=PromotionParams)

    def dump(self) -> dict[str, Any]:
        """The whole validated params as plain data, as ``params.yaml`` spells it (MLflow artifact)."""
        return self.model_dump(mode="json", by_alias=True)

    def use_case(self, name: str) -> Any:
        """The section of one use case, with a clear error for unknown names."""
        if name not in USE_CASES:
            raise ParamsError(f"unknown use case {name!r}; available: {', '.join(USE_CASES)}")
        return getattr(self, name)


def _use_case_sections() -> dict[str, type[UseCaseSection]]:
    """Each registered use case's section class (``SECTION`` of its ``params`` module, which imports only
    :mod:`aeflow.sections`: cheap, and no import circle)."""
    sections = {}
    for name in usecases.NAMES:
        section = importlib.import_module(f"{usecases.REGISTRY[name]}.params").SECTION
        if not (isinstance(section, type) and issubclass(section, UseCaseSection)):
            raise TypeError(f"{usecases.REGISTRY[name]}.params.SECTION must be a UseCaseSection subclass")
        sections[name] = section
    return sections


_SECTIONS = _use_case_sections()

#: The whole ``params.yaml``: the top plus one section per use case, in registry order.
Params = create_model(  # type: ignore[call-overload]
    "Params",
    __base__=ParamsBase,
    __module__=__name__,
    **{name: (section, Field(default_factory=section)) for name, section in _SECTIONS.items()},
)
Params.__doc__ = "The whole ``params.yaml``."

#: The use cases params.yaml has a section for, in registry order.
USE_CASES: tuple[str, ...] = tuple(_SECTIONS)


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
