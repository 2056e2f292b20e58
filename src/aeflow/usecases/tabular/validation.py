"""The expectation suites for an ingested table.

Two frames are checked, each built so that a failure names the file and what to fix:

- ``rows``: the table itself (plus its labels as ``(label)``): the columns are the ones ingest typed
  (schema), at least ``min_rows`` rows, and labels 0 (normal) or 1 (anomaly), with the rows that are not;
- ``columns``: one row per column with its type, missing ratio and number of distinct values; one check per
  column (a pandas ``row_condition`` picks its row), so the report names the column that fails: numeric
  columns hold numbers, at most ``max_missing_ratio`` missing, more than one value (unless
  ``allow_constant_columns``), and categorical columns at most ``max_categories`` distinct values (more is
  an id, which tells the model nothing about a new row).
"""

from __future__ import annotations

import pandas as pd

from aeflow.usecases.tabular.params import TabularValidateParams
from aeflow.usecases.tabular.sources import Table
from aeflow.validation.core import Check, FrameSuite

LABEL = "(label)"


def table_suites(table: Table, file: str, p: TabularValidateParams) -> list[FrameSuite]:
    rows = table.frame.copy()
    expected = list(table.columns)
    if table.labels is not None:
        rows[LABEL] = table.labels.to_numpy()
        expected.append(LABEL)
    row_checks = [
        Check(
            "ExpectTableColumnsToMatchSet",
            {"column_set": expected, "exact_match": True},
            "the table's columns changed after ingest; re-run ingest (dvc repro ingest@tabular)",
            "the columns ingest typed",
        ),
        Check(
            "ExpectTableRowCountToBeBetween",
            {"min_value": p.min_rows},
            "too few rows to train and score a detector; use a larger table or lower "
            "tabular.validate.min_rows",
            f"≥ {p.min_rows} rows",
        ),
    ]
    if table.labels is not None:
        row_checks.append(
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": LABEL, "value_set": [0, 1]},
                "labels must be 0 (normal) or 1 (anomaly); fix these rows of the label column "
                "(tabular.ingest.label_column), or set label_column: null to inject synthetic anomalies",
                "labels in {0, 1}",
            )
        )
    suites = [FrameSuite("rows", file, rows, row_checks)]
    n = max(len(table.frame), 1)
    columns = pd.DataFrame(
        {
            "column": table.columns,
            "kind": ["numeric"] * len(table.numeric) + ["categorical"] * len(table.categorical),
            "is_numeric": [
                bool(
                    pd.api.types.is_numeric_dtype(table.frame[c])
                    and not pd.api.types.is_bool_dtype(table.frame[c])
                )
                for c in table.numeric
            ]
            + [True] * len(table.categorical),
            "missing_ratio": [float(table.frame[c].isna().sum() / n) for c in table.columns],
            "distinct": [int(table.frame[c].nunique(dropna=True)) for c in table.columns],
        }
    )
    where = {c: {"row_condition": f"column=={c!r}", "condition_parser": "pandas"} for c in table.columns}
    # great-expectations groups results by column in order of first appearance, and run_suites pairs them
    # with the checks in order: so all checks on one frame column come together.
    checks = [
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "is_numeric", "value_set": [True], **where[c]},
            f"numeric column {c!r} must hold numbers; fix the values, or list it in "
            "tabular.ingest.categorical_columns",
            f"column {c!r} numeric",
        )
        for c in table.numeric
    ]
    checks += [
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "missing_ratio", "min_value": 0.0, "max_value": p.max_missing_ratio, **where[c]},
            f"too many values of {c!r} are missing (they would be filled with the training median); repair "
            "the column, drop it (tabular.ingest.drop_columns), or raise tabular.validate.max_missing_ratio",
            f"missing ratio of column {c!r} is {ratio:.4f}, at most {p.max_missing_ratio:g} allowed",
        )
        for c, ratio in zip(table.columns, columns["missing_ratio"], strict=True)
    ]
    low = 1 if p.allow_constant_columns else 2
    checks += [
        Check(
            "ExpectColumnValuesToBeBetween",
            {
                "column": "distinct",
                "min_value": low,
                **({"max_value": p.max_categories} if kind == "categorical" else {}),
                **where[c],
            },
            (
                f"column {c!r} holds one value in every row, which tells a model nothing; drop it "
                "(tabular.ingest.drop_columns) or set tabular.validate.allow_constant_columns: true"
                if distinct < low
                else f"categorical column {c!r} has {distinct} distinct values, more like an id than a "
                "category; "
                "drop it (tabular.ingest.drop_columns) or raise tabular.validate.max_categories"
            ),
            f"column {c!r}: {distinct} distinct value(s)",
        )
        for c, kind, distinct in zip(table.columns, columns["kind"], columns["distinct"], strict=True)
    ]
    suites.append(FrameSuite("columns", file, columns, checks, row_label="column"))
    return suites
