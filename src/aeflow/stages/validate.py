"""validate: run the use case's great-expectations suite; write the JSON report or stop the pipeline."""

from __future__ import annotations

from pathlib import Path

from aeflow.config import Params
from aeflow.errors import DataError
from aeflow.io import load_arrays, write_json


def failed_report_path(report: Path) -> Path:
    """Where a failing report goes: beside the last good one, which stays untouched."""
    return report.with_name(report.stem + ".failed.json")


def run(use_case: str, params: Params, data: Path, report: Path) -> dict[str, object]:
    """Validate ingested ``data``; on success write ``report``, on failure raise (report kept aside)."""
    from aeflow.validation.core import raise_on_failure, run_suites

    if use_case == "mnist":
        from aeflow.validation.images import image_suites

        splits, files = {}, {}
        for name in ("train", "val", "test"):
            path = data / f"{name}.npz"
            if not path.is_file():
                raise DataError(f"{path}: missing. Fix: run the ingest stage first (dvc repro).")
            arrays = load_arrays(path)
            splits[name] = (arrays["images"], arrays["labels"])
            files[name] = str(path)
        suites = image_suites(splits, files, params.mnist.validate_)
        rows = {name: len(labels) for name, (_, labels) in splits.items()}
    elif use_case == "speech":
        from aeflow.data.speech import read_manifest
        from aeflow.validation.speech import speech_suites

        manifest = read_manifest(data)
        cfg = params.speech
        suites = speech_suites(manifest, str(data / "manifest.csv"), cfg.validate_, cfg.ingest.sample_rate)
        rows = {name: int((manifest["split"] == name).sum()) for name in ("train", "val", "test")}
    elif use_case == "sensor":
        from aeflow.data.sensor import read_series, series_file_name
        from aeflow.validation.sensor import sensor_suites

        series = read_series(data)
        files = {s.name: str(data / series_file_name(s.name)) for s in series}
        suites = sensor_suites(series, files, params.sensor.validate_)
        rows = {s.name: len(s.frame) for s in series}
    else:
        raise NotImplementedError(use_case)
    result = run_suites(suites, use_case)
    result["rows"] = rows
    if not result["success"]:
        write_json(failed_report_path(report), result)
        raise_on_failure(result)
    failed = failed_report_path(report)
    if failed.exists():
        failed.unlink()
    write_json(report, result)
    return result
