"""The mnist section of the report: AE against PCA, reconstructions per epoch, the latent sweep, the
seed's questions and the variant comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aeflow.io import read_json
from aeflow.report import html as h
from aeflow.report.sections import (
    ReportInputs,
    loss_figure,
    mlflow_link,
    need,
    validation_table,
)

if TYPE_CHECKING:
    from aeflow.config import Params


def mnist_section(params: Params, inputs: ReportInputs) -> str:
    """The compression section: metrics, AE vs PCA, per-epoch reconstructions, sweep, validation, runs."""

    uc = "mnist"
    metrics = read_json(inputs.scores(uc))
    sweep = read_json(inputs.result(uc, "sweep.json"))
    run = read_json(need(inputs.models / uc / "run.json"))
    sweep_run = sweep["run"]
    validation = read_json(need(inputs.validation / f"{uc}.json"))
    plots = inputs.plots / uc
    parts: list[str] = []

    ae, pca = metrics["test"]["ae"], metrics["test"]["pca"]
    k = metrics["latent_dim"]
    parts.append(
        f"<p>Variant <b>{h.esc(metrics['variant'])}</b>, latent size <b>k = {k}</b>, scored on "
        f"{h.fmt(metrics['test_rows'])} held-out test digits against PCA with the same {k} components fitted "
        "on the same training images.</p>"
    )
    labels = {
        "mse": "MSE per pixel (lower is better)",
        "bce_nats": "BCE, nats per image (lower)",
        "psnr_db": "PSNR, dB (higher)",
        "ssim": "SSIM (higher)",
    }
    parts.append(
        h.table(
            ["metric", "autoencoder", f"PCA (k={k})"], [(labels[m], ae[m], pca[m]) for m in labels if m in ae]
        )
    )
    ratio = metrics["test"]["ae_over_pca_mse"]
    verdict = (
        f"the autoencoder reconstructs with {ratio:.0%} of PCA's error: not just fancy PCA"
        if ratio is not None and ratio < 1
        else "at this size and training budget the autoencoder does not beat PCA"
    )
    parts.append(f'<p class="note">AE MSE / PCA MSE = <b>{h.fmt(ratio, 3)}</b>: {h.esc(verdict)}.</p>')
    parts.append(
        h.img(
            need(plots / "evaluation" / "ae_vs_pca.png").read_bytes(),
            "test digits, AE and PCA reconstructions",
            f"Test digits (top), autoencoder (middle), PCA k={k} (bottom)",
        )
    )

    parts.append("<h3>Training</h3>" + loss_figure(plots / "loss.csv"))
    grids = sorted((plots / "recon").glob("epoch_*.png"))
    parts.append(
        "<h3>Reconstructions epoch by epoch</h3><p>The same fixed digits after every epoch: "
        "originals above, reconstructions below.</p>"
    )
    parts.extend(h.img(g.read_bytes(), g.stem, g.stem.replace("_", " ")) for g in grids)

    parts.append('<h3 id="mnist-sweep">AE against PCA at several latent sizes</h3>')
    rows = sorted(sweep["by_k"].items(), key=lambda kv: int(kv[0][1:]))
    parts.append(
        h.table(
            ["k", "AE MSE", "PCA MSE", "AE / PCA"],
            [(int(key[1:]), v["ae_mse"], v["pca_mse"], v["ae_over_pca"]) for key, v in rows],
        )
    )
    parts.append(
        f"<p>Each AE trained {sweep['epochs']} epochs. Rule of thumb round(log2(input size)) = "
        f"{sweep['rule_of_thumb_k']}; smallest k within 10 % of the best AE error: "
        f"{sweep['smallest_k_within_10pct_of_best_ae']}.</p>"
    )
    parts.append(h.img(need(plots / "sweep" / "mse_vs_k.png").read_bytes(), "MSE against latent size"))
    parts.extend(
        h.img(p.read_bytes(), p.stem, p.stem.replace("_", " "))
        for p in sorted((plots / "sweep").glob("ae_vs_pca_k*.png"))
    )

    parts.append("<h3>Data validation</h3>" + validation_table(validation))

    parts.append("<h3>MLflow</h3>")
    parts.append(
        h.table(
            ["what", "value"],
            [
                ("training run", mlflow_link(params, run["experiment_id"], run["run_id"])),
                ("sweep run", mlflow_link(params, sweep_run["experiment_id"], sweep_run["run_id"])),
                (
                    "registered model",
                    h.esc(f"{run['registered_model']} version {run['version']}")
                    if run.get("registered_model")
                    else "not yet: registered by <code>aeflow sync</code>",
                ),
                (
                    "load it",
                    f'<code>mlflow.pytorch.load_model("{h.esc(run["model_uri"])}")</code>'
                    if run.get("model_uri")
                    else "—",
                ),
            ],
            raw_cells=True,
        )
    )
    return "".join(parts)


def variants_section(params: Params, inputs: ReportInputs, uc: str) -> str:
    """The autoencoder family on the same data: table, denoising, generation, latent spaces."""
    folder = inputs.result(uc, "variants")
    summary = read_json(need(folder / "summary.json"))
    runs = read_json(need(inputs.models / f"{uc}_variants" / "runs.json"))
    plots = inputs.plots / uc / "variants"
    names = summary["variants"]
    res = {n: read_json(need(folder / f"{n}.json")) for n in names}
    parts = [
        f"<p>Every variant trained {summary['epochs']} epochs with the same architecture settings and data. "
        "Sparsity is the Hoyer measure of |code| (0 = all units equal, 1 = one unit carries all); the "
        "Jacobian norm is the mean ‖∂code/∂input‖<sub>F</sub>; sensitivity is ‖Δcode‖/‖Δinput‖ for small "
        "Gaussian input noise. ELBO and NLL are in nats per binarised test digit (NLL: importance-weighted "
        "bound).</p>"
    ]

    def code(n: str, key: str) -> Any:
        return res[n]["codes"].get(key)

    parts.append(
        h.table(
            [
                "variant",
                "trained on",
                "k",
                "test MSE",
                "sparsity",
                "mean activation",
                "Jacobian norm",
                "sensitivity",
                "−ELBO",
                "IWAE NLL",
                "MLflow run",
            ],
            [
                (
                    h.esc(n),
                    h.esc(res[n]["trained_on"]),
                    h.fmt(res[n]["latent_dim"]),
                    h.fmt(res[n]["test"]["mse"]),
                    h.fmt(code(n, "hoyer_sparsity"), 3),
                    h.fmt(code(n, "mean_activation"), 3),
                    h.fmt(code(n, "jacobian_norm"), 3),
                    h.fmt(code(n, "perturbation_sensitivity"), 3),
                    h.fmt(code(n, "neg_elbo_nats"), 4),
                    h.fmt(code(n, "iwae_nll_nats"), 4),
                    mlflow_link(params, runs[n]["experiment_id"], runs[n]["run_id"]),
                )
                for n in names
            ],
            raw_cells=True,
        )
    )
    d = summary["denoising"]
    noise = d["noise"]
    parts.append(
        f"<h3>Denoising</h3><p>Test digits corrupted with {h.esc(noise['kind'])} noise at "
        f"{h.fmt(noise['level'])}; MSE against the clean digits (lower is better).</p>"
    )
    parts.append(
        h.table(
            ["input to the clean target", "MSE"],
            [
                (label, d[key])
                for key, label in (
                    ("noisy_input_mse", "the noisy input itself"),
                    ("vanilla_mse", "vanilla AE fed the noisy input"),
                    ("denoising_mse", "denoising AE"),
                )
                if key in d
            ],
        )
    )
    if (plots / "denoising.png").is_file():
        parts.append(h.img((plots / "denoising.png").read_bytes(), "denoising examples"))
    gen = summary["generation"]
    parts.append(
        "<h3>Can it generate?</h3><p>A vanilla autoencoder has no prior over its codes, so decoding random "
        "codes (here drawn from a Gaussian fitted to its own training codes) rarely gives a digit; a VAE is "
        "trained so that codes from N(0, I) decode to digits. A digit classifier trained on the real "
        f"training digits (test accuracy {h.fmt(summary['classifier_test_accuracy'], 3)}) reads the samples: "
        "higher confidence and a flatter class histogram mean more digit-like, more varied samples.</p>"
    )
    parts.append(
        h.table(
            ["images", "mean max-probability", "class entropy (bits, max 3.32)"],
            [(n, g["mean_max_probability"], g["class_entropy_bits"]) for n, g in gen.items()],
        )
    )
    for fname, alt in (
        ("generation.png", "generated samples, one row per model"),
        ("generation_classes.png", "class histogram of generated samples"),
        ("vae_interpolation.png", "VAE interpolation between test digits"),
    ):
        if (plots / fname).is_file():
            parts.append(h.img((plots / fname).read_bytes(), alt, alt))
    parts.append("<h3>Latent spaces and reconstructions</h3>")
    parts.extend(h.img(need(plots / f"latent_{n}.png").read_bytes(), f"latent space of {n}") for n in names)
    parts.extend(h.img(need(plots / f"recon_{n}.png").read_bytes(), f"{n} reconstructions", n) for n in names)
    parts.append(
        "<p>Registered models: "
        + ", ".join(
            f"<code>{h.esc(runs[n]['model_uri'])}</code>"
            if runs[n].get("model_uri")
            else f"{n}: pending sync"
            for n in names
        )
        + "</p>"
    )
    return "".join(parts)


def questions_section(params: Params, inputs: ReportInputs, uc: str) -> str:
    """The seed's four questions answered with this run's numbers, plus downstream speed-up and 2-D/3-D."""
    import html as _html

    answers = read_json(inputs.result(uc, "questions.json"))
    sweep = read_json(inputs.result(uc, "sweep.json"))
    variants = inputs.result(uc, "variants", required=False) / "summary.json"
    plots = inputs.plots / uc
    k, rule, knee_k = answers["latent_dim"], answers["rule_of_thumb_k"], answers["knee_k"]
    rows = sorted(((int(key[1:]), v) for key, v in sweep["by_k"].items()), key=lambda kv: kv[0])
    wins = [kk for kk, v in rows if v["ae_over_pca"] < 1]
    parts = ["<h3>1. Is this just fancy PCA?</h3>"]
    best = min(rows, key=lambda kv: kv[1]["ae_over_pca"])
    main = read_json(inputs.scores(uc))
    ratio = main["test"].get("ae_over_pca_mse")
    trained = main.get("train", {}).get("epochs")
    parts.append(
        f"<p><b>{'No' if ratio is not None and ratio < 1 else 'Not at this budget'}</b>: the trained model "
        f"(k = {main['latent_dim']}, {trained} epochs) reconstructs the test digits with "
        f"<b>{h.fmt(ratio, 3)}×</b> PCA's MSE at the same k. In the sweep, where each size gets only "
        f"{sweep['epochs']} epochs, the autoencoder beats PCA at {len(wins)} of {len(rows)} sizes "
        f"({', '.join(map(str, wins)) or 'none'}; best {h.fmt(best[1]['ae_over_pca'], 3)}× at "
        f"k = {best[0]}): "
        "a short budget under-trains the larger codes, which need more epochs than PCA needs to fit "
        "(raise <code>mnist.sweep.epochs</code> for a full-budget curve). PCA is the best <i>linear</i> "
        "code; the AE's non-linear decoder is what buys the gap, and where the gap is small a linear "
        'model is all the data needs. The numbers per size and the curve: <a href="#mnist-sweep">AE '
        "against PCA at several latent sizes</a> above.</p>"
    )
    parts.append("<h3>2. How do I pick the latent size?</h3>")
    parts.append(
        f"<p>The rule of thumb round(log2({answers['input_size']})) gives <b>k = {rule}</b>; the sweep's "
        f"knee (the smallest k within 10 % of the best AE error) is <b>k = {knee_k}</b>; this model uses "
        f"<b>k = {k}</b>. Below the knee every extra dimension still buys visible detail; above it the "
        'code mostly grows (the curve: <a href="#mnist-sweep">above</a>).</p>'
    )
    blur = answers["blurry"]
    parts.append(f"<h3>3. Why are my reconstructions blurry?</h3><p><b>{h.esc(blur['summary'])}</b></p>")
    parts.append(
        h.table(
            ["check", "verdict", "evidence"],
            [(c["check"].replace("_", " "), c["verdict"], c["message"]) for c in blur["checks"]],
        )
    )
    parts.append("<h3>4. Can a vanilla autoencoder generate?</h3>")
    if variants.is_file():
        gen = read_json(variants).get("generation", {})
        van, vae, real = gen.get("vanilla"), gen.get("vae"), gen.get("real_test_digits")
        if van and vae and real:
            parts.append(
                "<p><b>Poorly.</b> A digit classifier reads decoded random codes of the vanilla AE with mean "
                f"confidence {h.fmt(van['mean_max_probability'], 3)} (class entropy "
                f"{h.fmt(van['class_entropy_bits'], 3)} bits), VAE samples with "
                f"{h.fmt(vae['mean_max_probability'], 3)} ({h.fmt(vae['class_entropy_bits'], 3)} bits), real "
                f"test digits with {h.fmt(real['mean_max_probability'], 3)} "
                f"({h.fmt(real['class_entropy_bits'], 3)} bits). The vanilla AE has no prior over its "
                "codes, so random codes land between the digits it learned; the VAE is trained so that "
                'N(0, I) decodes to digits. Samples: see <a href="#variants">Autoencoder variants</a>.</p>'
            )
        else:
            parts.append(
                "<p>Add <code>vanilla</code> and <code>vae</code> to <code>mnist.variants.names</code>.</p>"
            )
    parts.append("<h3>What compression buys downstream</h3>")
    ds = answers["downstream"]
    parts.append(
        "<p>The same classifiers fitted on raw pixels, on PCA codes and on AE codes of the same size (test "
        "accuracy; wall-clock fit and predict time in this run).</p>"
    )
    parts.append(
        h.table(
            ["features", "dims", "classifier", "accuracy", "fit (s)", "predict (s)", "fit speed-up"],
            [
                (
                    r["features"],
                    r["dims"],
                    r["classifier"],
                    r["accuracy"],
                    r["fit_seconds"],
                    r["predict_seconds"],
                    r.get("fit_speedup_vs_raw"),
                )
                for r in ds
            ],
        )
    )
    for name, alt in (("downstream_accuracy.png", "accuracy"), ("downstream_fit_time.png", "fit time")):
        parts.append(h.img(need(plots / "questions" / name).read_bytes(), f"downstream {alt}"))
    parts.append("<h3>Codes in two and three dimensions</h3>")
    proj = answers["projection"]
    parts.append(
        f"<p>Test codes coloured by digit: 2-D = {h.esc(proj['how_2d'])}"
        + (f", 3-D = {h.esc(proj['how_3d'])}" if proj.get("how_3d") else "")
        + ". The interactive view below needs no network: hover for a point's label, drag the 3-D view to "
        "rotate it.</p>"
    )
    for name in ("codes_2d.png", "codes_3d.png"):
        if (plots / "questions" / name).is_file():
            parts.append(h.img((plots / "questions" / name).read_bytes(), name[:-4].replace("_", " ")))
    page = need(plots / "questions" / "codes.html").read_text(encoding="utf-8")
    parts.append(
        f'<iframe title="interactive code projection" srcdoc="{_html.escape(page, quote=True)}" '
        'style="width:100%;height:560px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>'
    )
    return "".join(parts)


def section(params: Params, inputs: ReportInputs) -> str:
    """Compression, then the seed's questions, then the variants."""
    return (
        mnist_section(params, inputs)
        + '<h3 id="questions">Questions</h3>'
        + questions_section(params, inputs, "mnist")
        + '<h3 id="variants">Autoencoder variants</h3>'
        + variants_section(params, inputs, "mnist")
    )
