"""sensor inject_noise: faults injected into the scored segment of each series, with exact row labels.

Writes ``data/interim/sensor``: the same series with faults injected into the scored segment only, and
``events.json`` (kind, sensor, rows): the ground truth for evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.io import atomic_dir, write_json
from aeflow.usecases.sensor.series import segments, sensor_columns

if TYPE_CHECKING:
    from aeflow.config import Params


def inject(params: Params, data: Path, out: Path) -> dict[str, Any]:
    """Inject faults into the scored segment of each series (per ``sensor.anomalies.inject``)."""
    from aeflow.usecases.sensor.faults import inject_anomalies
    from aeflow.usecases.sensor.sources import read_series, write_series

    cfg = params.sensor.anomalies
    series = read_series(data)
    events: dict[str, list[dict[str, Any]]] = {}
    for k, s in enumerate(series):
        sensors = sensor_columns(s.frame)
        bounds = segments(s, params)
        apply = cfg.inject == "always" or (cfg.inject == "simulator" and s.origin == "simulator")
        if not apply or cfg.events_per_kind == 0:
            events[s.name] = []
            continue
        train = s.frame.iloc[bounds["train"][0] : bounds["train"][1]]
        scale = {c: float(np.nanstd(train[c].to_numpy(dtype=np.float64))) or 1.0 for c in sensors}
        rng = np.random.default_rng([params.seed, k, 29])
        s.frame, found = inject_anomalies(s.frame, sensors, bounds["test"], cfg, scale, rng)
        events[s.name] = [
            {"kind": e.kind, "sensor": e.sensor, "start": e.start, "end": e.end, "magnitude": e.magnitude}
            for e in found
        ]
    with atomic_dir(out) as tmp:
        write_series(series, tmp / "series", params.sensor.ingest)
        write_json(tmp / "events.json", events)
    return {"events": {name: len(v) for name, v in events.items()}}
