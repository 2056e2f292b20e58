"""The speech section of the report: scores per input SNR against the noisy input and the classical
baselines, spectrograms and audio players, training curves and snapshots, validation."""

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

METHOD_LABELS = {
    "noisy": "noisy input",
    "autoencoder": "denoising autoencoder",
    "spectral_subtraction": "spectral subtraction",
    "spectral_gating": "spectral gating (noisereduce)",
}


def section(params: Params, inputs: ReportInputs) -> str:
    """Speech denoising: scores per input SNR against the noisy input and two classical baselines,
    spectrograms and audio players for example mixtures, training curves and snapshots, validation."""

    uc = "speech"
    metrics = read_json(inputs.scores(uc))
    run = read_json(need(inputs.models / uc / "run.json"))
    validation = read_json(need(inputs.validation / f"{uc}.json"))
    plots = inputs.plots / uc
    examples_dir = inputs.result(uc, "evaluation") / "examples"
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

    examples = read_json(need(examples_dir / "examples.json"))
    parts.append("<h3>Listen</h3><p>Spectrograms share one colour scale: noisy, denoised, clean.</p>")
    for ex in examples:
        parts.append(f"<h4>{h.esc(ex['id'])}: {h.esc(ex['source'])} at {ex['snr_db']:g} dB</h4>")
        figure = examples_dir / ex["figure"]
        parts.append(h.img(need(figure).read_bytes(), "spectrograms"))
        parts.append("<div>")
        for name in ("clean", *METHOD_LABELS):
            if name in ex["audio"]:
                wav = need(examples_dir / ex["audio"][name]).read_bytes()
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
    parts.append("<h3>Data validation</h3>" + validation_table(validation))
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
