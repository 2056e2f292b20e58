"""The ``tabular`` use case: anomalies in tables (fraud, intrusion, unusual records) by reconstruction
error, and which columns made a row anomalous.

Modules: ``sources`` (card-transaction simulator offline default, CSV/Parquet/npz files and folders, a
download), ``validation`` (its suites), ``corrupt`` (inject_noise: the split, and synthetic anomalies of
ADBench's four kinds), ``encoding`` (scaling and one-hot, fitted on training rows), ``train`` (the one
autoencoder), ``scorer`` (scores, threshold, top columns), ``serving`` (the pyfunc), ``evaluate`` (against
PyOD's Isolation Forest, ECOD and AutoEncoder, and PCA), ``report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.usecases.base import UseCase

if TYPE_CHECKING:
    from aeflow.config import Params


class Tabular(UseCase):
    name = "tabular"
    title = "Tabular anomaly detection"
    headline = (
        "summary.autoencoder.roc_auc",
        "summary.autoencoder.pr_auc",
        "summary.autoencoder.precision_at_n",
        "summary.autoencoder.f1",
        "attribution.top3_hit_rate",
        "summary.isolation_forest.roc_auc",
        "summary.ecod.roc_auc",
    )
    promotion_metric = "test/pr_auc"

    def ingest(self, params: Params, out: Path) -> dict[str, Any]:
        from aeflow.usecases.tabular.sources import ingest_table, write_table

        table = ingest_table(params.tabular.ingest, params.seed)
        write_table(table, out)
        return {
            "counts": {"rows": len(table.frame)},
            "columns": {"numeric": len(table.numeric), "categorical": len(table.categorical)},
            "labelled": table.labels is not None,
            "origin": table.origin,
        }

    def validation_suites(self, params: Params, data: Path) -> tuple[list[Any], dict[str, int]]:
        from aeflow.usecases.tabular.sources import read_table
        from aeflow.usecases.tabular.validation import table_suites

        table = read_table(data)
        file = ", ".join(table.files) if table.files else str(data)
        return table_suites(table, file, params.tabular.validate_), {"rows": len(table.frame)}

    def inject_noise(self, params: Params, data: Path, out: Path) -> dict[str, Any]:
        from aeflow.usecases.tabular.corrupt import inject

        return inject(params, data, out)

    def training_plan(self, params: Params, data: Path, inputs: Path) -> Any:
        from aeflow.usecases.tabular.train import training_plan

        return training_plan(params, data, inputs)

    def evaluate(
        self, params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
    ) -> dict[str, Any]:
        from aeflow.usecases.tabular.evaluate import evaluate

        return evaluate(params, data, noisy, models, results, plots)

    def report_section(self, params: Params, inputs: Any) -> str:
        from aeflow.usecases.tabular.report import section

        return section(params, inputs)

    def promotion_paths(self, root: Path) -> list[Path]:
        return [self.layout(root).noisy]

    def promotion_score(self, params: Params, model_uri: str, root: Path) -> dict[str, float]:
        """ROC-AUC, PR-AUC, precision@n and F1 of a registered detector on the test split."""
        import logging

        import mlflow.pyfunc

        from aeflow.evaluation import anomaly
        from aeflow.usecases.tabular.corrupt import read_split
        from aeflow.usecases.tabular.evaluate import precision_at_n

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        scorer = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().scorer
        folder = self.layout(root).noisy
        frame, meta = read_split(folder, "test")
        scorer.encoder.check_columns(list(frame.columns), str(folder / "test.parquet"))
        scores = scorer.score(frame[scorer.columns], str(folder / "test.parquet"))
        labels = meta["label"].to_numpy().astype(bool)
        ranking = anomaly.ranking_metrics(labels, scores)
        points = anomaly.point_metrics(labels, scores > scorer.threshold)
        out = {
            "test/roc_auc": ranking["roc_auc"],
            "test/pr_auc": ranking["pr_auc"],
            "test/precision_at_n": precision_at_n(labels, scores),
            "test/f1": points["f1"],
        }
        return {k: float(v) for k, v in out.items() if v is not None}

    def stream_scorer(self, model: Any) -> Any:
        from aeflow.usecases.tabular.scorer import RowMonitor, TabularScorer

        return RowMonitor(TabularScorer.from_model(model))

    def landing_folder(self, params: Params) -> tuple[str, str | None]:
        i = params.tabular.ingest
        folder = i.path if i.source == "file" and i.path and Path(i.path).is_dir() else None
        return "tabular.ingest.path", folder


USE_CASE = Tabular()
