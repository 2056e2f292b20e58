"""The ``aeflow`` command."""

from __future__ import annotations

from pathlib import Path

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
