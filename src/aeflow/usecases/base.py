"""The contract between generic stage code and a use case.

Generic stages (``aeflow.stages``) never branch on a use case's name: they look it up in the registry
(:func:`aeflow.usecases.get`) and call the methods below. A use case overrides what it has; what it lacks
(a featurize stage, a latent sweep, a promotion score) fails with a message that says so.

One stage, one method:

=================  ===================================================================================
stage              method
=================  ===================================================================================
ingest             :meth:`UseCase.ingest` (its sources: bundled offline default, files, download)
validate           :meth:`UseCase.validation_suites` (its great-expectations suites)
inject_noise       :meth:`UseCase.inject_noise` (noise, faults, synthetic anomalies)
featurize          :meth:`UseCase.featurize` (optional: spectrograms, encoded columns)
train              :meth:`UseCase.training_plan` → the one training service
evaluate           :meth:`UseCase.evaluate` (metrics and baselines → ``metrics/<name>.json``)
sweep_latent       :meth:`UseCase.sweep_data` (optional: fixed-size inputs to sweep)
report             :meth:`UseCase.report_section`
aeflow promote     :meth:`UseCase.promotion_score`
aeflow retrain     :meth:`UseCase.landing_folder`
aeflow monitor     :meth:`UseCase.stream_scorer` (optional: score rows of a CSV as they arrive)
check-params       :meth:`UseCase.input_shape`
=================  ===================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from aeflow.errors import ParamsError
from aeflow.layout import Layout

if TYPE_CHECKING:
    import numpy as np

    from aeflow.config import Params


@dataclass
class SweepData:
    """Fixed-size inputs for the latent-size sweep, and how to score and show them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    output: str  # the decoder's output ("sigmoid" for data in [0, 1], "identity" for scaled readings)
    clip_pca: bool  # clip PCA reconstructions to [0, 1] like the data
    batch_size: int
    shown: np.ndarray | None = None  # test rows drawn as image strips (None: data that is not an image)


class UseCase:
    """One use case: its data, its corruption, its model inputs, its evaluation, its report and its gate."""

    name: ClassVar[str]
    title: ClassVar[str]  # its section heading in the report
    #: the decoder's output layer: "sigmoid" for data in [0, 1], "identity" for scaled or log values.
    model_output: ClassVar[str] = "identity"
    #: ``dvc.yaml`` runs featurize for it (its train stage reads ``data/processed/<name>``).
    has_features: ClassVar[bool] = False
    #: the decision ``aeflow promote`` makes on: a metric returned by :meth:`promotion_score`.
    promotion_metric: ClassVar[str] = ""

    def section(self, params: Params) -> Any:
        """This use case's params section."""
        return getattr(params, self.name)

    def layout(self, root: Path = Path(".")) -> Layout:
        return Layout(self.name, root)

    # ------------------------------------------------------------------------------------------ stages
    def ingest(self, params: Params, out: Path) -> dict[str, Any]:
        """Bring the configured source's data into ``out`` (replaced as a whole, only on success)."""
        raise NotImplementedError

    def validation_suites(self, params: Params, data: Path) -> tuple[list[Any], dict[str, int]]:
        """The great-expectations suites for the ingested ``data``, and the rows each part holds."""
        raise NotImplementedError

    def inject_noise(self, params: Params, data: Path, out: Path) -> dict[str, Any]:
        """Write the corrupted inputs (noise, faults, anomalies) of ``data`` to ``out``."""
        raise NotImplementedError

    def featurize(self, params: Params, data: Path, noisy: Path, out: Path) -> dict[str, Any]:
        """Model inputs computed from the clean and corrupted data (only where ``has_features``)."""
        raise ParamsError(f"use case {self.name!r} has no featurize stage (its train reads data directly)")

    #: The dotted keys of the evaluation results that ``metrics/<name>.json`` shows (``dvc metrics``,
    #: ``dvc exp show``): what one compares between experiments, no timings; keys a run lacks are left out.
    headline: tuple[str, ...] = ()

    def training_plan(self, params: Params, data: Path, inputs: Path) -> Any:
        """What the train stage fits: a :class:`aeflow.training.service.TrainingPlan` (one job per model)
        for the one training service, :func:`aeflow.training.service.train`."""
        raise NotImplementedError

    def evaluate(
        self, params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
    ) -> dict[str, Any]:
        """Score the trained model(s) and the baselines; write every number to ``results/scores.json``
        (:data:`aeflow.layout.SCORES`), examples beside it, and the figures under ``plots``. The evaluate
        stage then picks :attr:`headline` out of the scores."""
        raise NotImplementedError

    def sweep_data(self, params: Params, data: Path) -> SweepData:
        """Fixed-size inputs for the latent-size sweep."""
        raise ParamsError(f"sweep_latent: use case {self.name!r} has no fixed-size inputs to sweep")

    # ------------------------------------------------------------------------------- report and commands
    def report_section(self, params: Params, inputs: Any) -> str:
        """This use case's section of ``reports/index.html``."""
        raise NotImplementedError

    def promotion_paths(self, root: Path) -> list[Path]:
        """The DVC-tracked data :meth:`promotion_score` scores on (hashes go into the gate record)."""
        layout = self.layout(root)
        return [layout.raw, layout.noisy]

    def promotion_score(self, params: Params, model_uri: str, root: Path) -> dict[str, float]:
        """Every gate metric of the registered model at ``model_uri`` on the evaluation data."""
        raise ParamsError(f"use case {self.name!r} has no promotion score")

    def landing_folder(self, params: Params) -> tuple[str, str | None]:
        """(params key, folder) where new files for retraining land; folder is None for non-file sources."""
        return f"{self.name}.ingest", None

    def stream_scorer(self, model: Any) -> Any:
        """What ``aeflow monitor`` feeds a CSV's rows to, one at a time, for a trained ``model`` (the
        autoencoder with its ``data_config``): an object with ``columns`` (those a row needs),
        ``push(row) -> (score, flagged, note)`` (``row``: column → text; ``note``: what to print beside a
        flagged row), ``alarm`` (whether the last row raised an alarm) and ``summary()``."""
        raise ParamsError(f"use case {self.name!r} has no stream scorer: `aeflow monitor` cannot score it")

    def input_shape(self, params: Params) -> list[int] | None:
        """One model input's shape when params alone determine it (``None`` when only the data knows)."""
        return None
