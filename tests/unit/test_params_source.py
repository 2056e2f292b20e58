"""params.yaml is the single source of truth: it lists every setting, with the code's default value.

The pydantic models (:mod:`aeflow.config`, :mod:`aeflow.sections`, each use case's ``params.py``) hold
types, bounds and explanations; their defaults are what a section gets when ``params.yaml`` leaves it out
(tests, saved models, library use). These tests keep the two from drifting apart: every leaf setting of
:class:`~aeflow.params.ProjectParams` is spelled out in ``params.yaml`` (A), with the value the code would
use anyway (B), and ``params.yaml`` holds nothing the code does not read (C). A section is a nested model;
anything else (a number, a list, a mapping such as ``variants.options``) is one setting, compared as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from aeflow.params import ProjectParams as Params
from aeflow.params import load_params

REPO = Path(__file__).resolve().parents[2]
PARAMS_YAML = REPO / "params.yaml"

_MISSING = object()


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model class of a nested section, or None for a leaf setting."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def leaf_keys(model: type[BaseModel] = Params, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf setting of ``model`` as a key path, spelled as params.yaml spells it (aliases)."""
    keys: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        sub = _section(field.annotation)
        keys.extend(leaf_keys(sub, path) if sub else [path])
    return keys


def lookup(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def unknown_keys(data: Any, model: type[BaseModel] = Params, prefix: tuple[str, ...] = ()) -> list[str]:
    """Keys of ``data`` that ``model`` has no field for. (A ``model`` section is a union of variant classes:
    one setting here, compared whole with the code's default, and typed key by key at load.)"""
    if not isinstance(data, dict):
        return []
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    found: list[str] = []
    for key, value in data.items():
        path = (*prefix, str(key))
        if key not in fields:
            found.append(".".join(path))
            continue
        sub = _section(fields[key].annotation)
        if sub:
            found.extend(unknown_keys(value, sub, path))
    return found


def raw_params(path: Path | None = None) -> dict[str, Any]:
    return yaml.safe_load((path or PARAMS_YAML).read_text(encoding="utf-8"))


def code_defaults() -> dict[str, Any]:
    """What the code uses when params.yaml says nothing: the default instance, as params.yaml spells it."""
    return Params().model_dump(mode="json", by_alias=True)


def missing_from(raw: dict[str, Any]) -> list[str]:
    return [".".join(key) for key in leaf_keys() if lookup(raw, key) is _MISSING]


def disagreements(raw: dict[str, Any]) -> list[str]:
    defaults = code_defaults()
    found = []
    for key in leaf_keys():
        ours, code = lookup(raw, key), lookup(defaults, key)
        if ours is not _MISSING and ours != code:
            found.append(f"{'.'.join(key)}: params.yaml={ours!r} code={code!r}")
    return found


def test_the_walk_sees_nested_sections_aliases_and_whole_mappings():
    keys = {".".join(k) for k in leaf_keys()}
    assert "mnist.validate.min_class_fraction" in keys  # alias, not validate_
    assert "speech.promotion.margin_type" in keys  # nested section inside a section
    assert "mnist.variants.options" in keys  # a mapping is one setting
    assert "mnist.model" in keys  # so is a model section (its variant's class), compared whole
    assert not any(k.startswith("mnist.variants.options.") for k in keys)
    assert "sensor.train.augment.rotation_deg" in keys
    # The default instance, not the class default: each use case builds its own model section.
    defaults = code_defaults()
    assert lookup(defaults, ("speech", "model", "variant")) == "denoising"
    assert lookup(defaults, ("sensor", "model", "architecture")) == "conv1d"


def test_every_setting_of_the_code_is_in_params_yaml():
    missing = missing_from(raw_params())
    assert not missing, (
        f"{len(missing)} setting(s) exist only as code defaults; add each to params.yaml with the code's "
        "default and a comment:\n  " + "\n  ".join(missing)
    )


def test_params_yaml_values_equal_the_code_defaults():
    diff = disagreements(raw_params())
    assert not diff, (
        "params.yaml and the defaults in aeflow.config disagree (a section left out of a params file "
        "would silently run with other values). Make the code default equal params.yaml's value:\n  "
        + "\n  ".join(diff)
    )


def test_params_yaml_has_no_key_the_code_does_not_read():
    assert load_params(PARAMS_YAML) is not None
    unknown = unknown_keys(raw_params())
    assert not unknown, "params.yaml keys the code does not know:\n  " + "\n  ".join(unknown)


def test_the_checks_catch_a_missing_a_changed_and_an_unknown_key():
    raw = raw_params()
    del raw["sensor"]["threshold"]["cooldown"]
    raw["speech"]["ingest"]["level_dbfs"] = -20.0
    raw["mnist"]["variants"]["options"]["vae"]["beta"] = 2.0
    raw["mnist"]["train"]["epochz"] = 3
    assert "sensor.threshold.cooldown" in missing_from(raw)
    diff = disagreements(raw)
    assert any(d.startswith("speech.ingest.level_dbfs: params.yaml=-20.0 code=") for d in diff)
    assert any(d.startswith("mnist.variants.options: ") for d in diff)
    assert unknown_keys(raw) == ["mnist.train.epochz"]
