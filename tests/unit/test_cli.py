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
        ("mnist", {"latent_dim": 1000}, "not smaller than the 784 input values one code describes"),
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


def test_a_stage_rejecting_an_exp_run_value_says_it_stays_in_the_params_file(monkeypatch, capsys):
    from aeflow.errors import DataError, ParamsError
    from aeflow.stages import stage_main

    def rejects(args):
        raise ParamsError("params.yaml: 'mnist.train.lr' = -0.5 is not allowed")

    monkeypatch.delenv("DVC_EXP_BASELINE_REV", raising=False)
    assert stage_main("train", lambda p: None, rejects, ["--use-case", "mnist"]) == 2
    assert "git checkout" not in capsys.readouterr().err  # a plain dvc repro: nothing was written for you

    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123456789abcdef")
    assert stage_main("train", lambda p: None, rejects, ["--use-case", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "'mnist.train.lr' = -0.5" in err and "`dvc exp run`" in err
    assert "still there" in err and "git checkout -- params.yaml" in err and "0123456" in err

    def bad_data(args):
        raise DataError("data/raw/mnist/train.npz: truncated")

    assert stage_main("train", lambda p: None, bad_data, ["--use-case", "mnist"]) == 2
    assert "git checkout" not in capsys.readouterr().err  # only a params error comes from -S
