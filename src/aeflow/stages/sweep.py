"""sweep_latent: "is this just fancy PCA?" answered at several latent sizes.

For every k in ``sweep.latent_dims`` a plain (vanilla) autoencoder with the configured model's common
fields (architecture, widths, loss) is trained briefly (``sweep.epochs``) with a k-dimensional code, and
PCA with k components is fitted on the same training images; both are scored on the test split. The main
model's latent size and variant play no part, so trying either (``dvc exp run -S``) does not rerun the
sweep. Writes ``results/<use_case>/sweep.json``, ``<plots>/sweep.csv`` (for ``dvc plots``), one
comparison strip per k and an MSE-against-k chart, and logs them to one MLflow run (metrics with
``step = k`` so the UI draws the curve).

Every fit goes through the training service (:func:`aeflow.training.service.fit_jobs`): a killed sweep
resumes mid-fit and reuses the sizes it had finished, and an unreachable tracking store keeps the sweep's
run offline for ``aeflow sync`` instead of failing the stage.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path
from typing import Any

from aeflow.config import Params
from aeflow.io import atomic_dir, atomic_file, write_json
from aeflow.models.configs import with_overrides


def run(
    use_case: str, params: Params, data: Path, validation: Path, results: Path, plots: Path
) -> dict[str, Any]:
    """Run the latent-size sweep for ``use_case``; see the module docstring."""
    from aeflow import tracking, usecases
    from aeflow.evaluation.baselines import compare_with_pca
    from aeflow.evaluation.latent import knee
    from aeflow.layout import Layout
    from aeflow.report.figures import image_rows, line_chart
    from aeflow.training.service import (
        TrainingJob,
        TrainingPlan,
        check_validation,
        fit_jobs,
        log_artifact,
        open_run,
        resume_folder,
        warn_offline,
    )

    check_validation(validation)
    section = params.use_case(use_case)
    sweep = usecases.get(use_case).sweep_data(params, data)
    train_x, val_x, test_x, chosen = sweep.train, sweep.val, sweep.test, sweep.shown
    output, clip, batch_size = sweep.output, sweep.clip_pca, sweep.batch_size
    input_size = math.prod(train_x.shape[1:])
    rule_k = max(1, round(math.log2(input_size)))

    brief = section.train.model_copy(update={"epochs": section.sweep.epochs, "progress_bar": False})
    jobs = [
        TrainingJob(
            model=with_overrides(section.model, "vanilla", {"latent_dim": k}),
            train=brief,
            input_shape=list(train_x.shape[1:]),
            run_name=f"{use_case}-sweep-k{k}",
            description=lambda model, fit: "",
            key=str(k),
            folder=f"k{k:03d}",
            output=output,
            arrays=(train_x, None, val_x, None),
            data_digest=(train_x, val_x),
            registrar=None,
            track=False,  # the sweep's own run holds the curve
            best_weights=False,  # each size scored after its last epoch
        )
        for k in sorted(set(section.sweep.latent_dims))
    ]
    work = Layout(use_case).fits("sweep")
    root = resume_folder(work)
    plan = TrainingPlan(use_case, jobs, group_key="k", stage="sweep_latent")
    fitted = fit_jobs(params, plan, str(data), root, work)

    rows: list[dict[str, Any]] = []
    strips: dict[int, bytes] = {}
    for done in fitted:
        k = int(done.job.key)
        res = compare_with_pca(done.load(), train_x, test_x, batch_size, clip)
        rec = res.pop("_recon")
        rows.append(
            {
                "k": k,
                "ae_mse": res["ae"]["mse"],
                "pca_mse": res["pca"]["mse"],
                "ae_over_pca": res["ae_over_pca_mse"],
                "ae_ssim": res["ae"].get("ssim"),
                "pca_ssim": res["pca"].get("ssim"),
            }
        )
        if chosen is not None:
            strips[k] = image_rows(
                [test_x[chosen], rec["ae"][chosen], rec["pca"][chosen]],
                labels=["test", f"AE k={k}", f"PCA k={k}"],
            )

    knee_k = knee(rows)
    summary = {
        "rule_of_thumb_k": rule_k,
        "epochs": section.sweep.epochs,
        "input_size": input_size,
        "by_k": {f"k{r['k']}": {key: v for key, v in r.items() if key != "k"} for r in rows},
        "smallest_k_within_10pct_of_best_ae": knee_k,
    }
    chart = line_chart(
        [r["k"] for r in rows],
        {"autoencoder": [r["ae_mse"] for r in rows], "PCA": [r["pca_mse"] for r in rows]},
        "latent size k",
        "test MSE per value",
        "AE vs PCA at the same latent size",
        logy=True,
        marks={f"log2 rule (k={rule_k})": rule_k, f"knee (k={knee_k})": knee_k},
    )
    csv = "k,ae_mse,pca_mse,ae_over_pca\n" + "".join(
        f"{r['k']},{r['ae_mse']:.6g},{r['pca_mse']:.6g},{r['ae_over_pca']:.6g}\n" for r in rows
    )

    tags = tracking.lineage_tags(use_case, "sweep_latent", str(data))
    hparams = {"sweep": section.sweep.model_dump(), "model": jobs[0].model.model_dump(exclude={"latent_dim"})}
    logger, offline = open_run(params, use_case, f"{use_case}-sweep-latent", tags, work, hparams)
    # the run the report links to, with the numbers (not in plots/, where dvc plots would draw it)
    summary["run"] = {"run_id": logger.run_id, "experiment_id": getattr(logger, "experiment_id", None)}
    with contextlib.ExitStack() as stack:
        fig_dir = stack.enter_context(atomic_dir(plots / "sweep"))
        for k, png in strips.items():
            (fig_dir / f"ae_vs_pca_k{k:03d}.png").write_bytes(png)
        (fig_dir / "mse_vs_k.png").write_bytes(chart)
        csv_tmp = stack.enter_context(atomic_file(plots / "sweep.csv"))
        csv_tmp.write_text(csv, encoding="utf-8")
        write_json(results, summary)

    for r in rows:
        logger.log_metrics(
            {
                "sweep/ae_mse": r["ae_mse"],
                "sweep/pca_mse": r["pca_mse"],
                "sweep/ae_over_pca": r["ae_over_pca"],
            },
            step=r["k"],
        )
    for path in sorted((plots / "sweep").glob("*.png")):
        log_artifact(logger, path, "sweep")
    logger.finalize("success")
    if offline:
        warn_offline(params, logger, at_end=True)
    shutil.rmtree(root, ignore_errors=True)  # the fits: the results are safe now
    return summary
