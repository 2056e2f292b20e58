"""MLflow: experiment/run naming, lineage tags, model registration.

This package is the only place that imports ``mlflow`` (lazily). Models never see it: the train stage
hands an ``MLFlowLogger`` and the callbacks of :mod:`aeflow.tracking.callbacks` to the Lightning
Trainer, and the evaluate stage adds its numbers to the same run through :func:`log_to_run`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from aeflow.errors import AeflowError
from aeflow.sections import TrackingParams

TAG_USE_CASE = "aeflow.use_case"
TAG_STAGE = "aeflow.stage"
TAG_DATA_HASH = "aeflow.data_hash"
TAG_DATA_PATH = "aeflow.data_path"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_DIRTY = "aeflow.git_dirty"
TAG_VARIANT = "aeflow.variant"
TAG_RUN_GROUP = "aeflow.run_group"
RUN_GROUP_ENV = "AEFLOW_RUN_GROUP"
#: Metadata key on a registered pyfunc: what ``aeflow score`` feeds it, "rows" (each on its own) or
#: "series" (readings in time order, one state per series). Written at registration by the use case.
SCORING_UNIT = "aeflow_unit"


def experiment_name(tracking: TrackingParams, use_case: str) -> str:
    """One experiment per use case, e.g. ``aeflow-mnist``."""
    return f"{tracking.experiment_prefix}-{use_case}"


def registered_model_name(tracking: TrackingParams, use_case: str) -> str:
    """One registered model per use case, e.g. ``aeflow-mnist``."""
    return f"{tracking.registered_model_prefix}-{use_case}"


def artifact_location(tracking: TrackingParams) -> str | None:
    """Explicit artifact folder for a local store (a ``file://`` URI); the server decides otherwise."""
    uri = tracking.resolved_uri()
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        return Path(tracking.artifact_location).resolve().as_uri()
    return None


def git_info(cwd: Path | str = ".") -> dict[str, str]:
    """The current commit and whether tracked files differ from it ("unknown" outside a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {TAG_GIT_COMMIT: "unknown", TAG_GIT_DIRTY: "unknown"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {TAG_GIT_COMMIT: commit, TAG_GIT_DIRTY: "unknown" if status is None else str(bool(status)).lower()}


def dvc_data_hash(data_path: str, lock_file: Path | str = "dvc.lock") -> str | None:
    """The hash DVC recorded for ``data_path`` (an output of an earlier stage) in ``dvc.lock``.

    DVC writes each stage's lock entry as soon as the stage finishes, so when train runs the hash of
    the data it reads is already there. Returns ``None`` outside a DVC run (e.g. a library call).
    """
    lock = Path(lock_file)
    if not lock.is_file():
        return None
    try:
        stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    except yaml.YAMLError:
        return None
    want = os.path.normpath(data_path)
    for stage in stages.values():
        for out in stage.get("outs", []) or []:
            if os.path.normpath(out.get("path", "")) == want:
                return out.get("md5") or out.get("hash")
    return None


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks) of a Linux process, from ``/proc/<pid>/stat``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), fields[19]


def run_group() -> str:
    """What groups the runs of one ``dvc repro`` (or ``dvc exp run``, or ``aeflow retrain``) invocation.

    DVC starts every stage as a child process and tells it nothing about the invocation, so the stage walks
    up its process ancestry to the ``dvc`` process and uses its pid and start time (unique on a machine);
    ``AEFLOW_RUN_GROUP`` overrides it (``aeflow retrain`` sets it). Filter on the tag
    ``aeflow.run_group`` in the MLflow UI to see one invocation's runs together.
    """
    import socket

    if os.environ.get(RUN_GROUP_ENV):
        return os.environ[RUN_GROUP_ENV]
    pid = os.getppid()
    for _ in range(16):
        if pid <= 1:
            break
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            break
        words = [Path(w.decode(errors="replace")).name for w in cmdline[:3]]
        info = _proc_stat(pid)
        if info is None:
            break
        if "dvc" in words:
            return f"dvc-{socket.gethostname()}-{pid}-{info[1]}"
        pid = info[0]
    return "none"


def lineage_tags(
    use_case: str, stage: str, data_path: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Tags that tie a run to its code, data and place in the pipeline."""
    tags = {
        TAG_USE_CASE: use_case,
        TAG_STAGE: stage,
        TAG_DATA_PATH: data_path,
        TAG_DATA_HASH: dvc_data_hash(data_path) or "unknown",
        TAG_RUN_GROUP: run_group(),
        **git_info(),
    }
    if extra:
        tags.update(extra)
    return tags


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (MLflow params are flat)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def make_logger(
    tracking: TrackingParams,
    use_case: str,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, Any] | None = None,
    run_id: str | None = None,
    fallback: Any = None,
) -> Any:
    """An ``MLFlowLogger`` for the use case's experiment, creating it with an explicit artifact folder.

    ``params`` (the whole validated ``params.yaml``) is logged as the run's ``params.yaml`` artifact, so
    every run can be reproduced from what it carries, whatever section its flat params show. ``run_id``
    continues an existing run (a resumed training) instead of starting one; it is marked RUNNING again.

    ``fallback(run_id, reason)``, when given, makes a store that goes away *during* the run cost nothing:
    the first call that fails hands the rest of the run to the logger it returns (an offline
    :class:`~aeflow.tracking.offline.PendingLogger` that remembers the run), and ``aeflow sync`` later
    appends what that kept to the same MLflow run.
    """
    from aeflow.tracking.location import check_local_store

    check_local_store(tracking)
    logger = _failover_logger_class()(
        experiment_name=experiment_name(tracking, use_case),
        run_name=run_name,
        tracking_uri=tracking.resolved_uri(),
        tags=tags,
        artifact_location=artifact_location(tracking),
        run_id=run_id,
    )
    logger.fallback = fallback
    if run_id is not None:
        logger.experiment.update_run(run_id, status="RUNNING")
    if params is not None:
        logger.experiment.log_dict(logger.run_id, params, "params.yaml")
    return logger


@functools.cache
def _failover_logger_class() -> type:
    """Built on first use: importing Lightning is for training processes only."""
    from pytorch_lightning.loggers import MLFlowLogger

    class FailoverLogger(MLFlowLogger):
        """An ``MLFlowLogger`` whose calls, once one has failed, go to its ``fallback``'s logger."""

        fallback: Any = None
        pending: Any = None  # the offline logger, once the store has failed

        @property
        def run_id(self) -> str | None:  # None once offline: the rest of the run waits for aeflow sync
            return None if self.pending is not None else super().run_id

        def _online(self, call: str, *args: Any) -> bool:
            if self.pending is not None:
                return False
            if self.fallback is None:
                getattr(super(), call)(*args)
                return True
            try:
                with _quick_http(FAILOVER_TIMEOUT_S, retries=FAILOVER_RETRIES):
                    getattr(super(), call)(*args)
                return True
            except Exception as exc:  # unreachable, 5xx, timeout: whatever it is, keep the rest
                self.pending = self.fallback(self._run_id, describe_error(exc))
                return False

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            if not self._online("log_hyperparams", params):
                self.pending.log_hyperparams(params)

        def log_metrics(self, metrics: Any, step: int | None = None) -> None:
            if not self._online("log_metrics", metrics, step):
                self.pending.log_metrics(metrics, step)

        def log_file(self, path: Path | str, folder: str) -> None:
            """Add a file to the run (online), or to the offline folder once the store has failed."""
            if self.pending is None:
                try:
                    with _quick_http(FAILOVER_TIMEOUT_S, retries=FAILOVER_RETRIES):
                        self.experiment.log_artifact(self._run_id, str(path), folder)
                    return
                except Exception as exc:
                    if self.fallback is None:
                        raise
                    self.pending = self.fallback(self._run_id, describe_error(exc))
            self.pending.log_artifact(path, folder)

        def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
            self._online("after_save_checkpoint", checkpoint_callback)  # checkpoints stay on disk anyway

        def finalize(self, status: str = "success") -> None:
            if not self._online("finalize", status):
                self.pending.finalize(status)

    return FailoverLogger


#: A call during a run gives the store this long (and this many retries) before the run goes offline.
FAILOVER_TIMEOUT_S = 20.0
FAILOVER_RETRIES = 2


@contextlib.contextmanager
def _quick_http(timeout_s: float, retries: int = 0) -> Iterator[None]:
    """MLflow's HTTP client retries a failed request 7 times with back-off (minutes): not for a probe."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(timeout_s)))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def describe_error(exc: BaseException) -> str:
    """``Type: first line`` of an exception, short enough for a one-line message."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}"


def store_problem(tracking: TrackingParams, timeout_s: float = 10.0) -> str | None:
    """Why the tracking store cannot take a run right now, or ``None`` when it can.

    One quick request (no retries, ``timeout_s``) for a server; for a SQLite file, its folder must exist
    and a write transaction must start (a read-only file or a lock held elsewhere fails here).
    """
    import sqlite3

    from mlflow.tracking import MlflowClient

    from aeflow.tracking.location import check_local_store

    uri = tracking.resolved_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :].split("?", 1)[0])
        check_local_store(tracking)  # a checkout copied or moved: its runs land here, not in the old one
        if not path.parent.is_dir():
            return f"the folder of the SQLite file {path} does not exist"
        if path.is_file():
            try:
                with contextlib.closing(sqlite3.connect(path, timeout=timeout_s)) as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.rollback()
            except sqlite3.Error as exc:
                return f"cannot write to the SQLite file {path} ({describe_error(exc)})"
    try:
        with _quick_http(timeout_s):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many types (MlflowException, requests errors, SQLAlchemy …)
        text = str(exc)
        for pattern, says in (
            ("Connection refused", "connection refused: no server is listening there"),
            ("timed out", f"no answer within {timeout_s:g} s"),
            ("Name or service not known", "unknown host name"),
        ):
            if pattern in text:
                return f"{says} ({type(exc).__name__})"
        return describe_error(exc)
    return None


def client(tracking: TrackingParams) -> Any:
    """An ``MlflowClient`` on the configured store."""
    from mlflow.tracking import MlflowClient

    from aeflow.tracking.location import check_local_store

    check_local_store(tracking)
    return MlflowClient(tracking_uri=tracking.resolved_uri())


def log_to_run(
    tracking: TrackingParams,
    run_id: str,
    metrics: dict[str, float] | None = None,
    artifacts: list[tuple[Path, str]] | None = None,
    tags: dict[str, str] | None = None,
    step: int = 0,
) -> None:
    """Add metrics, files (``(path, artifact folder)``) and tags to an existing run."""
    import time

    from mlflow.entities import Metric, RunTag

    c = client(tracking)
    now = int(time.time() * 1000)
    c.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )
    for path, folder in artifacts or []:
        c.log_artifact(run_id, str(path), folder)


def log_results(
    tracking: TrackingParams,
    run_info: dict[str, Any],
    metrics: dict[str, float] | None = None,
    artifacts: list[tuple[Path, str]] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Add a later stage's numbers and files to the training run that ``run.json`` describes.

    A training that ran offline (``"tracking": "offline"``: the store was unreachable) keeps its run in a
    pending folder until ``aeflow sync``; results go there too, or, once synced, to the uploaded run (found
    by its ``aeflow.offline_id`` tag).
    """
    if run_info.get("tracking") != "offline":
        log_to_run(tracking, run_info["run_id"], metrics, artifacts, tags)
        return
    from aeflow.tracking import offline

    pending = Path(run_info["pending"])
    if (pending / offline.PENDING).is_file():
        offline.log_to_pending(pending, metrics=metrics, artifacts=artifacts)
        return
    c = client(tracking)
    exp = c.get_experiment_by_name(run_info.get("experiment_name", ""))
    found = (
        c.search_runs([exp.experiment_id], f"tags.`{offline.TAG_OFFLINE_ID}` = '{pending.name}'")
        if exp is not None
        else []
    )
    if not found:
        raise AeflowError(
            f"{pending}: the offline training run is neither pending nor synced to "
            f"{tracking.resolved_uri()}. Fix: run `aeflow sync` against the store it belongs to, or "
            "retrain (dvc repro --force train)."
        )
    log_to_run(tracking, found[0].info.run_id, metrics, artifacts, tags)


def log_and_register_model(
    tracking: TrackingParams, run_id: str, model: Any, use_case: str, description: str = ""
) -> dict[str, str]:
    """Log ``model`` in MLflow's PyTorch format to ``run_id`` and register a new version of it.

    Pickle serialisation with explicit requirements: the pt2 default needs an input example and
    inferring requirements costs ~10 s. The class is pickled by reference, so loading needs ``aeflow``
    installed (it is listed in the requirements).
    """
    import mlflow
    import mlflow.pytorch
    import torch

    from aeflow import __version__

    mlflow.set_tracking_uri(tracking.resolved_uri())
    # MLflow warns that pickled models run code when loaded: true, and why pipelines load model.pt with
    # torch.load(weights_only=True) instead. Registry users load models this project produced.
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    name = registered_model_name(tracking, use_case)
    reqs = [
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
        f"aeflow=={__version__}",
    ]
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            model.cpu().eval(),
            name="model",
            serialization_format="pickle",
            pip_requirements=reqs,
            registered_model_name=name,
            await_registration_for=30,
            signature=tensor_signature(model.input_shape),
        )
    return registered(tracking, name, info, description)


def tensor_signature(input_shape: tuple[int, ...]) -> Any:
    """What a registered autoencoder takes and gives: a float32 batch of examples shaped ``input_shape``
    in, its reconstruction (same shape) out. The registry and the UI show it; MLflow checks inputs
    against it when the model is served or loaded as a pyfunc."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    spec = TensorSpec(np.dtype(np.float32), (-1, *input_shape))  # unnamed: a plain array in and out
    return ModelSignature(inputs=Schema([spec]), outputs=Schema([spec]))


def load_pytorch_model(uri: str) -> Any:
    """A registered autoencoder (``models:/<name>/<version>``), on the CPU, in eval mode."""
    import mlflow.pytorch

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    return mlflow.pytorch.load_model(uri, map_location="cpu").eval()


def registrar(name: str) -> Any:
    """The function named ``module:function`` that logs a model file to a run and registers it: how a
    training job (and ``aeflow sync``, for a job trained offline) registers its kind of model."""
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def registered(tracking: TrackingParams, name: str, info: Any, description: str = "") -> dict[str, str]:
    """After a logged model became a new version of ``name``: describe it and return what ``run.json``
    records about it. Aliases move later, once the run has finished (:func:`aeflow.tracking.promotion.
    mark_candidate`), so a run that fails after registering leaves no alias on its version."""
    version = str(info.registered_model_version)
    if description:
        client(tracking).update_model_version(name, version, description=description)
    return {
        "registered_model": name,
        "version": version,
        "model_uri": f"models:/{name}/{version}",
        "logged_model_uri": info.model_uri,
    }


def run_record(tracking: TrackingParams, logger: Any, use_case: str) -> dict[str, str]:
    """Where a training run lives: the head of every ``run.json`` (evaluate logs into this run)."""
    return {
        "run_id": logger.run_id,
        "experiment_id": logger.experiment_id,
        "experiment_name": experiment_name(tracking, use_case),
        "tracking_uri": tracking.resolved_uri(),
    }


def bad_request(message: str) -> Exception:
    """An error ``mlflow models serve`` answers with HTTP 400 and ``message`` (a pyfunc's bad request)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)
