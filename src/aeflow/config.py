"""Typed parameters: the shared top of ``params.yaml`` and the messages a bad file gets.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error rather than a silently
ignored setting. :func:`validate` turns pydantic's errors into one message per problem that names the
file, the dotted key, the offending value and what is allowed.

:class:`Params` is the part of ``params.yaml`` that every use case shares (``seed``, ``tracking``,
``promotion``) and the type that shared code and the use cases see. The whole file — this top plus one
section per registered use case — is composed one floor up, in :mod:`aeflow.params`, from the registry: so
this module, like the use cases that import it, never imports a use case. The parts the sections share live
in :mod:`aeflow.sections`.

The ``model`` section is validated in two steps on purpose: the common fields here (cheap, every stage),
and the variant's own fields by the variant's config class when a model is built (train/evaluate). The
variant classes live next to their Lightning modules, and importing Lightning costs ~5 s, which the
ingest and validate stages should not pay.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, Tag, ValidationError

from aeflow.errors import ParamsError
from aeflow.sections import (
    AugmentParams,
    EvaluateParams,
    GateParams,
    Strict,
    SweepParams,
    ThresholdParams,
    TrackingParams,
    TrainParams,
    UseCaseSection,
    unrecorded,
)

__all__ = [
    "AugmentParams",
    "EvaluateParams",
    "GateParams",
    "Params",
    "PromotionParams",
    "Strict",
    "SweepParams",
    "ThresholdParams",
    "TrackingParams",
    "TrainParams",
    "UseCaseSection",
    "describe",
    "read_yaml",
    "validate",
]


class PromotionParams(Strict):
    """What every gate shares: the lock that keeps two retrains from overlapping, and their log. (Each use
    case's gate, metric and margin, is its own ``<use case>.promotion``.)"""

    lock_file: str = ".aeflow/retrain.lock"
    log_file: str = ".aeflow/retrain.jsonl"


class Params(Strict):
    """The top of ``params.yaml``, shared by every use case; :mod:`aeflow.params` adds one field per
    registered use case (the class :func:`aeflow.params.load_params` returns is a subclass of this one)."""

    seed: Annotated[int, Field(ge=0)] = 42
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    promotion: PromotionParams = Field(default_factory=PromotionParams)

    def dump(self) -> dict[str, Any]:
        """The whole validated params as plain data, as ``params.yaml`` spells it (MLflow artifact)."""
        with unrecorded():  # a snapshot logged with a run, not a dependency of the stage that logs it
            return self.model_dump(mode="json", by_alias=True)

    def use_case(self, name: str) -> Any:
        """The section of one use case, with a clear error for unknown names."""
        names = [
            n
            for n, f in type(self).model_fields.items()
            if isinstance(f.annotation, type) and issubclass(f.annotation, UseCaseSection)
        ]
        if name not in names:
            raise ParamsError(f"unknown use case {name!r}; available: {', '.join(names)}")
        return getattr(self, name)


P = TypeVar("P", bound=Params)


@dataclass
class _Place:
    """Where a pydantic error points, as ``params.yaml`` spells it: the dotted key (aliases, no union tags),
    the section class the last key sits in, and, when that section is one member of a tagged union (a
    ``model`` section is its variant's class), the other members by tag."""

    key: list[str]
    parent: type[BaseModel] | None
    others: dict[str, type[BaseModel]]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _tagged(annotation: Any) -> dict[str, type[BaseModel]]:
    """The members of a tagged union (``Union[Annotated[cls, Tag(name)], ...]``) by tag; ``{}`` otherwise."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is not Union:
        return {}
    members = {}
    for arg in get_args(annotation):
        if get_origin(arg) is Annotated:
            tag = next((m.tag for m in arg.__metadata__ if isinstance(m, Tag)), None)
            if tag is not None and _model_of(get_args(arg)[0]) is not None:
                members[tag] = get_args(arg)[0]
    return members


def _place(schema: Any, loc: tuple[Any, ...]) -> _Place:
    key: list[str] = []
    node: Any = schema
    parent: type[BaseModel] | None = None
    member: type[BaseModel] | None = None  # the union member the walk last entered by its tag
    others: dict[str, type[BaseModel]] = {}
    for part in loc:
        members = _tagged(node)
        if part in members:  # the union's tag: not a key of the file
            member, node = members[part], members[part]
            others = {t: c for t, c in members.items() if t != part}
            continue
        parent = _model_of(node)
        fields = parent.model_fields if parent is not None else {}
        name = next((n for n, f in fields.items() if part in (n, f.alias)), None)
        key.append((fields[name].alias or name) if name is not None else str(part))
        node = fields[name].annotation if name is not None else None
    return _Place(key, parent, others if parent is not None and parent is member else {})


def _describe_error(err: dict[str, Any], path: Path, schema: Any, prefix: tuple[str, ...] = ()) -> str:
    kind = err["type"]
    value = err.get("input")
    place = _place(schema, tuple(err["loc"]))
    place.key = [*prefix, *place.key]
    loc = ".".join(place.key) or "(top level)"
    if kind == "unknown_variant":  # a model section naming no variant class (see aeflow.models.configs)
        shown = value.get("variant") if isinstance(value, dict) else value
        what = err["msg"].replace("unknown variant", f"unknown variant {shown!r}", 1)
        return f"{path}: '{loc}.variant': {what}. Fix: set '{loc}.variant' to one of them in {path.name}."
    if kind == "extra_forbidden":
        parent = ".".join(place.key[:-1])
        name = place.key[-1] if place.key else ""
        allowed = [f.alias or n for n, f in place.parent.model_fields.items()] if place.parent else []
        hint = (
            f" Allowed keys{(' under ' + parent) if parent else ''}: {', '.join(allowed)}." if allowed else ""
        )
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            hint = f" Did you mean '{close[0]}'?" + hint
        owners = [tag for tag, cls in place.others.items() if name in cls.model_fields]
        if owners:
            hint += f" '{name}' is a key of {', '.join(owners)}, not of this one."
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


def describe(exc: ValidationError, path: Path | str, schema: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    """One message per problem of ``exc``, raised validating ``schema`` (a section class or a type such as
    :data:`aeflow.models.configs.ModelSection`) found at the dotted key ``prefix`` of the file ``path``."""
    return [_describe_error(e, Path(path), schema, prefix) for e in exc.errors()]


def validate(schema: type[P], data: Any, path: Path | str = "params.yaml") -> P:
    """Validate an already-parsed params mapping against ``schema``; raise :class:`ParamsError` listing
    every problem (file, dotted key, value, what is allowed)."""
    path = Path(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(
            f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}"
        )
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        lines = describe(exc, path, schema)
        raise ParamsError("invalid parameters:\n  - " + "\n  - ".join(lines)) from None
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def read_yaml(path: Path | str = "params.yaml") -> Any:
    """The parsed YAML of a params file; a missing file or bad syntax is a :class:`ParamsError`."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found. Fix: run from the project root or pass --params.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc}). Fix the syntax at the line shown.") from None
