"""inject_noise for tables: the seeded, stratified split, and synthetic anomalies of ADBench's four kinds
in the test split (for data without labels, or always).

Writes ``data/interim/tabular``: ``<split>.parquet`` (the feature columns) and ``<split>_rows.parquet``
(per row: ``label`` 0/1, ``kind`` — normal, labelled, local, global, dependency or clustered —,
``corrupted``: the columns a dependency anomaly changed, comma-separated, and ``source_row``: the row of
the ingested table, -1 for a generated row) for ``train``, ``val`` and ``test``, and ``split.json``.

The kinds follow ADBench (Han et al., 2022, section 3.3): *local* rows come from a Gaussian mixture fitted
to normal rows with its covariances widened; *global* rows are uniform over each column's (widened) range;
*clustered* rows come from the mixture with its means moved away; *dependency* rows keep every column's
values plausible but break their relation (here: a normal test row whose chosen columns take values from
other rows, far from its own, so the corrupted columns are known and the attribution can be checked).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aeflow.errors import DataError
from aeflow.io import atomic_dir, read_json, write_json
from aeflow.usecases.tabular.sources import Table, read_table

if TYPE_CHECKING:
    from aeflow.config import Params
    from aeflow.usecases.tabular.params import TabularAnomalyParams

SPLITS = ("train", "val", "test")
SPLIT_INFO = "split.json"


def label_values(table: Table) -> np.ndarray:
    """The table's labels as 0/1 (all 0 without labels); validation has checked they are 0 or 1."""
    if table.labels is None:
        return np.zeros(len(table.frame), dtype=np.int8)
    y = pd.to_numeric(table.labels, errors="coerce").to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise DataError("the labels are not all 0 or 1. Fix: run the validate stage (dvc repro) first.")
    return y.astype(np.int8)


def split_rows(
    y: np.ndarray, test_fraction: float, val_fraction: float, protocol: str, seed: int
) -> dict[str, np.ndarray]:
    """Row indices of each split: stratified train/test; ``val`` carved from the rows training may see
    (the normal ones under ``semi_supervised``)."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    both = 0 < int(y.sum()) < len(y) and min(int(y.sum()), int(len(y) - y.sum())) >= 2
    train, test = train_test_split(
        rows, test_size=test_fraction, random_state=seed, stratify=y if both else None
    )
    if protocol == "semi_supervised":
        train = train[y[train] == 0]
    inner_both = 0 < int(y[train].sum()) < len(train) and int(y[train].sum()) >= 2
    fit, val = train_test_split(
        train, test_size=val_fraction, random_state=seed + 1, stratify=y[train] if inner_both else None
    )
    return {"train": np.sort(fit), "val": np.sort(val), "test": np.sort(test)}


def _numeric_matrix(frame: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    x = frame[numeric].to_numpy(dtype=np.float64)
    median = np.nanmedian(x, axis=0) if len(x) else np.zeros(x.shape[1])
    return np.where(np.isnan(x), np.nan_to_num(median)[None, :], x)


def _mixture(x: np.ndarray, p: TabularAnomalyParams, seed: int) -> Any:
    from sklearn.mixture import GaussianMixture

    components = max(1, min(p.mixture_components, len(x) // 50))
    return GaussianMixture(components, covariance_type="full", random_state=seed, reg_covar=1e-4).fit(x)


def _from_mixture(
    gm: Any, n: int, rng: np.random.Generator, cov_scale: float, mean_shift: float
) -> np.ndarray:
    comp = rng.choice(len(gm.weights_), size=n, p=gm.weights_ / gm.weights_.sum())
    out = np.empty((n, gm.means_.shape[1]))
    for k in np.unique(comp):
        rows = comp == k
        out[rows] = rng.multivariate_normal(
            gm.means_[k] * mean_shift, gm.covariances_[k] * cov_scale, rows.sum()
        )
    return out


def generate(
    kind: str,
    n: int,
    normal: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    p: TabularAnomalyParams,
    rng: np.random.Generator,
    seed: int,
) -> pd.DataFrame:
    """``n`` new anomalous rows of ``kind`` (local, global or clustered) modelled on the ``normal`` rows.
    Numeric columns are generated; categorical ones are copied from random normal rows."""
    base = normal.iloc[rng.integers(0, len(normal), n)].reset_index(drop=True).copy()
    if not numeric or n == 0:
        return base
    x = _numeric_matrix(normal, numeric)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    if kind == "global":
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = np.where(hi > lo, hi - lo, std)
        values = rng.uniform(lo - p.global_scale * span, hi + p.global_scale * span, size=(n, len(numeric)))
    else:
        gm = _mixture((x - mean) / std, p, seed)
        if kind == "local":
            z = _from_mixture(gm, n, rng, p.local_scale, 1.0)
        else:  # clustered
            z = _from_mixture(gm, n, rng, 1.0, p.cluster_shift)
        values = z * std + mean
    base[numeric] = values
    return base


def break_dependency(
    rows: pd.DataFrame, reference: pd.DataFrame, columns: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[list[str]]]:
    """Each row with ``columns`` of its columns replaced by values of other ``reference`` rows that lie far
    from its own (a different category; a different numeric value at least a third of the column's
    distribution away), and the names of the columns changed per row.

    Positions in the distribution are mid-ranks (ties share the middle of their block), for the row's own
    value and for the candidates alike: in a sparse column (mostly 0) a 0 sits at its block's middle, so a
    non-zero value is far from it and another 0 never is. A column with one value only cannot be changed and
    is never chosen; every reported change is a real one.
    """
    out = rows.copy().reset_index(drop=True)
    names = [c for c in out.columns if reference[c].nunique(dropna=True) > 1]
    if not names:
        raise DataError("no column takes two values in the reference rows: nothing to break a dependency of")
    k = min(columns, len(names))
    changed: list[list[str]] = []
    numeric = {
        c: np.sort(reference[c].dropna().to_numpy(dtype=np.float64))
        for c in names
        if reference[c].dtype.kind in "fiu"
    }

    def mid_rank(c: str, values: np.ndarray) -> np.ndarray:
        ref = numeric[c]
        below = np.searchsorted(ref, values, side="left")
        above = np.searchsorted(ref, values, side="right")
        return (below + above) / (2.0 * len(ref))

    ranks = {c: mid_rank(c, reference[c].to_numpy(dtype=np.float64)) for c in numeric}
    for i in range(len(out)):
        chosen = list(rng.choice(names, size=k, replace=False))
        for c in chosen:
            ref = reference[c]
            current = out.at[i, c]
            if c in numeric:
                own = (
                    float(mid_rank(c, np.array([current], dtype=np.float64))[0]) if pd.notna(current) else 0.5
                )
                usable = ref.notna().to_numpy() & (ref.to_numpy(dtype=np.float64) != current)
                far = np.flatnonzero((np.abs(ranks[c] - own) >= 1 / 3) & usable)
                pool = far if len(far) else np.flatnonzero(usable)
                out.at[i, c] = ref.iloc[int(rng.choice(pool))]
            else:
                others = ref[ref != current].dropna()
                out.at[i, c] = others.iloc[int(rng.integers(0, len(others)))]
        changed.append(sorted(chosen, key=list(out.columns).index))
    return out, changed


def inject(params: Params, data: Path, out: Path) -> dict[str, Any]:
    """Split the ingested table and inject the configured anomalies into the test split; write ``out``."""
    cfg = params.tabular
    table = read_table(data)
    y = label_values(table)
    split = cfg.split
    if table.labels is not None and split.protocol == "semi_supervised" and int((y == 0).sum()) < 10:
        raise DataError(f"{data}: fewer than 10 normal rows to train on. Fix: check the label column.")
    parts = split_rows(y, split.test_fraction, split.val_fraction, split.protocol, params.seed)
    a = cfg.anomalies
    injecting = a.inject == "always" or (a.inject == "unlabelled" and table.labels is None)
    rng = np.random.default_rng(params.seed + 7)
    meta: dict[str, pd.DataFrame] = {}
    frames: dict[str, pd.DataFrame] = {}
    for name, rows in parts.items():
        frames[name] = table.frame.iloc[rows].reset_index(drop=True)
        meta[name] = pd.DataFrame(
            {
                "label": y[rows],
                "kind": np.where(y[rows] == 1, "labelled", "normal"),
                "corrupted": "",
                "source_row": rows.astype(np.int64),
            }
        )
    injected: dict[str, int] = {}
    if injecting:
        normal_train = frames["train"][meta["train"]["label"].to_numpy() == 0]
        test, test_meta = frames["test"], meta["test"]
        total = max(len(a.kinds), round(a.fraction * len(test)))
        per_kind = {k: total // len(a.kinds) + (i < total % len(a.kinds)) for i, k in enumerate(a.kinds)}
        new_frames, new_meta = [test], [test_meta]
        for kind, n in per_kind.items():
            if kind == "dependency":
                candidates = np.flatnonzero(
                    (test_meta["label"].to_numpy() == 0) & (test_meta["kind"] == "normal").to_numpy()
                )
                pick = np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))
                changed_rows, changed = break_dependency(
                    test.iloc[pick], normal_train, a.dependency_columns, rng
                )
                test.iloc[pick] = changed_rows.to_numpy()
                test_meta.loc[pick, "label"] = 1
                test_meta.loc[pick, "kind"] = "dependency"
                test_meta.loc[pick, "corrupted"] = [",".join(c) for c in changed]
                injected[kind] = len(pick)
                continue
            rows = generate(kind, n, normal_train, table.numeric, table.categorical, a, rng, params.seed)
            new_frames.append(rows)
            new_meta.append(
                pd.DataFrame({"label": 1, "kind": kind, "corrupted": "", "source_row": -1}, index=range(n))
            )
            injected[kind] = n
        frames["test"] = pd.concat(new_frames, ignore_index=True).astype(test.dtypes.to_dict())
        meta["test"] = pd.concat(new_meta, ignore_index=True)
    if int(meta["test"]["label"].sum()) == 0:
        raise DataError(
            f"{data}: the test split holds no anomaly to score (no labelled anomalies, nothing injected: "
            f"tabular.anomalies.inject is {a.inject!r}). Fix: set label_column, or inject: always."
        )
    info = {
        "protocol": split.protocol,
        "labelled": table.labels is not None,
        "rows": {k: len(v) for k, v in frames.items()},
        "anomalies": {k: int(v["label"].sum()) for k, v in meta.items()},
        "injected": injected,
        "numeric": table.numeric,
        "categorical": table.categorical,
        "origin": table.origin,
    }
    with atomic_dir(out) as tmp:
        for name in SPLITS:
            frames[name].to_parquet(tmp / f"{name}.parquet", index=False)
            meta[name].to_parquet(tmp / f"{name}_rows.parquet", index=False)
        write_json(tmp / SPLIT_INFO, info)
    return info


def read_split(folder: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One split's feature columns and its per-row facts (label, kind, corrupted, source_row)."""
    file = folder / f"{name}.parquet"
    if not file.is_file():
        raise DataError(
            f"{file}: missing. Fix: run the inject_noise stage first (dvc repro inject_noise@tabular)."
        )
    return pd.read_parquet(file), pd.read_parquet(folder / f"{name}_rows.parquet")


def split_info(folder: Path) -> dict[str, Any]:
    return read_json(folder / SPLIT_INFO)
