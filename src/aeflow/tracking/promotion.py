"""Registry aliases ``champion`` / ``challenger`` and the record of every promotion decision.

* A training run that finished marks its version ``challenger`` (:func:`mark_candidate`); when the model
  has no champion yet, the same version becomes champion at once (the first model is the best there is).
* ``aeflow promote`` scores both on the same evaluation set and calls :func:`decide` (pure) and
  :func:`record_decision`, which writes the decision as tags and a description line on the challenger's
  version and moves ``champion`` only when the challenger won.
* :func:`history` reads the decisions back for the report and ``aeflow promote --history``.
* :func:`gate_lease` lets one gate at a time decide for a registered model, whichever machine it runs on:
  two retrains racing on one server would otherwise both score their challenger against the same old
  champion, both win, and the last alias write would decide, unrecorded.

Everything here goes through ``MlflowClient``; nothing else in the project moves an alias.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aeflow.sections import GateParams, TrackingParams
from aeflow.tracking import client

CHAMPION = "champion"
CHALLENGER = "challenger"
GATE = "aeflow.gate."  # prefix of the decision tags on a model version
LEASE = GATE + "lease"  # registered-model tag: who decides now, until when (see gate_lease)


class LeaseTimeout(TimeoutError):
    """Another gate held the registered model's lease for longer than this one would wait."""


@dataclass(frozen=True)
class Decision:
    """The gate's verdict for one challenger."""

    promote: bool
    improvement: float | None  # challenger better by this much (metric units; > 0 = better)
    required: float  # the improvement the margin asks for (metric units)
    reason: str


def decide(challenger: float, champion: float | None, gate: GateParams) -> Decision:
    """Promote when the challenger beats the champion by the configured margin.

    The margin is relative to the champion's score (``margin_type: relative``) or absolute; improvement is
    signed so that positive always means better, whatever the metric's direction.
    """
    if champion is None:
        return Decision(True, None, 0.0, "no champion yet: the first model becomes champion")
    improvement = (champion - challenger) if gate.mode == "min" else (challenger - champion)
    required = gate.margin * abs(champion) if gate.margin_type == "relative" else gate.margin
    better = "lower" if gate.mode == "min" else "higher"
    want = f"{gate.margin:.1%} {better}" if gate.margin_type == "relative" else f"{gate.margin:g} {better}"
    if improvement >= required and improvement > 0:
        return Decision(
            True, improvement, required, f"{gate.metric} {challenger:.6g} vs {champion:.6g}: {want} or better"
        )
    return Decision(
        False, improvement, required, f"{gate.metric} {challenger:.6g} vs {champion:.6g}: not {want} (needed)"
    )


def alias_version(tracking: TrackingParams, name: str, alias: str) -> str | None:
    """The version an alias points at, or ``None`` (no such alias, or no such registered model)."""
    try:
        return str(client(tracking).get_model_version_by_alias(name, alias).version)
    except Exception:  # MlflowException RESOURCE_DOES_NOT_EXIST for either case
        return None


def aliases(tracking: TrackingParams, name: str) -> dict[str, str]:
    """``{alias: version}`` of a registered model (empty when it does not exist)."""
    try:
        return {k: str(v) for k, v in client(tracking).get_registered_model(name).aliases.items()}
    except Exception:
        return {}


def _holder(tracking: TrackingParams, name: str) -> str | None:
    tags = client(tracking).get_registered_model(name).tags or {}
    return tags.get(LEASE)


@contextlib.contextmanager
def gate_lease(
    tracking: TrackingParams,
    name: str,
    wait_s: float = 900.0,
    hold_s: float = 1800.0,
    settle_s: float = 1.0,
) -> Iterator[str]:
    """Hold the registered model's gate lease while the block runs (aliases read, scored, moved).

    The tracking store offers no compare-and-set, so the lease is a registered-model tag written and read
    back: a gate takes it only when the tag is empty or expired, writes its own token (host, pid, a random
    id, an expiry ``hold_s`` ahead), waits ``settle_s`` and reads it back. Two gates that wrote at the same
    moment both read the last write, so exactly one goes on and the other waits; a gate that died leaves a
    lease that expires. Raises :class:`LeaseTimeout` after ``wait_s``.
    """
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    c = client(tracking)
    deadline = time.monotonic() + wait_s
    pause = settle_s
    while True:
        held = _holder(tracking, name)
        if held is None or _expired(held):
            c.set_registered_model_tag(name, LEASE, f"{token}@{time.time() + hold_s:.0f}")
            time.sleep(settle_s)
            held = _holder(tracking, name)
            if held is not None and held.startswith(token + "@"):
                break
        if time.monotonic() > deadline:
            raise LeaseTimeout(
                f"{name}: another gate holds the promotion lease ({held}) for over {wait_s:.0f} s. "
                f"Fix: wait for it, or delete the registered model's '{LEASE}' tag if that process is gone."
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 10.0)
    try:
        yield token
    finally:
        with contextlib.suppress(Exception):  # an expired or stolen lease is no longer ours to delete
            held = _holder(tracking, name)
            if held is not None and held.startswith(token + "@"):
                c.delete_registered_model_tag(name, LEASE)


def _expired(held: str) -> bool:
    try:
        return float(held.rsplit("@", 1)[1]) < time.time()
    except (IndexError, ValueError):
        return True  # not a lease this code wrote


def mark_candidate(tracking: TrackingParams, name: str, version: str) -> dict[str, str]:
    """Call after a training run *finished*: its version becomes ``challenger`` (and ``champion`` when the
    model has none, decided under the gate lease so that two first trainings cannot both be first).
    Returns the aliases it set."""
    with gate_lease(tracking, name, settle_s=0.3):
        return _mark_candidate(tracking, name, version)


def _mark_candidate(tracking: TrackingParams, name: str, version: str) -> dict[str, str]:
    c = client(tracking)
    c.set_registered_model_alias(name, CHALLENGER, version)
    moved = {CHALLENGER: version}
    if alias_version(tracking, name, CHAMPION) is None:
        c.set_registered_model_alias(name, CHAMPION, version)
        stamp = _now()
        for key, value in {
            "decision": "promoted",
            "reason": "first model: there was no champion",
            "time": stamp,
        }.items():
            c.set_model_version_tag(name, version, GATE + key, value)
        moved[CHAMPION] = version
    return moved


def versions_of(tracking: TrackingParams, name: str) -> list[str]:
    """Every version number of a registered model, oldest first (empty when it does not exist)."""
    try:
        found = client(tracking).search_model_versions(f"name='{name}'")
    except Exception:
        return []
    return sorted((str(mv.version) for mv in found), key=int)


def run_status(tracking: TrackingParams, name: str, version: str) -> str:
    """Status of the training run that produced a version (FINISHED, FAILED, RUNNING, …)."""
    c = client(tracking)
    run_id = c.get_model_version(name, version).run_id
    return str(c.get_run(run_id).info.status) if run_id else "UNKNOWN"


def record_decision(
    tracking: TrackingParams, name: str, version: str, record: dict[str, Any], promote: bool
) -> None:
    """Write the decision on the challenger's version (tags ``aeflow.gate.*`` + a description line), then
    move ``champion`` if it won. Tags first: a crash in between leaves a record, never a silent move."""
    c = client(tracking)
    for key, value in record.items():
        c.set_model_version_tag(name, version, GATE + key, "" if value is None else str(value))
    mv = c.get_model_version(name, version)
    line = f"[{record.get('time', _now())}] gate: {record['decision']} — {record.get('reason', '')}"
    c.update_model_version(name, version, description=((mv.description or "").rstrip() + "\n" + line).strip())
    if promote:
        c.set_registered_model_alias(name, CHAMPION, version)


def history(tracking: TrackingParams, name: str) -> list[dict[str, Any]]:
    """Every version of ``name`` (newest first) with its aliases, run and gate record."""
    c = client(tracking)
    try:
        versions = c.search_model_versions(f"name='{name}'")
    except Exception:
        return []
    current = aliases(tracking, name)
    rows = []
    for mv in sorted(versions, key=lambda m: int(m.version), reverse=True):
        tags = dict(mv.tags or {})
        try:
            experiment_id = c.get_run(mv.run_id).info.experiment_id if mv.run_id else None
        except Exception:  # a deleted run: the version stays listed without a link
            experiment_id = None
        rows.append(
            {
                "version": str(mv.version),
                "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).strftime(
                    "%Y-%m-%d %H:%M UTC"
                ),
                "run_id": mv.run_id,
                "experiment_id": experiment_id,
                "aliases": sorted(a for a, v in current.items() if v == str(mv.version)),
                "gate": {k[len(GATE) :]: v for k, v in tags.items() if k.startswith(GATE)},
            }
        )
    return rows


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
