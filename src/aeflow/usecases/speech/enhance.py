"""Speech enhancement with a trained spectrogram denoiser: waveform in, waveform out.

A :class:`SpeechDenoiser` bundles the model with the STFT settings and normalisation statistics it was
trained with (``model.data_config``, saved with the weights and inside the registered MLflow model), so the
same object serves the evaluate stage, the ``aeflow denoise`` command and anyone loading
``models:/<name>@champion``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aeflow.errors import DataError
from aeflow.usecases.speech.params import SpectrogramParams
from aeflow.usecases.speech.spectrogram import (
    FeatureStats,
    SpectrogramCodec,
    apply_patchwise,
    estimate_from_output,
    model_input,
)


class SpeechDenoiser:
    """Noisy waveform → clean estimate, at the model's sample rate."""

    def __init__(self, model: Any) -> None:
        cfg = getattr(model, "data_config", None)
        if not cfg or cfg.get("use_case") != "speech":
            raise DataError(
                "this model carries no speech front-end settings (data_config); it was not trained by the "
                "speech train stage. Fix: pass a model registered by `dvc repro` for the speech use case."
            )
        self.model = model.eval()
        self.rate = int(cfg["sample_rate"])
        self.spec = SpectrogramParams.model_validate(cfg["spectrogram"])
        self.stats = FeatureStats.from_json(cfg["stats"])
        self.codec = SpectrogramCodec(self.spec, self.rate)

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(batch)).cpu().numpy()

    def features(self, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noisy log features, the estimated clean log features and the noisy phase."""
        noisy_log, phase = self.codec.analyse(noisy)
        out = apply_patchwise(
            model_input(noisy_log, self.stats, self.spec),
            self._predict,
            self.spec.patch_frames,
            self.spec.patch_hop,
        )
        est = estimate_from_output(noisy_log, out, self.stats, self.spec.target, self.spec.mask_floor_db)
        return noisy_log, est, phase

    def __call__(self, noisy: np.ndarray) -> np.ndarray:
        """The denoised waveform, same length as ``noisy`` (noisy phase reused, or Griffin-Lim)."""
        _, est, phase = self.features(np.asarray(noisy, dtype=np.float32))
        return self.codec.synthesise(est, phase, len(noisy))
