"""validate: run the use case's great-expectations suite; write the JSON report or stop the pipeline."""

from __future__ import annotations

from pathlib import Path

from aeflow.config import Params
from aeflow.io import write_json


def failed_report_path(report: Path) -> Path:
    """Where a failing report goes: beside the last good one, which stays untouched."""
    return report.with_name(report.stem + ".failed.json")


def run(use_case: str, params: Params, data: Path, report: Path) -> dict[str, object]:
    """Validate ingested ``data``; on success write ``report``, on failure raise (report kept aside)."""
    from aeflow import usecases
    from aeflow.validation.core import raise_on_failure, run_suites

    suites, rows = usecases.get(use_case).validation_suites(params, data)
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
