"""The ``speech`` use case: clean noisy speech with a spectrogram denoising autoencoder, against classical
baselines (spectral subtraction, spectral gating).

Modules: ``sources`` (espeak offline default, FSDD, folders), ``espeak``, ``audio`` (files in and out),
``validation`` (its suite), ``noise`` (noise generators and exact-SNR mixing), ``corrupt`` (inject_noise),
``spectrogram`` and ``features`` (featurize), ``train`` (its training plan), ``enhance`` (waveform in,
waveform out), ``metrics`` (SI-SDR, PESQ, STOI and the baselines), ``evaluate``, ``report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.usecases.base import UseCase

if TYPE_CHECKING:
    from aeflow.config import Params


class Speech(UseCase):
    name = "speech"
    title = "Speech denoising"
    headline = (
        "test.autoencoder.si_sdr_improvement",
        "test.autoencoder.pesq",
        "test.autoencoder.stoi",
        "test.noisy.pesq",
        "test.noisy.stoi",
        "ae_gain_over_best_classical_db",
    )
    has_features = True
    promotion_metric = "test/si_sdr_improvement"

    def ingest(self, params: Params, out: Path) -> dict[str, Any]:
        from aeflow.usecases.speech.sources import ingest_speech, write_corpus

        corpus = ingest_speech(params.speech.ingest, params.seed)
        write_corpus(corpus, out)
        return corpus.info

    def validation_suites(self, params: Params, data: Path) -> tuple[list[Any], dict[str, int]]:
        from aeflow.usecases.speech.sources import read_manifest
        from aeflow.usecases.speech.validation import speech_suites

        manifest = read_manifest(data)
        cfg = params.speech
        suites = speech_suites(manifest, str(data / "manifest.csv"), cfg.validate_, cfg.ingest.sample_rate)
        return suites, {name: int((manifest["split"] == name).sum()) for name in ("train", "val", "test")}

    def inject_noise(self, params: Params, data: Path, out: Path) -> dict[str, Any]:
        from aeflow.usecases.speech.corrupt import inject_noise

        return inject_noise(params, data, out)

    def featurize(self, params: Params, data: Path, noisy: Path, out: Path) -> dict[str, Any]:
        from aeflow.usecases.speech.features import make_spectrograms

        return make_spectrograms(params, data, noisy, out)

    def training_plan(self, params: Params, data: Path, inputs: Path) -> Any:
        from aeflow.usecases.speech.train import training_plan

        return training_plan(params, data, inputs)

    def evaluate(
        self, params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
    ) -> dict[str, Any]:
        from aeflow.usecases.speech.evaluate import evaluate

        return evaluate(params, data, noisy, models, results, plots)

    def report_section(self, params: Params, inputs: Any) -> str:
        from aeflow.usecases.speech.report import section

        return section(params, inputs)

    def promotion_score(self, params: Params, model_uri: str, root: Path) -> dict[str, float]:
        """Mean SI-SDR of the denoised test mixtures and its gain over the noisy input (PESQ/STOI are left
        to the evaluate stage: the gate needs one reliable number, fast)."""
        import numpy as np

        from aeflow.errors import DataError
        from aeflow.tracking import load_pytorch_model
        from aeflow.usecases.speech.audio import read_audio
        from aeflow.usecases.speech.corrupt import CleanClips, load_mixtures
        from aeflow.usecases.speech.enhance import SpeechDenoiser
        from aeflow.usecases.speech.metrics import si_sdr

        layout = self.layout(root)
        denoiser = SpeechDenoiser(load_pytorch_model(model_uri))
        clean = CleanClips(layout.raw)
        mixtures = load_mixtures(layout.noisy, "test")
        if not len(mixtures):
            raise DataError(f"{layout.noisy / 'mixtures.csv'}: no test mixtures to score on. Fix: dvc repro.")
        before, after = [], []
        for row in mixtures.itertuples():
            ref = clean[row.clean_id]
            mix = read_audio(layout.noisy / row.path)[0]
            before.append(si_sdr(ref, mix))
            after.append(si_sdr(ref, denoiser(mix)[: len(ref)]))
        return {
            "test/si_sdr": float(np.mean(after)),
            "test/si_sdr_improvement": float(np.mean(np.subtract(after, before))),
        }

    def landing_folder(self, params: Params) -> tuple[str, str | None]:
        i = params.speech.ingest
        return "speech.ingest.dir", i.dir if i.source == "dir" else None

    def input_shape(self, params: Params) -> list[int] | None:
        sp = params.speech.spectrogram
        bins = sp.n_mels if sp.scale == "mel" else sp.n_fft // 2 + 1
        return [1, bins, sp.patch_frames]


USE_CASE = Speech()
