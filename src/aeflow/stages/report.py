"""report: ``reports/index.html`` from the files the earlier stages wrote (no recomputation).

Inputs are found by use-case name inside the folders given on the command line (``metrics/<uc>.json``,
``plots/<uc>/…``, ``models/<uc>/run.json``, ``<validation>/<uc>.json``), which are exactly the DVC
outputs the stage depends on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeflow.config import Params
from aeflow.errors import DataError
from aeflow.io import read_json, write_text
from aeflow.report import html as h


@dataclass(frozen=True)
class ReportInputs:
    """Folders holding each use case's outputs."""

    metrics: Path
    plots: Path
    models: Path
    validation: Path


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: missing. Fix: run the earlier stages first (dvc repro).")
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def loss_figure(csv_path: Path) -> str:
    """Train/validation loss per epoch from the ``loss.csv`` a train stage wrote."""
    from aeflow.report.figures import line_chart

    history = _read_csv(_need(csv_path))
    epochs = [int(r["epoch"]) for r in history]
    series = {
        name: [float(r[name]) if r.get(name) else None for r in history]
        for name in ("train_loss", "val_loss")
        if any(r.get(name) for r in history)
    }
    return h.img(line_chart(epochs, series, "epoch", "loss", "Loss per epoch"), "loss curve")


def mlflow_link(params: Params, experiment_id: str | None, run_id: str | None) -> str:
    if not run_id:  # trained while the tracking store was unreachable
        return "offline: pending <code>aeflow sync</code>"
    url = f"{params.tracking.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f'<a href="{h.esc(url)}">{h.esc(run_id)}</a>'


METHOD_LABELS = {
    "noisy": "noisy input",
    "autoencoder": "denoising autoencoder",
    "spectral_subtraction": "spectral subtraction",
    "spectral_gating": "spectral gating (noisereduce)",
}


def _validation_table(validation: dict[str, Any]) -> str:
    return h.table(
        ["file", "expectation", "checks", "result"],
        [
            (
                h.esc(Path(e["file"]).name),
                h.esc(e["expectation"]),
                h.esc(e["what"]),
                '<span class="ok">pass</span>' if e["success"] else '<span class="bad">fail</span>',
            )
            for e in validation["results"]
        ],
        raw_cells=True,
    )


def mnist_section(params: Params, inputs: ReportInputs) -> str:
    """The compression section: metrics, AE vs PCA, per-epoch reconstructions, sweep, validation, runs."""

    uc = "mnist"
    metrics = read_json(_need(inputs.metrics / f"{uc}.json"))
    sweep = read_json(_need(inputs.metrics / f"{uc}_sweep.json"))
    run = read_json(_need(inputs.models / uc / "run.json"))
    sweep_run = read_json(_need(inputs.plots / uc / "sweep" / "run.json"))
    validation = read_json(_need(inputs.validation / f"{uc}.json"))
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
            _need(plots / "ae_vs_pca.png").read_bytes(),
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

    parts.append("<h3>AE against PCA at several latent sizes</h3>")
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
    parts.append(h.img(_need(plots / "sweep" / "mse_vs_k.png").read_bytes(), "MSE against latent size"))
    parts.extend(
        h.img(p.read_bytes(), p.stem, p.stem.replace("_", " "))
        for p in sorted((plots / "sweep").glob("ae_vs_pca_k*.png"))
    )

    parts.append("<h3>Data validation</h3>" + _validation_table(validation))

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
    folder = _need(inputs.metrics / f"{uc}_variants")
    summary = read_json(_need(folder / "summary.json"))
    runs = read_json(_need(inputs.models / f"{uc}_variants" / "runs.json"))
    plots = inputs.plots / uc / "variants"
    names = summary["variants"]
    res = {n: read_json(_need(folder / f"{n}.json")) for n in names}
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
    parts.extend(h.img(_need(plots / f"latent_{n}.png").read_bytes(), f"latent space of {n}") for n in names)
    parts.extend(
        h.img(_need(plots / f"recon_{n}.png").read_bytes(), f"{n} reconstructions", n) for n in names
    )
    parts.append(
        "<p>Registered models: "
        + ", ".join(f"<code>{h.esc(runs[n]['model_uri'])}</code>" for n in names)
        + "</p>"
    )
    return "".join(parts)


def questions_section(params: Params, inputs: ReportInputs, uc: str) -> str:
    """The seed's four questions answered with this run's numbers, plus downstream speed-up and 2-D/3-D."""
    import html as _html

    answers = read_json(_need(inputs.metrics / f"{uc}_questions.json"))
    sweep = read_json(_need(inputs.metrics / f"{uc}_sweep.json"))
    variants = inputs.metrics / f"{uc}_variants" / "summary.json"
    plots = inputs.plots / uc
    k, rule, knee_k = answers["latent_dim"], answers["rule_of_thumb_k"], answers["knee_k"]
    rows = sorted(((int(key[1:]), v) for key, v in sweep["by_k"].items()), key=lambda kv: kv[0])
    wins = [kk for kk, v in rows if v["ae_over_pca"] < 1]
    parts = ["<h3>1. Is this just fancy PCA?</h3>"]
    best = min(rows, key=lambda kv: kv[1]["ae_over_pca"])
    main = read_json(_need(inputs.metrics / f"{uc}.json"))
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
        "model is all the data needs.</p>"
    )
    parts.append(
        h.table(
            ["k", "AE MSE", "PCA MSE", "AE / PCA"],
            [(kk, v["ae_mse"], v["pca_mse"], v["ae_over_pca"]) for kk, v in rows],
        )
    )
    parts.append("<h3>2. How do I pick the latent size?</h3>")
    parts.append(
        f"<p>The rule of thumb round(log2({answers['input_size']})) gives <b>k = {rule}</b>; the sweep's "
        f"knee (the smallest k within 10 % of the best AE error) is <b>k = {knee_k}</b>; this model uses "
        f"<b>k = {k}</b>. Below the knee every extra dimension still buys visible detail; above it the "
        "code mostly grows.</p>"
    )
    parts.append(h.img(_need(plots / "sweep" / "mse_vs_k.png").read_bytes(), "test MSE against latent size"))
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
        parts.append(h.img(_need(plots / "questions" / name).read_bytes(), f"downstream {alt}"))
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
    page = _need(plots / "questions" / "codes.html").read_text(encoding="utf-8")
    parts.append(
        f'<iframe title="interactive code projection" srcdoc="{_html.escape(page, quote=True)}" '
        'style="width:100%;height:560px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>'
    )
    return "".join(parts)


def mnist_full_section(params: Params, inputs: ReportInputs) -> str:
    return (
        mnist_section(params, inputs)
        + '<h3 id="questions">Questions</h3>'
        + questions_section(params, inputs, "mnist")
        + '<h3 id="variants">Autoencoder variants</h3>'
        + variants_section(params, inputs, "mnist")
    )


def speech_section(params: Params, inputs: ReportInputs) -> str:
    """Speech denoising: scores per input SNR against the noisy input and two classical baselines,
    spectrograms and audio players for example mixtures, training curves and snapshots, validation."""

    uc = "speech"
    metrics = read_json(_need(inputs.metrics / f"{uc}.json"))
    run = read_json(_need(inputs.models / uc / "run.json"))
    validation = read_json(_need(inputs.validation / f"{uc}.json"))
    plots = inputs.plots / uc
    evaluation = _need(plots / "evaluation")
    parts: list[str] = [
        f"<p>A <b>{h.esc(run['variant'])}</b> convolutional autoencoder over log-spectrogram patches "
        f"predicts a <b>{h.esc(run.get('target', 'mask'))}</b>; the noisy phase turns the estimate back into "
        f"a waveform. Scored on {h.fmt(metrics['test_mixtures'])} test mixtures of held-out speakers "
        f"({h.esc(', '.join(metrics['test_speakers']))}) with noise the model never heard in training "
        f"({h.esc(', '.join(metrics['test_sources']))}).</p>"
    ]
    cols = ["si_sdr", "si_sdr_improvement", "pesq", "stoi"]
    names = {"si_sdr": "SI-SDR dB", "si_sdr_improvement": "SI-SDR gain dB", "pesq": "PESQ", "stoi": "STOI"}

    def rows(block: dict[str, Any]) -> list[list[Any]]:
        return [
            [METHOD_LABELS.get(m, m), *[block[m].get(c) for c in cols]] for m in METHOD_LABELS if m in block
        ]

    present = [c for c in cols if c in metrics["test"]["noisy"]]
    header = ["method", *[names[c] for c in present]]
    cols = present
    parts.append("<h3>All test mixtures</h3>" + h.table(header, rows(metrics["test"])))
    gain = metrics["ae_gain_over_best_classical_db"]
    parts.append(
        f'<p class="note">SI-SDR gain of the autoencoder minus that of the better classical baseline: '
        f"<b>{gain:+.2f} dB</b>.</p>"
    )
    for snr, block in sorted(metrics["by_snr"].items(), key=lambda kv: float(kv[0].removesuffix("dB"))):
        parts.append(f"<h3>Input SNR {h.esc(snr)}</h3>" + h.table(header, rows(block)))
    parts.append("<h3>By test noise</h3>")
    for source, block in sorted(metrics["by_source"].items()):
        parts.append(f"<p><b>{h.esc(source)}</b></p>" + h.table(header, rows(block)))

    examples = read_json(_need(evaluation / "examples" / "examples.json"))
    parts.append("<h3>Listen</h3><p>Spectrograms share one colour scale: noisy, denoised, clean.</p>")
    for ex in examples:
        parts.append(f"<h4>{h.esc(ex['id'])}: {h.esc(ex['source'])} at {ex['snr_db']:g} dB</h4>")
        figure = evaluation / "examples" / ex["figure"]
        parts.append(h.img(_need(figure).read_bytes(), "spectrograms"))
        parts.append("<div>")
        for name in ("clean", *METHOD_LABELS):
            if name in ex["audio"]:
                wav = _need(evaluation / "examples" / ex["audio"][name]).read_bytes()
                parts.append(h.audio(wav, METHOD_LABELS.get(name, name)))
        parts.append("</div>")

    parts.append("<h3>Training</h3>" + loss_figure(plots / "loss.csv"))
    snaps = sorted((plots / "recon").glob("epoch_*.png"))
    if snaps:
        parts.append("<p>One validation utterance after the first and the last epoch:</p>")
        parts.extend(
            h.img(s.read_bytes(), s.stem, s.stem.replace("_", " "))
            for s in dict.fromkeys([snaps[0], snaps[-1]])
        )
    parts.append("<h3>Data validation</h3>" + _validation_table(validation))
    parts.append(
        "<h3>MLflow</h3>"
        + h.table(
            ["what", "value"],
            [
                ("training run", mlflow_link(params, run["experiment_id"], run["run_id"])),
                ("registered model", h.esc(f"{run['registered_model']} version {run['version']}")),
                (
                    "denoise a file",
                    f"<code>aeflow denoise in.wav -o out.wav --model {h.esc(run['model_uri'])}</code>",
                ),
            ],
            raw_cells=True,
        )
    )
    return "".join(parts)


SENSOR_METRICS = {
    "f1": "point F1",
    "event_recall": "event recall",
    "mean_detection_delay": "mean delay (rows)",
    "far": "false-alarm rate",
    "alarms": "alarms",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "nab_standard": "NAB standard",
    "nab_reward_low_FP_rate": "NAB low FP",
    "nab_reward_low_FN_rate": "NAB low FN",
}


def sweep_block(sweep: dict[str, Any], folder: Path, unit: str) -> str:
    """AE against PCA at each latent size, with the rule of thumb and the knee, for any use case."""
    rows = sorted(((int(key[1:]), v) for key, v in sweep["by_k"].items()), key=lambda kv: kv[0])
    wins = [k for k, v in rows if v["ae_over_pca"] < 1]
    verdict = (
        f"the autoencoder beats PCA at k = {', '.join(map(str, wins))}"
        if wins
        else "PCA reconstructs these inputs better at every size tried: the data is close to linear, "
        "and a linear code is all it needs"
    )
    return (
        "<h3>Latent size: AE against PCA</h3>"
        + h.table(
            ["k", "AE MSE", "PCA MSE", "AE / PCA"],
            [(k, v["ae_mse"], v["pca_mse"], v["ae_over_pca"]) for k, v in rows],
        )
        + f"<p>Test MSE per {h.esc(unit)}, each AE trained {sweep['epochs']} epochs. Rule of thumb "
        f"round(log2({sweep.get('input_size', '?')})) = {sweep['rule_of_thumb_k']}; knee (smallest k within "
        f"10 % of the best AE error) = {sweep['smallest_k_within_10pct_of_best_ae']}; {h.esc(verdict)}.</p>"
        + h.img(_need(folder / "mse_vs_k.png").read_bytes(), "MSE against latent size")
    )


def sensor_section(params: Params, inputs: ReportInputs) -> str:
    """Anomaly detection: detector vs baselines, the threshold explained, error timelines, sensors."""
    uc = "sensor"
    metrics = read_json(_need(inputs.metrics / f"{uc}.json"))
    run = read_json(_need(inputs.models / uc / "run.json"))
    validation = read_json(_need(inputs.validation / f"{uc}.json"))
    evaluation = _need(inputs.plots / uc / "evaluation")
    summary = metrics["summary"]
    keys = [k for k in SENSOR_METRICS if any(v.get(k) is not None for v in summary.values())]
    parts = [
        f"<p>A {h.esc(params.sensor.model.variant)} {h.esc(params.sensor.model.architecture)} "
        "autoencoder over "
        f"windows of {params.sensor.windows.length} readings, trained on the normal training segment only, "
        "flags a reading when its reconstruction error exceeds a threshold set on normal validation data. "
        f"Series: {h.esc(', '.join(metrics['series']))}; injected faults: "
        f"{h.esc(', '.join(f'{k}: {v}' for k, v in metrics['events'].items()))}.</p>",
        h.table(
            ["method", *[SENSOR_METRICS[k] for k in keys]],
            [[m, *[v.get(k) for k in keys]] for m, v in summary.items()],
        ),
        "<h3>The threshold</h3>",
    ]
    for r in run["series"]:
        explanation = r.get("threshold_details", {}).get("explanation", "")
        parts.append(f"<p><b>{h.esc(r['series'])}</b>: {h.esc(explanation)}</p>")
    t = params.sensor.threshold
    parts.append(
        f"<p>Alarms: a flagged reading raises an alarm unless one was raised within the previous "
        f"{t.cooldown} readings (<code>sensor.threshold.cooldown</code>), so one fault pages once; NAB "
        "scores and the <i>alarms</i> column count alarms, the other metrics count flagged readings.</p>"
    )
    parts.append(
        '<p class="note">Change the rule with <code>sensor.threshold.method</code> (pot, percentile, '
        "mean_k_sigma, fixed) and its parameters; <code>smoothing</code> averages the error over the last "
        "readings first; <code>history</code> measures that average in standard deviations above the "
        "errors before it, for series that drift after training; <code>season</code> (e.g. 1D) counts "
        "only how far a score rises above the same time one season earlier, so what recurs daily alarms "
        "once. Lower thresholds catch more faults and "
        "raise more false alarms.</p>"
    )
    parts.append("<h3>Error over time</h3>")
    for f in sorted(evaluation.glob("*.png")):
        parts.append(h.img(f.read_bytes(), f.stem, f.stem.replace("_", " ")))
    sweep_file = inputs.metrics / f"{uc}_sweep.json"
    if sweep_file.is_file():
        parts.append(sweep_block(read_json(sweep_file), inputs.plots / uc / "sweep", "window values"))
    parts.append("<h3>Data validation</h3>" + _validation_table(validation))
    parts.append(
        "<h3>MLflow and serving</h3>"
        + h.table(
            ["what", "value"],
            [
                ("training run", mlflow_link(params, run["experiment_id"], run["run_id"])),
                ("registered detector", h.esc(f"{run['registered_model']} version {run['version']}")),
                (
                    "serve it",
                    f"<code>mlflow models serve -m {h.esc(run['model_uri'])} "
                    "--env-manager local -p 5001</code>",
                ),
                (
                    "monitor a stream",
                    f"<code>aeflow monitor --model {h.esc(run['model_uri'])} --input readings.csv</code>",
                ),
            ],
            raw_cells=True,
        )
    )
    return "".join(parts)


def _num(text: str | None) -> str:
    try:
        return h.fmt(float(text)) if text not in (None, "") else ""
    except ValueError:
        return h.esc(text)


def promotion_section(params: Params, uc: str) -> str:
    """The registered versions of the use case's model, their aliases and the gate's decisions.

    Read from the MLflow registry at render time (``aeflow retrain`` re-renders the report after its gate);
    a store that cannot be read leaves a note instead of failing the report.
    """
    from aeflow.tracking import registered_model_name
    from aeflow.tracking.promotion import history

    name = registered_model_name(params.tracking, uc)
    try:
        rows = history(params.tracking, name)
    except Exception as exc:  # the report must not depend on the tracking server being up
        return f"<h3>Promotion history</h3><p>MLflow registry not readable ({h.esc(type(exc).__name__)}).</p>"
    if not rows:
        return f"<h3>Promotion history</h3><p>No registered versions of <code>{h.esc(name)}</code> yet.</p>"
    gate = getattr(params.promotion, uc)
    better = "lower" if gate.mode == "min" else "higher"
    body = []
    for r in rows[:20]:
        g = r["gate"]
        run = mlflow_link(params, r["experiment_id"], r["run_id"]) if r.get("experiment_id") else "—"
        body.append(
            [
                h.esc(r["version"]),
                h.esc(r["created"]),
                h.esc(", ".join(r["aliases"]) or "—"),
                h.esc(g.get("decision", "—")),
                _num(g.get("challenger_score")),
                _num(g.get("champion_score"))
                + (f" (v{h.esc(g['champion_version'])})" if g.get("champion_version") else ""),
                h.esc(g.get("reason", "")),
                run,
            ]
        )
    return (
        f"<h3>Promotion history of <code>{h.esc(name)}</code></h3>"
        f"<p>Gate: <code>{h.esc(gate.metric)}</code> ({better} is better), margin {h.esc(gate.margin)} "
        f"({h.esc(gate.margin_type)}); <code>aeflow promote --use-case {uc}</code> "
        "or <code>aeflow retrain</code> decide, newest first.</p>"
        + h.table(
            ["version", "registered", "aliases", "decision", "challenger", "champion", "why", "run"],
            body,
            raw_cells=True,
        )
    )


SECTIONS = {
    "mnist": ("MNIST compression", mnist_full_section),
    "speech": ("Speech denoising", speech_section),
    "sensor": ("Sensor anomaly detection", sensor_section),
}


def run(use_cases: list[str], params: Params, inputs: ReportInputs, out: Path) -> None:
    """Write the report for ``use_cases`` to ``out``."""
    sections = []
    for uc in use_cases:
        if uc not in SECTIONS:
            raise DataError(f"no report section for use case {uc!r}; available: {', '.join(SECTIONS)}")
        title, build = SECTIONS[uc]
        sections.append((uc, title, build(params, inputs) + promotion_section(params, uc)))
    intro = (
        "<p>Generated by <code>dvc repro</code>. Open the runs with "
        f"<code>mlflow ui --backend-store-uri {h.esc(params.tracking.resolved_uri())} "
        "--host 127.0.0.1</code>."
        "</p>"
    )
    write_text(out, h.page("aeflow report", sections, intro))
