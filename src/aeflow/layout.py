"""Every path the pipeline writes, once: stages get them through argv from ``dvc.yaml``, and everything that
finds a stage's files without argv (``aeflow`` commands, promotion, retraining, benchmarks) asks here.

``tests/unit/test_layout.py`` holds this module against ``dvc.yaml``: each stage's command, deps and outs
must name exactly these paths, so a path changed in one place fails the tests instead of drifting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARAMS = "params.yaml"
REPORT = "reports/index.html"
REGISTRY = "registry"
RESULTS = "results"
SCORES = "scores.json"  # every number evaluate measured, inside Layout.evaluation_results
METRICS = "metrics"
MLFLOW_DB = "mlflow.db"


@dataclass(frozen=True)
class Layout:
    """The files of one use case, relative to the project ``root``."""

    use_case: str
    root: Path = Path(".")

    @property
    def raw(self) -> Path:
        """Ingested data (ingest)."""
        return self.root / "data" / "raw" / self.use_case

    @property
    def validation(self) -> Path:
        """The great-expectations report (validate)."""
        return self.root / "data" / "validation" / f"{self.use_case}.json"

    @property
    def noisy(self) -> Path:
        """Corrupted inputs, injected faults or anomalies (inject_noise)."""
        return self.root / "data" / "interim" / self.use_case

    @property
    def features(self) -> Path:
        """Model inputs computed from raw and noisy data (featurize, for use cases that have it)."""
        return self.root / "data" / "processed" / self.use_case

    @property
    def models(self) -> Path:
        """Trained model(s) and ``run.json`` (train)."""
        return self.root / "models" / self.use_case

    @property
    def run_file(self) -> Path:
        """Where the training run lives (MLflow ids, registered version)."""
        return self.models / "run.json"

    def fits(self, stage: str) -> Path:
        """The name the fits of a stage other than train go by (``sweep``, ``questions``): they wait in
        ``models/.<use case>_<stage>.resume`` until the stage's outputs are safe (a killed stage resumes
        there), and a run kept while the tracking store is down in ``models/.<use case>_<stage>.pending``
        for ``aeflow sync``. Never a DVC output itself."""
        return self.models.with_name(f"{self.use_case}_{stage}")

    @property
    def metrics(self) -> Path:
        """The headline numbers for ``dvc metrics`` and ``dvc exp show``: a few per use case, no timings
        (evaluate picks them from :attr:`evaluation_results` by ``UseCase.headline``)."""
        return self.root / METRICS / f"{self.use_case}.json"

    @property
    def results(self) -> Path:
        """Everything the use case's stages measured, one JSON file (or folder) per stage: what the report
        renders. Not listed by ``dvc metrics``, so ``dvc exp show`` stays readable."""
        return self.root / RESULTS / self.use_case

    def result(self, name: str) -> Path:
        """One stage's file or folder under :attr:`results`: ``evaluation``, ``sweep.json``, …"""
        return self.results / name

    @property
    def evaluation_results(self) -> Path:
        """What evaluate writes besides figures (a folder): :data:`SCORES`, every number it measured with
        the baselines and breakdowns, and any examples to listen to (speech: ``examples/``)."""
        return self.result("evaluation")

    @property
    def scores(self) -> Path:
        """Every number evaluate measured (the headline in :attr:`metrics` is picked from it)."""
        return self.evaluation_results / SCORES

    @property
    def sweep_results(self) -> Path:
        """The latent-size sweep's numbers, AE and PCA at each size (sweep_latent)."""
        return self.result("sweep.json")

    @property
    def plots(self) -> Path:
        """Figures and plot data (train, evaluate, sweep_latent)."""
        return self.root / "plots" / self.use_case

    @property
    def evaluation_plots(self) -> Path:
        """What evaluate draws (a folder)."""
        return self.plots / "evaluation"

    @property
    def registry_export(self) -> Path:
        """The MLflow registry's versions, aliases and gate records (export_registry), for the report."""
        return self.root / REGISTRY / f"{self.use_case}.json"

    def relative(self, path: Path) -> str:
        """``path`` as written in ``dvc.yaml`` (relative to the root, forward slashes)."""
        return path.relative_to(self.root).as_posix()
