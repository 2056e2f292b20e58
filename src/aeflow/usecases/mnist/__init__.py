"""The ``mnist`` use case: compress handwritten digits (and clean noisy ones), against PCA at the same size.

Modules: ``sources`` (bundled test set, IDX files, mirrors), ``idx`` (the file format), ``validation`` (its
suites), ``corrupt`` (image noise and the inject_noise stage), ``train`` (its training plan), ``evaluate``,
``report``, and the seed's extra stages ``answer_questions`` and ``variants`` (compare_variants).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.errors import DataError
from aeflow.usecases.base import SweepData, UseCase

if TYPE_CHECKING:
    from aeflow.config import Params


class Mnist(UseCase):
    name = "mnist"
    title = "MNIST compression"
    headline = (
        "variant",
        "latent_dim",
        "test.ae.mse",
        "test.ae.psnr_db",
        "test.ae.ssim",
        "test.pca.mse",
        "test.ae_over_pca_mse",
        "test.codes.iwae_nll_nats",
    )
    promotion_metric = "test/mse"
    model_output = "sigmoid"

    def ingest(self, params: Params, out: Path) -> dict[str, Any]:
        from aeflow.io import atomic_dir, save_arrays, write_json
        from aeflow.usecases.mnist.sources import ingest_mnist

        result = ingest_mnist(params.mnist.ingest, params.seed)
        with atomic_dir(out) as tmp:
            for name, (images, labels) in result.splits.items():
                save_arrays(tmp / f"{name}.npz", {"images": images, "labels": labels})
            write_json(tmp / "info.json", result.info)
        return result.info

    def validation_suites(self, params: Params, data: Path) -> tuple[list[Any], dict[str, int]]:
        from aeflow.io import load_arrays
        from aeflow.usecases.mnist.validation import image_suites

        splits, files = {}, {}
        for name in ("train", "val", "test"):
            path = data / f"{name}.npz"
            if not path.is_file():
                raise DataError(f"{path}: missing. Fix: run the ingest stage first (dvc repro).")
            arrays = load_arrays(path)
            splits[name] = (arrays["images"], arrays["labels"])
            files[name] = str(path)
        suites = image_suites(splits, files, params.mnist.validate_)
        return suites, {name: len(labels) for name, (_, labels) in splits.items()}

    def inject_noise(self, params: Params, data: Path, out: Path) -> dict[str, Any]:
        from aeflow.usecases.mnist.corrupt import inject_noise

        return inject_noise(params, data, out)

    def training_plan(self, params: Params, data: Path, inputs: Path) -> Any:
        from aeflow.usecases.mnist.train import training_plan

        return training_plan(params, data, inputs)

    def evaluate(
        self, params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
    ) -> dict[str, Any]:
        from aeflow.usecases.mnist.evaluate import evaluate

        return evaluate(params, data, noisy, models, results, plots)

    def sweep_data(self, params: Params, data: Path) -> SweepData:
        from aeflow.data.images import fixed_indices, load_image_splits

        splits = load_image_splits(data)
        (train_x, _), (val_x, _), (test_x, test_y) = splits["train"], splits["val"], splits["test"]
        ev = params.mnist.evaluate
        return SweepData(
            train_x, val_x, test_x, "sigmoid", ev.clip_pca, ev.batch_size, shown=fixed_indices(test_y, 10)
        )

    def report_section(self, params: Params, inputs: Any) -> str:
        from aeflow.usecases.mnist.report import section

        return section(params, inputs)

    def promotion_score(self, params: Params, model_uri: str, root: Path) -> dict[str, float]:
        """``test/mse`` (and PSNR/SSIM) of the model on the MNIST test split."""
        from aeflow.data.images import load_image_splits, model_inputs
        from aeflow.evaluation.metrics import reconstruction_metrics
        from aeflow.models.inference import predict
        from aeflow.tracking import load_pytorch_model
        from aeflow.usecases.mnist.corrupt import load_noisy

        model = load_pytorch_model(model_uri)
        layout = self.layout(root)
        splits = load_image_splits(layout.raw)
        noisy = load_noisy(layout.noisy) if model.needs_noisy_pairs else None
        test_in, _ = model_inputs(splits, noisy, model.needs_noisy_pairs)["test"]
        metrics = reconstruction_metrics(predict(model, test_in), splits["test"][0])
        return {f"test/{k}": float(v) for k, v in metrics.items()}

    def landing_folder(self, params: Params) -> tuple[str, str | None]:
        i = params.mnist.ingest
        return "mnist.ingest.idx_dir", i.idx_dir if i.source == "idx" else None

    def input_shape(self, params: Params) -> list[int] | None:
        return [1, 28, 28]


USE_CASE = Mnist()
