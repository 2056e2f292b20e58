"""compare_variants: train every variant in ``variants.names`` on the same data and compare them.

For each variant: a Lightning training run logged to MLflow (experiment ``aeflow-<uc>``, tag
``aeflow.stage=compare_variants``, so the UI's compare view shows one row per variant), test metrics and
code diagnostics (sparsity, Jacobian norm, ELBO/NLL where they apply), a latent-space scatter, and a
registered model version of ``aeflow-<uc>-<variant>``. Across variants:

* **denoising** – clean-target MSE of the noisy input itself, of the vanilla AE fed the noisy input and
  of the denoising AE;
* **generation** – decoded random codes of the vanilla AE (drawn from a Gaussian fitted to its training
  codes, the fairest simple choice) beside VAE samples, each scored by a digit classifier trained on the
  real training digits; VAE interpolation strips.

Outputs: ``<results_dir>/<variant>.json`` and ``<results_dir>/summary.json`` (every number, for the report),
``<metrics>`` (the headline for ``dvc metrics``: each variant's test MSE, PSNR and SSIM),
``<models>/<variant>.pt`` + ``runs.json``, and figures in ``<plots>/``.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aeflow.io import atomic_dir, atomic_file, pick, write_json

if TYPE_CHECKING:
    from aeflow.config import Params

#: What ``runs.json`` keeps of each variant's run: where it lives and the version it registered.
_RUN_KEYS = ("run_id", "experiment_id", "pending", "registered_model", "version", "model_uri")


def _generation(models: dict[str, Any], train_x: np.ndarray, n: int, seed: int) -> dict[str, np.ndarray]:
    """Generated images per model that can generate: VAE samples, vanilla decoded random codes."""
    from aeflow.models.inference import encode

    gen = torch.Generator().manual_seed(seed)
    out: dict[str, np.ndarray] = {}
    for name, model in models.items():
        if hasattr(model, "sample"):
            out[name] = model.sample(n, generator=gen).numpy()
        elif name == "vanilla":
            codes = encode(model, train_x)
            z = torch.randn(n, codes.shape[1], generator=gen) * torch.from_numpy(
                codes.std(0)
            ) + torch.from_numpy(codes.mean(0))
            with torch.no_grad():
                out[name] = model.decode(z.float()).numpy()
    return out


def run(
    use_case: str,
    params: Params,
    data: Path,
    noisy: Path,
    validation: Path,
    results_dir: Path,
    metrics: Path,
    models: Path,
    plots: Path,
) -> dict[str, Any]:
    """Train, evaluate, log and register every configured variant; see the module docstring."""
    from aeflow import tracking
    from aeflow.data.images import fixed_indices, load_image_splits, model_inputs
    from aeflow.evaluation.diagnostics import code_diagnostics
    from aeflow.evaluation.latent import project
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.models.inference import encode, predict
    from aeflow.models.registry import get_variant, save_model
    from aeflow.report.figures import bar_chart, image_rows, scatter
    from aeflow.tracking import offline
    from aeflow.training.service import TrainingJob, TrainingPlan, check_validation, fit_jobs, resume_folder
    from aeflow.usecases.mnist.classifier import fit_digit_classifier, score_images
    from aeflow.usecases.mnist.corrupt import load_noisy

    check_validation(validation)
    section = params.use_case(use_case)
    cfg = section.variants
    splits = load_image_splits(data)
    noisy_splits = load_noisy(noisy)
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    noisy_test = noisy_splits["test"]
    chosen = fixed_indices(test_y, 10)

    clf = fit_digit_classifier(train_x, train_y, params.seed)
    classifier_acc = float((clf.predict(test_x.reshape(len(test_x), -1)) == test_y).mean())

    trained: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, Any]] = {}
    figures: dict[str, bytes] = {}

    def scores(name: str, needs_noisy: bool) -> Any:
        """The job's ``finish``: test metrics and code diagnostics of the fitted variant (kept in its
        record, logged to its run)."""

        def finish(model: Any, fit: Any) -> tuple[dict[str, Any], dict[str, float]]:
            test_in = noisy_test if needs_noisy else test_x
            res: dict[str, Any] = {
                "latent_dim": model.latent_dim,
                "trained_on": "noisy→clean pairs" if needs_noisy else "clean images",
                "test": reconstruction_metrics(predict(model, test_in), test_x),
                "test_noisy_input": reconstruction_metrics(predict(model, noisy_test), test_x),
                "codes": code_diagnostics(
                    model,
                    test_x,
                    jacobian_examples=cfg.jacobian_examples,
                    iwae_samples=cfg.iwae_samples,
                    iwae_examples=cfg.iwae_examples,
                ),
                "train_seconds": round(fit.seconds, 2),
            }
            flat = {f"test/{k}": v for k, v in res["test"].items()}
            flat.update({f"test/{k}": v for k, v in res["codes"].items()})
            flat["test/noisy_input_mse"] = res["test_noisy_input"]["mse"]
            return {"compare": res}, flat

        return finish

    brief = section.train.model_copy(update={"epochs": cfg.epochs, "progress_bar": False})
    jobs = []
    for name in cfg.names:
        model_section = cfg.section_for(name, section.model)
        needs_noisy = get_variant(name).needs_noisy_pairs
        pairs = model_inputs(splits, noisy_splits, needs_noisy)
        jobs.append(
            TrainingJob(
                model=model_section,
                train=brief,
                input_shape=list(train_x.shape[1:]),
                run_name=f"{use_case}-{name}-compare",
                description=lambda model, fit, name=name: (
                    f"{name} autoencoder from the compare_variants stage ({cfg.epochs} epochs)."
                ),
                key=name,
                folder=name,
                arrays=(pairs["train"][0], pairs["train"][1], pairs["val"][0], pairs["val"][1]),
                data_digest=(pairs["train"][0], pairs["train"][1], pairs["val"][0], pairs["val"][1]),
                finish=scores(name, needs_noisy),
                hparams={
                    "seed": params.seed,
                    "model": model_section.model_dump(),
                    "epochs": cfg.epochs,
                    "train": section.train.model_dump(),
                    "noise": section.noise.model_dump(),
                },
                registered_name=f"{use_case}-{name}",
                candidate=False,  # a comparison, not a candidate for the use case's champion
                best_weights=False,  # every variant scored after the same number of epochs
            )
        )
    # Bad options stop here, before any run exists; a killed comparison reuses the variants it finished.
    root = resume_folder(models)
    plan = TrainingPlan(use_case, jobs, group_key="variant", stage="compare_variants")
    for done in fit_jobs(params, plan, str(data), root, models):
        name = done.job.key
        needs_noisy = get_variant(name).needs_noisy_pairs
        model = trained[name] = done.load()
        results[name] = done.record["compare"]
        runs[name] = {k: done.record.get(k) for k in _RUN_KEYS}
        test_in = noisy_test if needs_noisy else test_x
        recon = predict(model, test_in[chosen])
        codes = encode(model, test_x)
        points, how = project(codes, 2)
        figures[f"latent_{name}.png"] = scatter(points, test_y, f"{name}: test codes ({how})")
        figures[f"recon_{name}.png"] = image_rows(
            [test_in[chosen], recon] if not needs_noisy else [test_in[chosen], test_x[chosen], recon],
            labels=["input", "recon"] if not needs_noisy else ["noisy", "clean", "recon"],
        )

    denoising: dict[str, float] = {"noisy_input_mse": float(np.mean((noisy_test - test_x) ** 2))}
    for name in ("vanilla", "denoising"):
        if name in results:
            denoising[f"{name}_mse"] = results[name]["test_noisy_input"]["mse"]
    if "vanilla" in trained and "denoising" in trained:
        figures["denoising.png"] = image_rows(
            [
                noisy_test[chosen],
                predict(trained["vanilla"], noisy_test[chosen]),
                predict(trained["denoising"], noisy_test[chosen]),
                test_x[chosen],
            ],
            labels=["noisy", "vanilla", "denoising", "clean"],
        )

    generated = _generation(trained, train_x, cfg.num_generated, params.seed)
    generation = {name: score_images(clf, imgs) for name, imgs in generated.items()}
    generation["real_test_digits"] = score_images(clf, test_x[fixed_indices(test_y, cfg.num_generated)])
    if generated:
        figures["generation.png"] = image_rows(
            [imgs[:16] for imgs in generated.values()], labels=list(generated)
        )
        figures["generation_classes.png"] = bar_chart(
            [str(d) for d in range(10)],
            {n: g["class_histogram"] for n, g in generation.items()},
            "samples",
            "Classifier's reading of generated samples",
        )
    vae = trained.get("vae")
    if vae is not None:
        pairs_idx = [(chosen[i], chosen[j]) for i, j in ((0, 1), (3, 8), (4, 9), (7, 1))]
        strips = [
            vae.interpolate(torch.from_numpy(test_x[a]), torch.from_numpy(test_x[b]), 10).numpy()
            for a, b in pairs_idx
        ]
        figures["vae_interpolation.png"] = image_rows(
            strips, labels=[f"{test_y[a]}→{test_y[b]}" for a, b in pairs_idx]
        )

    summary = {
        "variants": list(cfg.names),
        "denoising": {"noise": section.noise.model_dump(), **denoising},
        "generation": generation,
        "classifier_test_accuracy": classifier_acc,
        "epochs": cfg.epochs,
    }
    with contextlib.ExitStack() as stack:
        mtmp = stack.enter_context(atomic_dir(results_dir))
        for name, res in results.items():
            write_json(mtmp / f"{name}.json", res)
        write_json(mtmp / "summary.json", summary)
        write_json(  # written with the rest: one stage's outputs never disagree
            stack.enter_context(atomic_file(metrics)),
            {name: pick(res, ("test.mse", "test.psnr_db", "test.ssim")) for name, res in results.items()},
        )
        models_tmp = stack.enter_context(atomic_dir(models))
        for name, model in trained.items():
            save_model(model, str(models_tmp / f"{name}.pt"))
        write_json(models_tmp / "runs.json", runs)
        ptmp = stack.enter_context(atomic_dir(plots))
        for fname, png in figures.items():
            (ptmp / fname).write_bytes(png)
    shared = {
        "vae": ["generation.png", "generation_classes.png", "vae_interpolation.png"],
        "denoising": ["denoising.png"],
    }
    for name, info in runs.items():
        files = [(plots / f"latent_{name}.png", "latent"), (plots / f"recon_{name}.png", "evaluation")]
        files += [(plots / f, "comparison") for f in shared.get(name, []) if (plots / f).is_file()]
        if info.get("pending"):  # trained while the store was unreachable: aeflow sync uploads them
            offline.log_to_pending(info["pending"], artifacts=files)
        else:
            tracking.log_to_run(params.tracking, info["run_id"], artifacts=files)
    shutil.rmtree(root, ignore_errors=True)  # the fits: the results are safe now
    return {"results": results, **summary}
