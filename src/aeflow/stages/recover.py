"""recover: clear what a killed ``dvc`` process leaves that stops every later ``dvc repro``.

aeflow's own outputs survive a kill by construction (atomic folders, resumable training: the next run cleans
up, see :mod:`aeflow.io`). DVC's run lock does not: ``.dvc/tmp/rwlock`` records which process reads or writes
which output, and DVC rewrites it in place (open for writing, then ``json.dump``). A SIGKILL, an OOM kill or a
power cut between those two steps leaves an empty or half-written file, and from then on every ``dvc repro``
stops with "Unable to read RWLock-file '.dvc/tmp/rwlock'. JSON structure is corrupted" until someone deletes
it by hand: a nightly ``aeflow retrain`` would fail every night after one unlucky kill.

:func:`clear_interrupted_dvc_lock` removes such a file, and only such a file: under DVC's own guard of it
(``rwlock.lock``, so no DVC process is halfway through writing it), only when it is not valid JSON (an intact
lock with stale entries DVC cleans itself), and only when no process it still names is alive. An empty file
names no process: whatever it recorded was lost when it was cut short, so deleting it loses nothing more.
``make run`` and ``aeflow retrain`` call it before ``dvc repro``; ``aeflow recover`` runs it alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from aeflow.errors import AeflowError

#: DVC's run lock, relative to the project root (``dvc.rwlock.RWLOCK_FILE`` in ``Repo.tmp_dir``).
RWLOCK = Path(".dvc") / "tmp" / "rwlock"
_PID = re.compile(r'"pid"\s*:\s*(\d+)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clear_interrupted_dvc_lock(root: Path = Path(".")) -> str | None:
    """Remove ``<root>/.dvc/tmp/rwlock`` when a killed DVC process left it unreadable; return what was done.

    ``None`` when there is nothing to clear (no lock file, or a readable one). Raises :class:`AeflowError`
    when the unreadable file still names a running process (it may hold outputs, so the file is left for it)
    or when another process keeps DVC's guard of the file for over 3 s."""
    path = root / RWLOCK
    if not path.is_file():
        return None
    from dvc.lock import LockError, make_lock
    from dvc.repo import Repo

    hardlink = bool(Repo(str(root)).config["core"].get("hardlink_lock", False))
    # DVC's guard of the file: while we hold it, no DVC process is between truncating and writing it.
    guard = make_lock(str(path.parent / "rwlock.lock"), tmp_dir=str(path.parent), hardlink_lock=hardlink)
    try:
        guard.lock()  # DVC retries for 3 s: its own holders keep it for milliseconds
    except LockError:
        raise AeflowError(
            f"{path.parent / 'rwlock.lock'}: held by another process for over 3 s, so {path} is left as it "
            "is. Fix: let the running dvc finish (or stop it), then run `aeflow recover` again."
        ) from None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            return None
        alive = sorted({pid for pid in map(int, _PID.findall(text)) if _alive(pid)})
        if alive:
            raise AeflowError(
                f"{path}: DVC's run lock is unreadable (a write was cut short) but names running "
                f"process(es) {', '.join(map(str, alive))}. Fix: let them finish or stop them, then run "
                "`aeflow recover` again."
            )
        path.unlink()
    finally:
        guard.unlock()
    what = "empty" if not text.strip() else f"{len(text)} bytes of half-written JSON"
    return (
        f"{path}: removed DVC's run lock, {what}: a dvc process was killed while writing it, and no process "
        "it names is running (the next dvc repro writes a new one)."
    )
