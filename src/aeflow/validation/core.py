"""Run expectation suites on pandas frames with an ephemeral great-expectations context.

Results are returned as plain dicts (what the JSON report holds) and failures are turned into one
:class:`~aeflow.errors.ValidationFailed` message naming the file, the expectation, the offending counts
and example rows, plus a fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aeflow.errors import ValidationFailed


@dataclass(frozen=True)
class Check:
    """One expectation: the great-expectations class name, its arguments and a fix for people."""

    expectation: str
    kwargs: dict[str, Any]
    fix: str
    what: str = ""


@dataclass
class FrameSuite:
    """Checks to run on one frame that summarises one artefact (``file`` is named in errors)."""

    name: str
    file: str
    frame: pd.DataFrame
    checks: list[Check] = field(default_factory=list)
    row_label: str = "row"


def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_suites(suites: list[FrameSuite], artefact: str) -> dict[str, Any]:
    """Validate every frame; return a JSON-able report with one entry per expectation."""
    import great_expectations as gx

    context = _context()
    source = context.data_sources.add_pandas(artefact)
    entries: list[dict[str, Any]] = []
    for suite_def in suites:
        asset = source.add_dataframe_asset(suite_def.name)
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": suite_def.frame}
        )
        suite = gx.ExpectationSuite(name=f"{artefact}.{suite_def.name}")
        for i, check in enumerate(suite_def.checks):
            suite.add_expectation(
                getattr(gx.expectations, check.expectation)(**check.kwargs, meta={"check": i})
            )
        result = batch.validate(suite, result_format="COMPLETE")
        # GX groups results by column, not in the order expectations were added: match them by index.
        ordered = sorted(result.results, key=lambda r: int((r.expectation_config.meta or {})["check"]))
        for check, res in zip(suite_def.checks, ordered, strict=True):
            details = res.result or {}
            index = details.get("unexpected_index_list") or []
            values = details.get("partial_unexpected_list") or []
            raised = (res.exception_info or {}).get("raised_exception", False)
            entries.append(
                {
                    "suite": suite_def.name,
                    "file": suite_def.file,
                    "expectation": res.expectation_config.type,
                    "kwargs": {k: v for k, v in check.kwargs.items()},
                    "what": check.what,
                    "success": bool(res.success),
                    "element_count": details.get("element_count", len(suite_def.frame)),
                    "unexpected_count": details.get("unexpected_count", 0 if res.success else None),
                    "row_label": suite_def.row_label,
                    "unexpected_rows": [int(i) if not isinstance(i, dict) else i for i in index[:10]],
                    "unexpected_values": [_plain(v) for v in values[:10]],
                    "observed_value": _plain(details.get("observed_value")),
                    "error": (res.exception_info or {}).get("exception_message") if raised else None,
                    "fix": check.fix,
                }
            )
    return {"artefact": artefact, "success": all(e["success"] for e in entries), "results": entries}


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def raise_on_failure(report: dict[str, Any]) -> None:
    """Raise one readable error listing every failed expectation of ``report``."""
    failed = [e for e in report["results"] if not e["success"]]
    if not failed:
        return
    lines = []
    for e in failed:
        column = e["kwargs"].get("column")
        target = f"column '{column}'" if column else "table"
        count = e["unexpected_count"]
        counts = (
            f"{count} of {e['element_count']} rows fail"
            if count is not None
            else f"observed {e['observed_value']!r}"
        )
        examples = ""
        if e["unexpected_rows"]:
            pairs = ", ".join(
                f"{e['row_label']} {r} = {v!r}"
                for r, v in zip(e["unexpected_rows"], e["unexpected_values"], strict=False)
            )
            examples = f"; e.g. {pairs}"
        args = {k: v for k, v in e["kwargs"].items() if k != "column"}
        lines.append(
            f"{e['file']}: {e['expectation']} on {target} {args} failed ({e['what']}): {counts}{examples}"
            + (f" [error: {e['error']}]" if e["error"] else "")
            + f". Fix: {e['fix']}"
        )
    raise ValidationFailed(
        f"{report['artefact']}: {len(failed)} expectation(s) failed:\n  - " + "\n  - ".join(lines)
    )
