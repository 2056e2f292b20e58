"""Same code, data, params and seed → the same numbers: ``dvc repro`` of train@<uc> + evaluate@<uc>, then
``dvc repro --force --single-item`` of both, give the same ``results/<uc>/evaluation/scores.json`` (and
the same weights) on CPU, for every use case (mnist, speech, sensor: sensor's weights are its first
series' detector)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from tests.reliability.test_kill import FORCE, USE_CASES, project_repo, run, run_info, same_weights, weights

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


@pytest.mark.parametrize("use_case", USE_CASES)
def test_forced_rerun_reproduces_metrics(tmp_path_factory, use_case):
    uc = use_case
    repo = project_repo(tmp_path_factory, uc, "determinism")
    start = time.monotonic()
    run(repo, "dvc", "repro", f"evaluate@{uc}")
    print(f"{uc}: train + evaluate in {time.monotonic() - start:.1f} s")
    metrics = repo / f"results/{uc}/evaluation/scores.json"  # every number, the headline's source
    first = metrics.read_text()
    first_weights = weights(repo, uc)
    run_id = run_info(repo, uc)["run_id"]

    res = run(repo, *FORCE, f"train@{uc}", f"evaluate@{uc}")
    assert f"Running stage 'train@{uc}'" in res.stdout and f"Running stage 'evaluate@{uc}'" in res.stdout
    assert run_info(repo, uc)["run_id"] != run_id  # really retrained
    second = metrics.read_text()
    assert differences(json.loads(first), json.loads(second)) == []
    print(f"results/{uc}/evaluation/scores.json byte-identical:", first == second)
    assert same_weights(first_weights, weights(repo, uc))
    assert "up to date" in run(repo, "dvc", "status", f"train@{uc}", f"evaluate@{uc}").stdout
