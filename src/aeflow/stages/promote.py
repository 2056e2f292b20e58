"""promote: score the challenger and the champion on the same evaluation set, then let the gate decide.

The evaluation set is each use case's DVC-tracked test data (``UseCase.promotion_paths``; its hash from
``dvc.lock`` goes into the decision record, so a decision can be traced to the exact bytes it was made on),
scored by the use case's ``promotion_score``: mnist test MSE, speech SI-SDR gain over the noisy input,
sensor PR-AUC.

Both models come from the registry (``models:/<name>/<version>``), not from ``models/``, so what is
compared is exactly what ``@champion`` serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow.config import Params
from aeflow.errors import AeflowError, DataError


class GateError(AeflowError):
    """The gate could not decide (no challenger, unfinished run, missing evaluation data)."""


def data_hash(use_case: str, root: Path = Path(".")) -> str:
    """The DVC hashes (from ``dvc.lock``) of the evaluation data, joined; "unknown" outside DVC."""
    from aeflow import usecases
    from aeflow.tracking import dvc_data_hash

    paths = usecases.get(use_case).promotion_paths(root)
    return "+".join(
        dvc_data_hash(p.relative_to(root).as_posix(), root / "dvc.lock") or "unknown" for p in paths
    )


def score_version(params: Params, use_case: str, name: str, version: str, root: Path) -> dict[str, float]:
    """Every gate metric of one registered version on the use case's evaluation set."""
    from aeflow import usecases

    return usecases.get(use_case).promotion_score(params, f"models:/{name}/{version}", root)


def run(
    params: Params,
    use_case: str,
    root: Path = Path("."),
    dry_run: bool = False,
    version: str | None = None,
) -> dict[str, Any]:
    """The gate for one use case: returns the decision record (also written on the model version).

    ``version`` gates that registered version instead of the one ``@challenger`` points at (a retrain
    names its own: another retrain may have moved the alias since). The whole decision (aliases read,
    both scored, record written, alias moved) runs under the registered model's gate lease
    (:func:`~aeflow.tracking.promotion.gate_lease`), so gates racing on one tracking server decide one
    after the other, each against the champion the previous one left.

    Raises:
        GateError: nothing to decide on (no challenger), the challenger's run did not finish, or the
            metric the gate is configured with is not one the scorer produces.
    """
    import mlflow

    from aeflow.tracking import registered_model_name
    from aeflow.tracking.promotion import LeaseTimeout, gate_lease

    check_paths(use_case, root)
    tracking = params.tracking
    mlflow.set_tracking_uri(tracking.resolved_uri())
    name = registered_model_name(tracking, use_case)
    if dry_run:  # records and moves nothing: no reason to wait for, or hold up, a real decision
        return _decide(params, use_case, name, root, dry_run, version)
    try:
        with gate_lease(tracking, name):
            return _decide(params, use_case, name, root, dry_run, version)
    except LeaseTimeout as exc:
        raise GateError(str(exc)) from None


def _decide(
    params: Params, use_case: str, name: str, root: Path, dry_run: bool, version: str | None
) -> dict[str, Any]:
    from aeflow.tracking.promotion import (
        CHALLENGER,
        CHAMPION,
        _now,
        alias_version,
        decide,
        record_decision,
        run_status,
        versions_of,
    )

    tracking = params.tracking
    gate = params.use_case(use_case).promotion
    challenger = version or alias_version(tracking, name, CHALLENGER)
    champion = alias_version(tracking, name, CHAMPION)
    if challenger is None:
        raise GateError(
            f"{name}: no '{CHALLENGER}' alias, so there is nothing to promote. Fix: train one first "
            f"(dvc repro train@{use_case}, or aeflow retrain --use-case {use_case})."
        )
    known = versions_of(tracking, name) if version is not None else []
    if version is not None and version not in known:
        raise GateError(
            f"{name}: there is no version {version} (versions: {', '.join(known) or 'none'}). "
            "Fix: pass one of those to --version."
        )
    status = run_status(tracking, name, challenger)
    if status != "FINISHED":
        raise GateError(
            f"{name} version {challenger}: its training run is {status}, not FINISHED; a failed or "
            "incomplete run is never promoted. Fix: rerun training (dvc repro)."
        )
    record: dict[str, Any] = {
        "time": _now(),
        "metric": gate.metric,
        "mode": gate.mode,
        "margin": gate.margin,
        "margin_type": gate.margin_type,
        "champion_version": champion,
        "data_hash": data_hash(use_case, root),
    }
    if champion == challenger:
        record.update(decision="kept", reason=f"version {challenger} is already the champion")
        return {"use_case": use_case, "registered_model": name, "challenger_version": challenger, **record}

    scores = {"challenger": score_version(params, use_case, name, challenger, root)}
    if champion is not None:
        scores["champion"] = score_version(params, use_case, name, champion, root)
    for who, got in scores.items():
        if gate.metric not in got:
            raise GateError(
                f"params.yaml promotion.{use_case}.metric: {gate.metric!r} is not measured for the {who} "
                f"(available: {', '.join(sorted(got))}). Fix: pick one of those."
            )
    ch = scores["challenger"][gate.metric]
    cp = scores["champion"][gate.metric] if champion is not None else None
    verdict = decide(ch, cp, gate)
    record.update(
        decision="promoted" if verdict.promote else "kept",
        reason=verdict.reason,
        challenger_score=ch,
        champion_score=cp,
        improvement=verdict.improvement,
        required_improvement=verdict.required,
    )
    if not dry_run:
        record_decision(tracking, name, challenger, record, verdict.promote)
        from aeflow.layout import REGISTRY
        from aeflow.stages import registry

        registry.run([use_case], params, root / REGISTRY)  # the report shows the decision at the next repro
    return {
        "use_case": use_case,
        "registered_model": name,
        "challenger_version": challenger,
        "scores": scores,
        "dry_run": dry_run,
        **record,
    }


def check_paths(use_case: str, root: Path) -> None:
    """The evaluation data must exist before any model is loaded."""
    from aeflow import usecases

    for p in usecases.get(use_case).promotion_paths(root):
        if not p.exists():
            raise DataError(f"{p}: missing evaluation data for the gate. Fix: run dvc repro first.")
