"""retrain: new data in, `dvc repro` what changed, the gate decides, a summary out — one command for cron.

Steps, per run (``aeflow retrain``):

1. take a lock (``promotion.lock_file``), so a slow run and the next scheduled one never overlap, and
   clear DVC's run lock if a killed run left it unreadable (:mod:`aeflow.stages.recover`);
2. move files from a landing folder (``--landing DIR``: ``DIR/<use case>/…``) into the use case's
   configured source folder (only file sources: ``mnist.ingest.idx_dir``, ``speech.ingest.dir``,
   ``sensor.ingest.path``);
3. re-ingest (``dvc repro --force --single-item ingest@<uc>``: the source is outside DVC's view, so only a
   forced ingest sees new files; identical bytes leave every later stage cached), then ``dvc repro
   evaluate@<uc>`` rebuilds exactly what the new data or params changed;
4. the gate (:mod:`aeflow.stages.promote`) per use case; the champion alias moves only for a better model;
5. export the registry and re-render the report (its promotion history), append a JSON line to
   ``promotion.log_file``, log a run to the MLflow experiment ``<prefix>-retrain``, print the summary.

Exit codes: 0 = at least one champion promoted, 3 = every champion kept, 1 = failed (nothing promoted
where the failure happened), 4 = another retrain holds the lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aeflow.config import Params
from aeflow.errors import AeflowError
from aeflow.io import read_json
from aeflow.layout import REPORT, Layout
from aeflow.stages.recover import clear_interrupted_dvc_lock

EXIT_PROMOTED, EXIT_FAILED, EXIT_KEPT, EXIT_BUSY = 0, 1, 3, 4


class Busy(AeflowError):
    """Another retrain holds the lock."""


@contextmanager
def lock(path: Path) -> Iterator[None]:
    """An exclusive, non-blocking ``flock``: released by the kernel even if the process is killed, so a
    crashed run never leaves a stale lock behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise Busy(
                f"{path}: another retrain is running ({holder}). Fix: wait for it to finish; the lock is "
                "released when that process exits."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {_now()}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def source_folder(params: Params, use_case: str) -> tuple[str, str | None]:
    """(params key, folder) where new files for a use case land; folder is None for non-file sources."""
    from aeflow import usecases

    return usecases.get(use_case).landing_folder(params)


def take_landing(params: Params, use_case: str, landing: Path, root: Path) -> list[str]:
    """Move ``landing/<use_case>/*`` into the use case's source folder; returns the moved names."""
    incoming = landing / use_case
    if not incoming.is_dir():
        return []
    files = sorted(p for p in incoming.rglob("*") if p.is_file())
    if not files:
        return []
    key, folder = source_folder(params, use_case)
    if folder is None:
        raise AeflowError(
            f"{incoming}: {len(files)} new file(s), but {use_case}'s source is not a folder of files. "
            f"Fix: set {key} (and its source) in params.yaml to the folder new data should join."
        )
    target = (root / folder).resolve()
    moved = []
    for f in files:
        dest = target / f.relative_to(incoming)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(f), dest)
        moved.append(str(dest))
    return moved


def dvc(root: Path, *args: str, echo: Callable[[str], None]) -> None:
    """Run ``dvc`` (the one beside this Python first), streaming its output; raise on failure."""
    exe = Path(sys.executable).parent / "dvc"
    cmd = [str(exe) if exe.exists() else "dvc", *args]
    echo("$ " + " ".join(["dvc", *args]))
    # The stages run `python …`: the one beside this interpreter, even when the venv is not activated
    # (cron and systemd call .venv/bin/aeflow directly).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip():
            echo("  " + line)
    if proc.returncode != 0:
        raise AeflowError(f"dvc {' '.join(args)} failed (exit {proc.returncode}); see the output above.")


def run(
    params_path: Path,
    use_cases: list[str],
    root: Path = Path("."),
    landing: Path | None = None,
    report: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[int, dict[str, Any]]:
    """One scheduled retrain; returns (exit code, summary). See the module docstring."""
    from aeflow.params import load_params

    params = load_params(params_path)
    for uc in use_cases:
        params.use_case(uc)  # unknown names fail before anything runs
    started = _now()
    group = f"retrain-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.environ["AEFLOW_RUN_GROUP"] = group  # the stages' runs carry it (aeflow.run_group)
    summary: dict[str, Any] = {"started": started, "run_group": group, "use_cases": {}}
    with lock(root / params.promotion.lock_file):
        cleared = clear_interrupted_dvc_lock(root)  # else one unlucky kill fails every later night
        if cleared:
            echo(cleared)
        for uc in use_cases:
            summary["use_cases"][uc] = _one(params, uc, root, landing, echo)
        if report:
            try:
                # the registry changed outside DVC: export it, and the report follows when it changed
                dvc(root, "repro", "--single-item", "export_registry", echo=echo)
                dvc(root, "repro", "--single-item", "report", echo=echo)
                summary["report"] = REPORT
            except AeflowError as exc:  # the models are decided; a report that cannot render is a warning
                echo(f"warning: report not re-rendered: {exc}")
                summary["report"] = None
    decisions = [r["decision"] for r in summary["use_cases"].values()]
    code = EXIT_FAILED if "failed" in decisions else EXIT_PROMOTED if "promoted" in decisions else EXIT_KEPT
    summary.update(finished=_now(), exit_code=code)
    _log(params, root, summary, echo)
    return code, summary


def trained_version(params: Params, uc: str, root: Path) -> str | None:
    """The registered version this checkout's train stage produced (its ``run.json``), when it went to the
    store this retrain gates on; ``None`` (gate ``@challenger``) otherwise. Another machine's retrain may
    have moved ``@challenger`` since: this retrain decides for the model it trained."""
    from aeflow.tracking import registered_model_name

    run_file = Layout(uc, root).run_file
    if not run_file.is_file():
        return None
    run = read_json(run_file)
    same_store = run.get("tracking_uri") in (None, params.tracking.resolved_uri())
    if run.get("registered_model") != registered_model_name(params.tracking, uc) or not same_store:
        return None
    return str(run["version"]) if run.get("version") is not None else None


def _one(params: Params, uc: str, root: Path, landing: Path | None, echo: Callable[[str], None]) -> dict:
    from aeflow.stages import promote
    from aeflow.tracking import registered_model_name
    from aeflow.tracking.promotion import CHAMPION, alias_version

    name = registered_model_name(params.tracking, uc)
    before = alias_version(params.tracking, name, CHAMPION)
    out: dict[str, Any] = {"registered_model": name, "champion_before": before}
    try:
        out["new_files"] = take_landing(params, uc, landing, root) if landing else []
        dvc(root, "repro", "--force", "--single-item", f"ingest@{uc}", echo=echo)
        dvc(root, "repro", f"evaluate@{uc}", echo=echo)
        record = promote.run(params, uc, root, version=trained_version(params, uc, root))
    except AeflowError as exc:
        echo(f"{uc}: FAILED: {exc}")
        out.update(
            decision="failed", error=str(exc), champion_after=alias_version(params.tracking, name, CHAMPION)
        )
        return out
    after = alias_version(params.tracking, name, CHAMPION)
    # A first model made champion by its training run counts as a promotion of this retrain.
    decision = "promoted" if after != before else "kept"
    out.update(
        decision=decision,
        champion_after=after,
        challenger=record.get("challenger_version"),
        metric=record.get("metric"),
        challenger_score=record.get("challenger_score"),
        champion_score=record.get("champion_score"),
        reason=record.get("reason"),
        data_hash=record.get("data_hash"),
    )
    echo(f"{uc}: {decision.upper()} — champion v{before} → v{after}; {record.get('reason')}")
    return out


def _log(params: Params, root: Path, summary: dict[str, Any], echo: Callable[[str], None]) -> None:
    """Append the summary to the JSON-lines log and record it as an MLflow run (experiment ``-retrain``)."""
    log_file = root / params.promotion.log_file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(summary, default=str) + "\n")
    try:
        import mlflow

        from aeflow.tracking import artifact_location, client

        mlflow.set_tracking_uri(params.tracking.resolved_uri())
        c = client(params.tracking)
        exp_name = f"{params.tracking.experiment_prefix}-retrain"
        exp = c.get_experiment_by_name(exp_name)
        exp_id = (
            exp.experiment_id if exp else c.create_experiment(exp_name, artifact_location(params.tracking))
        )
        run = c.create_run(
            exp_id, run_name=summary["run_group"], tags={"aeflow.run_group": summary["run_group"]}
        )
        for uc, r in summary["use_cases"].items():
            c.set_tag(run.info.run_id, f"{uc}.decision", r["decision"])
            for key in ("challenger_score", "champion_score"):
                if isinstance(r.get(key), int | float):
                    c.log_metric(run.info.run_id, f"{uc}/{key}", float(r[key]))
        c.log_dict(run.info.run_id, summary, "retrain_summary.json")
        c.set_terminated(run.info.run_id, "FAILED" if summary["exit_code"] == EXIT_FAILED else "FINISHED")
    except Exception as exc:  # the log file already holds the summary; tracking trouble must not hide it
        echo(f"warning: could not log the retrain summary to MLflow: {exc}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
