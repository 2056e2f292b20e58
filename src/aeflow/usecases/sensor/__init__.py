"""The ``sensor`` use case: detect faults in multivariate sensor series by reconstruction error, and say
which sensor.

Modules: ``sources`` (pump simulator offline default, CSV files and folders, NAB download), ``validation``
(its suites), ``series`` (sensors, segments, seasons), ``faults`` and ``corrupt`` (inject_noise: faults in
the scored segment), ``windows`` (scaling, sliding windows), ``train`` (one detector per series),
``detector`` (batch and online scoring), ``serving`` (the pyfunc), ``nab`` (NAB's scoring), ``evaluate``,
``report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.usecases.base import SweepData, UseCase

if TYPE_CHECKING:
    from aeflow.config import Params


class Sensor(UseCase):
    name = "sensor"
    title = "Sensor anomaly detection"
    headline = (
        "summary.autoencoder.pr_auc",
        "summary.autoencoder.roc_auc",
        "summary.autoencoder.f1",
        "summary.autoencoder.event_recall",
        "summary.autoencoder.nab_standard",
        "summary.autoencoder.attribution_top1",
        "summary.autoencoder.attribution_top2",
        "summary.isolation_forest.pr_auc",
    )
    promotion_metric = "test/pr_auc"

    def ingest(self, params: Params, out: Path) -> dict[str, Any]:
        from aeflow.usecases.sensor.sources import ingest_sensor, write_series

        series = ingest_sensor(params.sensor.ingest, params.seed)
        write_series(series, out, params.sensor.ingest)
        return {"counts": {s.name: len(s.frame) for s in series}, "origin": series[0].origin}

    def validation_suites(self, params: Params, data: Path) -> tuple[list[Any], dict[str, int]]:
        from aeflow.usecases.sensor.sources import read_series, series_file_name
        from aeflow.usecases.sensor.validation import sensor_suites

        series = read_series(data)
        files = {s.name: str(data / series_file_name(s.name)) for s in series}
        suites = sensor_suites(series, files, params.sensor.validate_)
        return suites, {s.name: len(s.frame) for s in series}

    def inject_noise(self, params: Params, data: Path, out: Path) -> dict[str, Any]:
        from aeflow.usecases.sensor.corrupt import inject

        return inject(params, data, out)

    def training_plan(self, params: Params, data: Path, inputs: Path) -> Any:
        from aeflow.usecases.sensor.train import training_plan

        return training_plan(params, data, inputs)

    def evaluate(
        self, params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
    ) -> dict[str, Any]:
        from aeflow.usecases.sensor.evaluate import evaluate

        return evaluate(params, data, noisy, models, results, plots)

    def sweep_data(self, params: Params, data: Path) -> SweepData:
        """Scaled windows of the first ingested series (no injected faults): train (the detector's stride),
        val and test (non-overlapping), with the scaler fitted on the training segment only."""
        import numpy as np

        from aeflow.errors import DataError
        from aeflow.usecases.sensor.series import segments, sensor_columns
        from aeflow.usecases.sensor.sources import read_series
        from aeflow.usecases.sensor.windows import Scaler, fill_missing, make_windows

        s = read_series(data)[0]
        w = params.sensor.windows
        values = s.frame[sensor_columns(s.frame)].to_numpy(dtype=np.float32)
        bounds = segments(s, params)
        (t0, t1), (v0, v1), (a0, a1) = bounds["train"], bounds["val"], bounds["test"]
        scaler = Scaler.fit(values[t0:t1], w.scaler)
        filled = scaler.transform(fill_missing(values, scaler.center))
        train = make_windows(filled[t0:t1], w.length, w.train_stride)
        val = make_windows(filled[v0:v1], w.length, w.length)
        test = make_windows(filled[a0:a1], w.length, w.length)
        if min(len(train), len(test)) < 2:
            raise DataError(
                f"{data}: too few windows of {w.length} readings for a latent sweep. "
                "Fix: use a longer series or a smaller sensor.windows.length."
            )
        return SweepData(train, val, test, "identity", False, 1000)

    def report_section(self, params: Params, inputs: Any) -> str:
        from aeflow.usecases.sensor.report import section

        return section(params, inputs)

    def promotion_paths(self, root: Path) -> list[Path]:
        return [self.layout(root).noisy]

    def promotion_score(self, params: Params, model_uri: str, root: Path) -> dict[str, float]:
        """PR-AUC, point F1, event recall and false-alarm rate of a detector on its series' test segment."""
        import logging

        import mlflow.pyfunc
        import numpy as np

        from aeflow.errors import DataError
        from aeflow.evaluation import anomaly
        from aeflow.usecases.sensor.series import segments
        from aeflow.usecases.sensor.sources import read_series

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        detector = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().detector
        folder = self.layout(root).noisy / "series"
        series = {s.name: s for s in read_series(folder)}
        name = detector.config.get("series")
        if name not in series:
            raise DataError(
                f"{folder}: no series {name!r} (the one this detector was trained on). Fix: dvc repro, or "
                "promote a version trained on the current data."
            )
        s = series[name]
        a0, a1 = segments(s, params)["test"]
        values = s.frame[detector.sensors].to_numpy(dtype=np.float32)
        labels = s.frame["label"].to_numpy().astype(bool)[a0:a1]
        scores = detector.score(values)[a0:a1]
        flags = detector.flags(scores)
        ranking = anomaly.ranking_metrics(labels, scores)
        points = anomaly.point_metrics(labels, flags)
        events = anomaly.event_metrics(labels, flags, tolerance=detector.length)
        out: dict[str, float] = {}
        for key, value in {
            "pr_auc": ranking["pr_auc"],
            "roc_auc": ranking["roc_auc"],
            "f1": points["f1"],
            "event_recall": events["event_recall"],
            "far": anomaly.false_alarm_rate(labels, flags, detector.length),
        }.items():
            if value is not None:
                out[f"test/{key}"] = float(value)
        return out

    def landing_folder(self, params: Params) -> tuple[str, str | None]:
        i = params.sensor.ingest
        folder = i.path if i.source == "csv" and i.path and Path(i.path).is_dir() else None
        return "sensor.ingest.path", folder

    def stream_scorer(self, model: Any) -> Any:
        from aeflow.usecases.sensor.detector import AnomalyDetector, RowStream

        return RowStream(AnomalyDetector.from_model(model))

    def input_shape(self, params: Params) -> list[int] | None:
        ingest = params.sensor.ingest
        if ingest.source == "simulator":
            return [len(ingest.sensors), params.sensor.windows.length]
        return None  # a CSV's column count only the data knows


USE_CASE = Sensor()
