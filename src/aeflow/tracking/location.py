"""A local store that moved: MLflow writes absolute artifact paths into ``mlflow.db`` (experiments, runs,
model versions, logged models), so a checkout copied or moved with its ``mlflow.db`` and ``mlartifacts/``
would go on reading from, and writing new runs into, the old checkout's folder. Before aeflow uses a local
SQLite store it points every such path at this checkout's artifact folder, once, and says so.

Only paths that end in the configured relative ``tracking.artifact_location`` (``mlartifacts``) under
another folder are moved: a store whose artifacts live elsewhere on purpose (an absolute
``artifact_location``, a server's artifact store) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from functools import lru_cache
from pathlib import Path, PurePosixPath

from aeflow.sections import TrackingParams, unrecorded

#: (table, column) pairs where MLflow keeps absolute artifact URIs of a local store
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def moved_from(db: Path, tracking: TrackingParams) -> list[str]:
    """The artifact folders of ``db``'s aeflow experiments that belong to another checkout."""
    here = PurePosixPath(tracking.artifact_location)
    if here.is_absolute() or not db.is_file():
        return []
    new = Path(tracking.artifact_location).resolve().as_uri()
    suffix = "/" + here.as_posix().strip("/")
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            rows = conn.execute(
                "SELECT artifact_location FROM experiments WHERE name LIKE ?",
                (f"{tracking.experiment_prefix}-%",),
            ).fetchall()
        except sqlite3.OperationalError:  # a new, empty file: no tables yet
            return []
    return sorted({loc for (loc,) in rows if loc and loc != new and loc.endswith(suffix)})


def relocate(db: Path, old: str, new: str) -> int:
    """Point every artifact path under ``old`` at ``new`` (both ``file://`` URIs); returns the rows changed.
    One transaction: a crash leaves the store as it was."""
    changed = 0
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        for table, column in ARTIFACT_COLUMNS:
            try:
                cur = conn.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # names from the tuple above
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (new, len(old) + 1, old, len(old) + 1, old + "/"),
                )
            except sqlite3.OperationalError:  # a table this MLflow version does not have
                continue
            changed += cur.rowcount
    return changed


def follow_moved_checkout(tracking: TrackingParams) -> str | None:
    """Point a copied or moved local store at this checkout's artifact folder (see the module docstring);
    returns what was done, or ``None`` when nothing had to be."""
    db = sqlite_file(tracking.resolved_uri())
    if db is None:
        return None
    olds = moved_from(db, tracking)
    if not olds:
        return None
    new = Path(tracking.artifact_location).resolve()
    rows = sum(relocate(db, old, new.as_uri()) for old in olds)
    note = (
        f"[aeflow] {db} was written by a checkout elsewhere ({', '.join(olds)}): its {rows} artifact paths "
        f"now point at this checkout's {new}, so new runs land here, not there."
    )
    if not new.is_dir():
        note += f" {new} does not exist yet: copy the old folder here to keep the earlier runs' artifacts."
    return note


@lru_cache(maxsize=8)
def _checked(tracking: TrackingParams, uri: str, cwd: str) -> None:
    """Once per settings, resolved URI (``MLFLOW_TRACKING_URI`` wins) and working folder (relative
    paths resolve there)."""
    note = follow_moved_checkout(tracking)
    if note:
        print(note, file=sys.stderr)


def check_local_store(tracking: TrackingParams) -> None:
    """:func:`follow_moved_checkout` once per process and store, before the store is used. Upkeep of the
    store, not an input of the stage that runs it: its reads of the settings are not dependencies."""
    with unrecorded(), contextlib.suppress(sqlite3.Error):  # locked, unreadable: store_problem says so
        _checked(tracking, tracking.resolved_uri(), os.getcwd())
