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
        """Headline metrics for ``dvc metrics`` (evaluate)."""
        return self.root / "metrics" / f"{self.use_case}.json"

    @property
    def sweep_metrics(self) -> Path:
        """The latent-size sweep's metrics (sweep_latent)."""
        return self.root / "metrics" / f"{self.use_case}_sweep.json"

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
