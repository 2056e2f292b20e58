"""Same code, data, params and seed → the same numbers: ``dvc repro`` of train@mnist + evaluate@mnist, then
``dvc repro --force`` of both, give the same ``metrics/mnist.json`` (and the same weights) on CPU."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.reliability.test_kill import mnist_repo, run, weights

pytestmark = pytest.mark.slow


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ: keys, types, or numbers by more than 1e-9 (relative or absolute)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} vs {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) else [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def test_forced_rerun_reproduces_metrics(tmp_path_factory):
    repo = mnist_repo(tmp_path_factory, "determinism")
    run(repo, "dvc", "repro", "evaluate@mnist")
    first = (repo / "metrics/mnist.json").read_text()
    first_weights = weights(repo / "models/mnist/model.pt")
    run_id = json.loads((repo / "models/mnist/run.json").read_text())["run_id"]

    res = run(repo, "dvc", "repro", "--force", "train@mnist", "evaluate@mnist")
    assert "Running stage 'train@mnist'" in res.stdout and "Running stage 'evaluate@mnist'" in res.stdout
    assert json.loads((repo / "models/mnist/run.json").read_text())["run_id"] != run_id  # really retrained
    second = (repo / "metrics/mnist.json").read_text()
    assert differences(json.loads(first), json.loads(second)) == []
    print("metrics/mnist.json byte-identical:", first == second)
    second_weights = weights(repo / "models/mnist/model.pt")
    assert all(bool((first_weights[k] == second_weights[k]).all()) for k in first_weights)
    assert "up to date" in run(repo, "dvc", "status", "train@mnist", "evaluate@mnist").stdout
