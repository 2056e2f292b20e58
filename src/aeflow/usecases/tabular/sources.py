"""Where tables come from: the offline card-transaction simulator, CSV/Parquet files and folders, ADBench's
``npz`` layout, and a download; and the ingested table's own layout (``data/raw/tabular``).

An ingested table is three files: ``table.parquet`` (the feature columns, as the source named them),
``labels.parquet`` (one ``label`` column, only when the source has labels) and ``schema.json`` (which columns
are numeric and which categorical, where the rows came from). Every check that can name a file, a column
and a row happens here, before anything is written: a text in a numeric column, a missing label column, a
folder whose files disagree on their columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aeflow.errors import DataError, ParamsError
from aeflow.io import atomic_dir, read_json, write_json
from aeflow.usecases.tabular.params import TabularIngestParams

TABLE = "table.parquet"
LABELS = "labels.parquet"
SCHEMA = "schema.json"
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npz": "npz",
}
#: A text column is numeric with mistakes when at most this share of its values are not numbers.
TYPO_SHARE = 0.01


@dataclass
class Table:
    """A table to model: feature columns (numeric and categorical), optional labels, where it came from."""

    frame: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    labels: pd.Series | None = None
    origin: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


# ------------------------------------------------------------------------------------------ simulator
CATEGORIES = {  # merchant category: (amount factor, typical hour, hour spread, share online, share abroad)
    "grocery": (0.6, 17.0, 3.0, 0.05, 0.01),
    "fuel": (0.9, 12.0, 4.0, 0.0, 0.02),
    "restaurant": (1.1, 20.0, 2.0, 0.02, 0.03),
    "online_retail": (1.3, 21.0, 3.0, 1.0, 0.05),
    "travel": (4.0, 11.0, 4.0, 0.7, 0.40),
    "electronics": (3.0, 15.0, 3.0, 0.5, 0.02),
    "pharmacy": (0.4, 13.0, 3.0, 0.1, 0.01),
}
CATEGORY_SHARE = [0.30, 0.15, 0.15, 0.18, 0.04, 0.06, 0.12]
COUNTRIES_ABROAD = ["FR", "DE", "ES", "US", "IT"]


def simulate_transactions(rows: int, seed: int) -> Table:
    """Card transactions of normal behaviour, correlated the way real ones are.

    Each card has an age, a usual spend (higher for older cards) and an activity; the merchant category
    sets the amount (relative to the card's usual spend), the time of day and how likely the purchase is
    online or abroad; abroad means far from home; online purchases have no distance. So each column is
    plausible on its own, and an anomaly is often only visible in a column's relation to the others (a
    large amount for a small spender, a pharmacy purchase at 3 am abroad).
    """
    rng = np.random.default_rng(seed)
    names = list(CATEGORIES)
    cat = rng.choice(len(names), size=rows, p=CATEGORY_SHARE)
    factor, hour_mu, hour_sd, online_p, abroad_p = (
        np.array([CATEGORIES[n][i] for n in names]) for i in range(5)
    )
    age = np.exp(rng.normal(np.log(700.0), 0.8, rows))  # days since the card was issued
    # the card's usual spend: older cards (established customers) spend more
    usual = np.exp(rng.normal(np.log(45.0) + 0.3 * np.log(age / 700.0), 0.4, rows))
    activity = np.exp(rng.normal(np.log(3.0), 0.4, rows))  # the card's transactions per day
    amount = usual * factor[cat] * np.exp(rng.normal(0.0, 0.35, rows))
    hour = np.mod(rng.normal(hour_mu[cat], hour_sd[cat]), 24.0)
    online = rng.random(rows) < online_p[cat]
    abroad = rng.random(rows) < abroad_p[cat]
    distance = np.where(
        online,
        0.0,
        np.where(
            abroad, np.exp(rng.normal(np.log(900.0), 0.5, rows)), np.exp(rng.normal(np.log(6.0), 0.8, rows))
        ),
    )
    chip = rng.random(rows) < 0.45
    channel = np.where(online, "online", np.where(chip, "chip", "contactless"))
    country = np.where(abroad, rng.choice(COUNTRIES_ABROAD, size=rows), "GB")
    tx_24h = rng.poisson(activity)
    frame = pd.DataFrame(
        {
            "amount": np.round(amount, 2),
            "hour": np.round(hour, 2),
            "card_usual_amount": np.round(usual, 2),
            "card_tx_per_day": np.round(activity, 3),
            "tx_last_24h": tx_24h.astype(np.float64),
            "distance_km": np.round(distance, 2),
            "card_age_days": np.round(age),
            "category": np.array(names)[cat],
            "channel": channel,
            "country": country,
        }
    )
    numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    categorical = [c for c in frame.columns if c not in numeric]
    return Table(frame, numeric, categorical, None, "simulator: card transactions (normal behaviour only)")


# ------------------------------------------------------------------------------------------ files
def _format(path: Path, p: TabularIngestParams) -> str:
    if p.format != "auto":
        return p.format
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}. Fix: use .csv, .parquet or "
            "'.npz', or set tabular.ingest.format."
        )
    return kind


def table_files(root: Path, p: TabularIngestParams) -> list[Path]:
    """The file ``root`` names, or every table file in the folder (sorted, hidden files skipped)."""
    if not root.exists():
        raise DataError(
            f"{root}: no such file or folder (tabular.ingest.path). Fix: point it at a CSV, Parquet or npz "
            "file, or a folder of them."
        )
    if root.is_file():
        return [root]
    files = sorted(
        f
        for f in root.rglob("*")
        if f.is_file() and not f.name.startswith(".") and (p.format != "auto" or f.suffix.lower() in SUFFIXES)
    )
    if not files:
        raise DataError(
            f"{root}: the folder holds no .csv, .parquet or .npz file. Fix: add one or fix the path."
        )
    return files


def _delimiter(path: Path, p: TabularIngestParams) -> str:
    if p.delimiter:
        return p.delimiter
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        head = fh.read(65536)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_one(path: Path, p: TabularIngestParams) -> tuple[pd.DataFrame, pd.Series | None, int]:
    """One file as text-preserving columns, its labels, and the line of its first data row (CSV: 2)."""
    kind = _format(path, p)
    if kind == "npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "X" not in z.files:
                    raise DataError(
                        f"{path}: no array 'X' (found {', '.join(z.files) or 'none'}). Fix: save the "
                        "rows as X "
                        "(rows × features) and the labels as y, as ADBench does."
                    )
                x, y = np.asarray(z["X"]), (np.asarray(z["y"]) if "y" in z.files else None)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable npz file ({exc}).") from None
        if x.ndim != 2 or x.dtype.kind not in "fiub":
            raise DataError(f"{path}: X must be a 2-D numeric array, got shape {x.shape} of {x.dtype}.")
        width = len(str(x.shape[1]))
        frame = pd.DataFrame(x.astype(np.float64), columns=[f"x{i:0{width}d}" for i in range(x.shape[1])])
        if y is not None and len(y) != len(x):
            raise DataError(f"{path}: y has {len(y)} labels for {len(x)} rows of X. Fix: one label per row.")
        return frame, (pd.Series(y, name="label") if y is not None else None), 0
    if kind == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc}).") from None
        first_line = 0
    else:
        try:
            frame = pd.read_csv(
                path, sep=_delimiter(path, p), dtype=str, keep_default_na=False, skipinitialspace=True
            )
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a readable CSV file ({exc}). Fix the line it names.") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty. Fix: remove it or add a header and rows.") from None
        frame = frame.replace({"": None, "NA": None, "NaN": None, "nan": None, "null": None})
        first_line = 2
    frame.columns = [str(c).strip() for c in frame.columns]
    labels = None
    if p.label_column is not None:
        if p.label_column not in frame.columns:
            raise DataError(
                f"{path}: no label column {p.label_column!r} (tabular.ingest.label_column); columns are "
                f"{', '.join(frame.columns)}. Fix: name the label column, or set label_column: null."
            )
        labels = frame.pop(p.label_column).rename("label")
    return frame, labels, first_line


def _where(file: Path, row: int, first_line: int) -> str:
    return f"row {row}" + (f" (line {row + first_line})" if first_line else "")


def _types(
    frame: pd.DataFrame, p: TabularIngestParams, sources: list[tuple[Path, int, int]]
) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns; a numeric column with a few texts stops ingest naming the first."""
    forced = set(p.categorical_columns or [])
    unknown = sorted(forced - set(frame.columns))
    if unknown:
        raise ParamsError(
            f"tabular.ingest.categorical_columns names {', '.join(unknown)}, not columns of the table "
            f"({', '.join(frame.columns)}). Fix: correct the names."
        )
    numeric, categorical = [], []
    for column in frame.columns:
        col = frame[column]
        if column in forced:
            categorical.append(column)
            continue
        if col.dtype.kind in "fiub":
            numeric.append(column)
            continue
        present = col.notna()
        parsed = pd.to_numeric(col.where(present), errors="coerce")
        bad = present & parsed.isna()
        if not bad.any():
            numeric.append(column)
            continue
        if bad.sum() <= TYPO_SHARE * present.sum():  # a number column with a mistake in it
            row = int(np.flatnonzero(bad.to_numpy())[0])
            file, local, first_line = _locate(sources, row)
            raise DataError(
                f"{file}: column {column!r}, {_where(file, local, first_line)}: {col.iloc[row]!r} is not a "
                f"number, and {1 - bad.sum() / present.sum():.1%} of the column's values are "
                f"({int(bad.sum())} such value(s) in all). Fix: correct the value(s), or list {column!r} "
                "in tabular.ingest.categorical_columns if it holds categories."
            )
        categorical.append(column)
    return numeric, categorical


def _locate(sources: list[tuple[Path, int, int]], row: int) -> tuple[Path, int, int]:
    """The file, row within it (from 0) and first data line of the concatenated table's ``row``."""
    start = 0
    for file, rows, first_line in sources:
        if row < start + rows:
            return file, row - start, first_line
        start += rows
    return sources[-1][0], row - start, sources[-1][2]


def read_table_files(root: Path, p: TabularIngestParams, seed: int) -> Table:
    """Every file under ``root`` as one table (same columns in every file), typed and checked."""
    files = table_files(root, p)
    frames, labels, sources = [], [], []
    for f in files:
        frame, y, first_line = _read_one(f, p)
        if frames and list(frame.columns) != list(frames[0].columns):
            missing = [c for c in frames[0].columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in frames[0].columns]
            raise DataError(
                f"{f}: its columns differ from {files[0]}'s (missing: {', '.join(missing) or 'none'}; "
                f"extra: {', '.join(extra) or 'none'}). Fix: one table per folder, the same columns in "
                "every file."
            )
        frames.append(frame)
        sources.append((f, len(frame), first_line))
        if y is not None:
            labels.append(y)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if not len(frame.columns):
        raise DataError(f"{files[0]}: no feature columns. Fix: the table needs at least one column to model.")
    missing_drop = [c for c in p.drop_columns if c not in frame.columns]
    if missing_drop:
        raise ParamsError(
            f"tabular.ingest.drop_columns names {', '.join(missing_drop)}, not columns of {files[0]} "
            f"({', '.join(frame.columns)}). Fix: correct the names."
        )
    frame = frame.drop(columns=p.drop_columns)
    label = pd.concat(labels, ignore_index=True) if labels else None
    numeric, categorical = _types(frame, p, sources)
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    for column in categorical:
        frame[column] = frame[column].astype("string")
    if label is not None:  # numbers where every label is one; else text (validate names the bad ones)
        numbers = pd.to_numeric(label, errors="coerce")
        label = numbers if numbers.notna().sum() == label.notna().sum() else label.astype("string")
    table = Table(frame, numeric, categorical, label, f"{p.source}: {root}", [str(f) for f in files])
    return subsample(table, p.max_rows, seed)


def subsample(table: Table, max_rows: int | None, seed: int) -> Table:
    """A seeded random sample of ``max_rows`` rows (stratified by label when there are labels)."""
    n = len(table.frame)
    if max_rows is None or n <= max_rows:
        return table
    rng = np.random.default_rng(seed)
    if table.labels is not None:
        keep = []
        for value in pd.unique(table.labels.astype(str)):
            idx = np.flatnonzero((table.labels.astype(str) == value).to_numpy())
            keep.append(rng.choice(idx, size=max(1, round(len(idx) * max_rows / n)), replace=False))
        rows = np.sort(np.concatenate(keep))
    else:
        rows = np.sort(rng.choice(n, size=max_rows, replace=False))
    frame = table.frame.iloc[rows].reset_index(drop=True)
    labels = table.labels.iloc[rows].reset_index(drop=True) if table.labels is not None else None
    origin = f"{table.origin} (random sample of {len(rows):,} of {n:,} rows, tabular.ingest.max_rows)"
    return Table(frame, table.numeric, table.categorical, labels, origin, table.files)


def download_table(p: TabularIngestParams) -> Path:
    """Fetch ``p.url`` into ``p.download_dir`` (bounded retries, atomic; a file already there is reused)."""
    from urllib.parse import urlsplit

    from aeflow.data.download import fetch

    assert p.url is not None  # the params check requires it for source 'download'
    name = Path(urlsplit(p.url).path).name
    if not name:
        raise ParamsError(
            f"tabular.ingest.url {p.url!r} names no file. Fix: the URL of a .csv, .parquet or .npz."
        )
    base = p.url[: p.url.rindex(name)]
    return fetch(
        name,
        [base],
        Path(p.download_dir),
        timeout_s=p.timeout_s,
        retries=p.retries,
        fallback_hint=f"download {p.url} yourself and set tabular.ingest.source: file, path: <the file>",
    )


def ingest_table(p: TabularIngestParams, seed: int) -> Table:
    """The configured source's table."""
    if p.source == "simulator":
        return simulate_transactions(p.rows, seed)
    root = download_table(p) if p.source == "download" else Path(p.path or "")
    return read_table_files(root, p, seed)


# ------------------------------------------------------------------------------------------ layout
def write_table(table: Table, out: Path) -> None:
    """``out`` (replaced as a whole): the table, its labels and its schema."""
    with atomic_dir(out) as tmp:
        table.frame.to_parquet(tmp / TABLE, index=False)
        if table.labels is not None:
            pd.DataFrame({"label": table.labels}).to_parquet(tmp / LABELS, index=False)
        write_json(
            tmp / SCHEMA,
            {
                "numeric": table.numeric,
                "categorical": table.categorical,
                "rows": len(table.frame),
                "labelled": table.labels is not None,
                "origin": table.origin,
                "files": table.files,
            },
        )


def read_table(folder: Path) -> Table:
    """The table :func:`write_table` wrote into ``folder``."""
    schema_file = folder / SCHEMA
    if not schema_file.is_file():
        raise DataError(
            f"{schema_file}: missing. Fix: run the ingest stage first (dvc repro ingest@tabular)."
        )
    schema: dict[str, Any] = read_json(schema_file)
    frame = pd.read_parquet(folder / TABLE)
    labels = pd.read_parquet(folder / LABELS)["label"] if (folder / LABELS).is_file() else None
    return Table(frame, schema["numeric"], schema["categorical"], labels, schema["origin"], schema["files"])
