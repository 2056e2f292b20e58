"""The ``aeflow`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aeflow.cli import app

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def test_check_params_accepts_shipped_file_and_rejects_typos(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["check-params", "--params", str(PARAMS)])
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = tmp_path / "p.yaml"
    bad.write_text("mnist:\n  model:\n    latnt_dim: 3\n")
    res = runner.invoke(app, ["check-params", "--params", str(bad)])
    assert res.exit_code == 2
    assert "latnt_dim" in res.output and "latent_dim" in res.output


def test_variants_lists_the_registry():
    res = CliRunner().invoke(app, ["variants"])
    assert res.exit_code == 0 and "vanilla" in res.output


@pytest.mark.parametrize(
    ("use_case", "change", "expected"),
    [
        ("mnist", {"latent_dim": 1000}, "not smaller than the input size 784"),
        ("speech", {"architecture": "lstm"}, "does not fit inputs of shape [1, 129, 16]"),  # bins × frames
        ("sensor", {"architecture": "conv"}, "'sensor.model' does not fit inputs of shape [5, 32]"),
    ],
)
def test_check_params_builds_each_model_for_its_input_shape(tmp_path, use_case, change, expected):
    """A latent size or architecture that the train stage would reject is caught before any run."""
    data = yaml.safe_load(PARAMS.read_text())
    data[use_case]["model"].update(change)
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["check-params", "--params", str(bad)])
    assert res.exit_code == 2 and expected in res.output, res.output
