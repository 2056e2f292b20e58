"""Training while the MLflow store is unreachable: keep the run on disk now, upload it with ``aeflow sync``.

When the train stage cannot reach the store (:func:`aeflow.tracking.store_problem`), it logs through a
:class:`PendingLogger` instead of the ``MLFlowLogger``: a folder ``<models>/.<use case>.pending/<id>/`` with

* ``pending.json`` – experiment, run name, tags, start/end time, status, why it is offline, what to
  register, and (once sync has started) the MLflow run it is being uploaded to;
* ``params.json`` – the flat params; ``metrics.jsonl`` – one line per metric value (key, value, step,
  timestamp), appended as training goes, so a resumed offline run adds to it;
* ``artifacts/<folder>/…`` – what the run would have logged (``params.yaml``, the epoch figures, …);
* ``model.pt`` – the weights to register (``torch.load(weights_only=True)``-safe).

:func:`sync` replays such a folder into the store as one run (original tags, params, metric histories with
their steps and timestamps, artifacts), logs and registers the model like an online run, marks it
challenger, then deletes the folder. Each step is recorded in ``pending.json`` as it completes, so an
interrupted sync continues where it stopped and running it again is harmless.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import time
from argparse import Namespace
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from aeflow.io import read_json, write_json
from aeflow.sections import TrackingParams

PENDING = "pending.json"
TAG_OFFLINE_ID = "aeflow.offline_id"


def pending_root(models: Path | str) -> Path:
    """Where a use case's offline runs wait: beside its models folder, outside every DVC output."""
    models = Path(models)
    return models.with_name(f".{models.name}.pending")


def new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _now_ms() -> int:
    return int(time.time() * 1000)


class PendingLogger(Logger):
    """A Lightning logger that writes what the ``MLFlowLogger`` would send into a pending folder.

    ``meta`` (experiment name, run name, tags, …) is written on creation; an existing folder is continued
    (a resumed training appends to its metrics) and marked running again unless ``running=False``.
    """

    def __init__(
        self, folder: Path | str, meta: Mapping[str, Any] | None = None, running: bool = True
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / PENDING
        if path.is_file():
            self.meta: dict[str, Any] = read_json(path)
        else:
            self.meta = {"format": 1, "id": self.folder.name, "start_time": _now_ms(), "status": "RUNNING"}
        if running:
            self.meta["status"] = "RUNNING"
        self.meta.update(meta or {})
        self._write_meta()

    # -- Lightning's Logger interface
    @property
    def name(self) -> str:
        return "pending"

    @property
    def version(self) -> str:
        return self.folder.name

    @property
    def run_id(self) -> None:  # no MLflow run yet
        return None

    @property
    @rank_zero_experiment
    def experiment(self) -> PendingLogger:
        return self

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        from lightning_fabric.utilities.logger import _convert_params, _flatten_dict

        flat = _flatten_dict(_convert_params(params))
        path = self.folder / "params.json"
        saved = read_json(path) if path.is_file() else {}
        saved.update({k: str(v) for k, v in flat.items()})
        write_json(path, saved)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        now = _now_ms()
        lines = [
            json.dumps({"key": k, "value": float(v), "step": int(step or 0), "timestamp": now})
            for k, v in metrics.items()
            if not isinstance(v, str)
        ]
        with (self.folder / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        statuses = {"success": "FINISHED", "finished": "FINISHED", "killed": "KILLED"}
        self.meta["status"] = statuses.get(status, "FAILED")
        self.meta["end_time"] = _now_ms()
        self._write_meta()

    # -- what the stages log besides Lightning's metrics
    def log_artifact(self, path: Path | str, folder: str = "") -> None:
        """Keep a copy of ``path`` to upload under the run's ``folder`` artifact path."""
        dest = self.folder / "artifacts" / folder
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / Path(path).name)

    def log_dict(self, obj: Any, name: str) -> None:
        """Like ``MlflowClient.log_dict``: JSON, or YAML for a ``.yaml``/``.yml`` name."""
        import yaml

        dest = self.folder / "artifacts" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(obj, sort_keys=False) if name.endswith((".yaml", ".yml")) else json.dumps(obj)
        dest.write_text(text, encoding="utf-8")

    def set_register(
        self,
        model_file: Path | str,
        use_case: str,
        description: str,
        registrar: str = "aeflow.training.service:register_model_file",
        candidate: bool = True,
    ) -> None:
        """Keep the model that ``aeflow sync`` registers (a new version of the use case's model), and the
        ``module:function`` that registers it (a PyTorch model, or a use case's pyfunc); ``candidate``:
        whether that version then becomes the challenger, as it would have online."""
        shutil.copy2(model_file, self.folder / "model.pt")
        self.meta["register"] = {
            "use_case": use_case,
            "description": description,
            "model": "model.pt",
            "registrar": registrar,
            "candidate": candidate,
        }
        self._write_meta()

    def _write_meta(self) -> None:
        write_json(self.folder / PENDING, self.meta)


def log_to_pending(
    folder: Path | str,
    metrics: Mapping[str, float] | None = None,
    artifacts: list[tuple[Path, str]] | None = None,
    step: int = 0,
) -> None:
    """Add metrics and files to an offline run (what :func:`aeflow.tracking.log_to_run` does online), e.g.
    from the evaluate stage when ``run.json`` says ``"tracking": "offline"``."""
    if not (Path(folder) / PENDING).is_file():
        raise FileNotFoundError(f"{folder}: no offline run here ({PENDING} missing); was it synced already?")
    logger = PendingLogger(folder, running=False)
    if metrics:
        logger.log_metrics(metrics, step)
    for path, name in artifacts or []:
        logger.log_artifact(path, name)


# ------------------------------------------------------------------------------------------------- syncing
def find_pending(models_root: Path | str) -> list[Path]:
    """Every pending run folder under ``models_root`` (``.<use case>.pending/<id>/``), oldest first."""
    folders = [p.parent for p in Path(models_root).glob(f".*.pending/*/{PENDING}")]

    def start(folder: Path) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(read_json(folder / PENDING).get("start_time", 0))
        return 0

    return sorted(folders, key=lambda f: (start(f), f.name))


def _metrics(folder: Path) -> Iterator[dict[str, Any]]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            yield {k: int(row[k]) for k in ("step", "timestamp")} | {"key": row["key"], "value": row["value"]}
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill
            continue


def sync(tracking: TrackingParams, folder: Path | str, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Upload one pending run (see the module docstring); returns what was done.

    A run still ``RUNNING`` (training, or killed and waiting to be resumed) is left alone.
    """
    from mlflow.entities import Metric, Param

    from aeflow import tracking as tr
    from aeflow.tracking.promotion import CHALLENGER, aliases, mark_candidate

    folder = Path(folder)
    meta: dict[str, Any] = read_json(folder / PENDING)
    if meta.get("status") == "RUNNING":
        echo(f"{folder}: still running (or killed and not resumed yet): skipped")
        return {"folder": str(folder), "skipped": "running"}

    def save() -> None:
        write_json(folder / PENDING, meta)

    c = tr.client(tracking)
    run_id = meta.get("synced_run_id") or meta.get("run_id")
    if run_id is not None:
        try:
            c.get_run(run_id)
        except Exception:  # deleted or in another store: upload as a new run
            run_id = None
    if run_id is None:
        found = []
        exp = c.get_experiment_by_name(meta["experiment_name"])
        if exp is not None:
            found = c.search_runs([exp.experiment_id], f"tags.`{TAG_OFFLINE_ID}` = '{meta['id']}'")
        if found:
            run_id = found[0].info.run_id
        else:
            exp_id = (
                exp.experiment_id
                if exp is not None
                else c.create_experiment(
                    meta["experiment_name"], artifact_location=tr.artifact_location(tracking)
                )
            )
            tags = {**meta.get("tags", {}), TAG_OFFLINE_ID: meta["id"]}
            run = c.create_run(
                exp_id, start_time=meta.get("start_time"), tags=tags, run_name=meta.get("run_name")
            )
            run_id = run.info.run_id
    meta["synced_run_id"] = run_id
    meta.setdefault("tags", {})
    save()

    if not meta.get("synced_params"):
        params_file = folder / "params.json"
        params = read_json(params_file) if params_file.is_file() else {}
        have = c.get_run(run_id).data.params
        todo = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in have]
        for i in range(0, len(todo), 100):
            c.log_batch(run_id, params=todo[i : i + 100])
        meta["synced_params"] = True
        save()

    if not meta.get("synced_metrics"):
        rows = list(_metrics(folder))
        have: set[tuple[str, int, int, float]] = set()
        for key in {r["key"] for r in rows}:
            have |= {(m.key, m.step, m.timestamp, m.value) for m in c.get_metric_history(run_id, key)}
        todo_m = [
            Metric(r["key"], r["value"], r["timestamp"], r["step"])
            for r in rows
            if (r["key"], r["step"], r["timestamp"], r["value"]) not in have
        ]
        for i in range(0, len(todo_m), 1000):
            c.log_batch(run_id, metrics=todo_m[i : i + 1000])
        meta["synced_metrics"] = len(rows)
        save()

    artifacts = folder / "artifacts"
    if artifacts.is_dir() and not meta.get("synced_artifacts"):
        for f in sorted(p for p in artifacts.rglob("*") if p.is_file()):
            parent = f.parent.relative_to(artifacts).as_posix()
            c.log_artifact(run_id, str(f), None if parent == "." else parent)
        meta["synced_artifacts"] = True
        save()

    register = meta.get("register")
    if register and not meta.get("registration") and meta.get("status") == "FINISHED":
        # runs kept before registrars were named registered a PyTorch model
        default = "aeflow.training.service:register_model_file"
        register_file = tr.registrar(register.get("registrar", default))
        meta["registration"] = register_file(
            tracking,
            run_id,
            folder / register["model"],
            register["use_case"],
            register.get("description", ""),
        )
        save()

    c.set_terminated(run_id, meta.get("status", "FINISHED"), end_time=meta.get("end_time"))

    moved: dict[str, str] = {}
    registration = meta.get("registration")
    if registration and not meta.get("synced_aliases") and (register or {}).get("candidate", True):
        name, version = registration["registered_model"], registration["version"]
        newer = _newer_challenger(c, name, aliases(tracking, name).get(CHALLENGER), meta.get("start_time", 0))
        if newer:
            echo(
                f"{name}: challenger stays v{newer} (trained after this offline run); v{version} has no alias"
            )
        else:
            moved = mark_candidate(tracking, name, version)
        meta["synced_aliases"] = moved or "none"
        save()

    shutil.rmtree(folder, ignore_errors=True)
    return {
        "folder": str(folder),
        "run_id": run_id,
        "metrics": meta.get("synced_metrics", 0),
        "registered": registration,
        "aliases": moved,
    }


def _newer_challenger(c: Any, name: str, version: str | None, start_time: int) -> str | None:
    """The current challenger when its training run started after ``start_time`` (else ``None``)."""
    if version is None:
        return None
    with contextlib.suppress(Exception):
        run_id = c.get_model_version(name, version).run_id
        if run_id and c.get_run(run_id).info.start_time > start_time:
            return version
    return None
