"""A checkout copied (or moved) with its ``mlflow.db`` and ``mlartifacts/`` writes into itself: the
store's absolute artifact paths are pointed at the new checkout before aeflow uses it."""

from __future__ import annotations

import shutil
from pathlib import Path

from aeflow.sections import TrackingParams


def here() -> TrackingParams:
    """The default settings with the database spelled out: MLflow keeps one engine per URI string in a
    process, so the relative default would reach the first folder's file after a chdir (a new process, as
    every stage is, resolves it afresh)."""
    return TrackingParams(tracking_uri=f"sqlite:///{Path.cwd() / 'mlflow.db'}")


def _log_one_run(name: str) -> str:
    from aeflow import tracking

    tr = here()
    c = tracking.client(tr)
    exp = c.get_experiment_by_name("aeflow-mnist") or c.get_experiment(
        c.create_experiment("aeflow-mnist", tracking.artifact_location(tr))
    )
    run = c.create_run(exp.experiment_id, run_name=name)
    note = Path(f"{name}.txt")
    note.write_text(name)
    c.log_artifact(run.info.run_id, str(note))
    c.set_terminated(run.info.run_id)
    return run.info.run_id


def test_a_copied_checkout_writes_its_runs_into_itself(tmp_path, monkeypatch, capsys):
    from aeflow.tracking import location

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    location._checked.cache_clear()
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    monkeypatch.chdir(old)
    first = _log_one_run("first")
    assert (old / "mlartifacts").is_dir()

    shutil.copytree(old, new)  # cp -r of the whole checkout
    monkeypatch.chdir(new)
    before = sorted(p.relative_to(old) for p in (old / "mlartifacts").rglob("*"))
    second = _log_one_run("second")

    assert sorted(p.relative_to(old) for p in (old / "mlartifacts").rglob("*")) == before  # untouched
    assert any(p.name == "second.txt" for p in (new / "mlartifacts").rglob("*"))
    assert "was written by a checkout elsewhere" in capsys.readouterr().err
    from aeflow import tracking

    c = tracking.client(here())
    for run_id in (first, second):  # both runs read from the new checkout
        uri = c.get_run(run_id).info.artifact_uri
        assert uri.startswith((new / "mlartifacts").as_uri()), uri
    got = Path(c.download_artifacts(first, "first.txt", str(tmp_path)))
    assert got.read_text() == "first"


def test_an_absolute_artifact_folder_is_left_where_it_is(tmp_path, monkeypatch):
    from aeflow.tracking import location

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    elsewhere = tmp_path / "shared-artifacts"
    monkeypatch.chdir(tmp_path)
    tr = TrackingParams(artifact_location=str(elsewhere))
    from aeflow import tracking

    c = tracking.client(tr)
    c.create_experiment("aeflow-speech", tracking.artifact_location(tr))
    assert location.moved_from(Path("mlflow.db"), tr) == []
    assert location.follow_moved_checkout(tr) is None
