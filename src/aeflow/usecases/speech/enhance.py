"""Speech enhancement with a trained spectrogram denoiser: waveform in, waveform out.

A :class:`SpeechDenoiser` bundles the model with the STFT settings and normalisation statistics it was
trained with (``model.data_config``, saved with the weights and inside the registered MLflow model), so the
same object serves the evaluate stage, the ``aeflow denoise`` command and anyone loading
``models:/<name>@champion``.

A :class:`RecordingDenoiser` wraps it for a recording at any rate: resample to the model's rate, clean,
resample back, and keep the band above the model's Nyquist frequency (a 48 kHz file keeps its 8–24 kHz
band, attenuated frame by frame as the model attenuates its own top band). :func:`denoise_blocks` runs it
over a recording that arrives in pieces (a file read in blocks, or stdin) with constant memory and a
bounded delay, and gives the same samples as cleaning the whole recording at once: every step (sinc
resampling, the STFT, the local noise floor, the patches, the inverse STFT) only looks a bounded number of
samples either way, so a block cleaned with that much context on both sides comes out as it would inside
the whole recording.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from aeflow.errors import DataError
from aeflow.usecases.speech.audio import resample
from aeflow.usecases.speech.params import SpectrogramParams
from aeflow.usecases.speech.spectrogram import (
    EPS,
    FeatureStats,
    SpectrogramCodec,
    apply_patchwise,
    estimate_from_output,
    floor_radius,
    model_input,
)

#: Fraction of the model's band, counted from its Nyquist frequency down, whose gain is applied to the
#: band above it (for a 16 kHz model: 6–8 kHz steers 8 kHz and up).
TOP_BAND = 0.25
#: Samples at the model's rate a block needs beyond the network's own context for the two sinc
#: resamplings (torchaudio's kernel spans < 40 samples at the lower rate of any pair used here).
RESAMPLE_GUARD = 64


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

    @property
    def local(self) -> str | None:
        """Why this model cannot clean a recording block by block (``None``: it can)."""
        if self.spec.input == "relative" and self.spec.noise_window_s is None:
            return (
                "its noise floor is taken over the whole recording (spectrogram.noise_window_s: null), "
                "so no frame can be cleaned before the recording has ended"
            )
        if self.spec.inverse == "griffin_lim":
            return "it rebuilds the phase with Griffin-Lim, iterating over the whole recording"
        return None

    @property
    def context(self) -> int:
        """Samples (model rate) either side that a sample's output depends on: noise floor, patch, STFT."""
        p = self.spec
        frames = floor_radius(p, self.rate) + p.patch_frames + math.ceil(p.n_fft / p.hop_length) + 2
        return frames * p.hop_length

    @property
    def grid(self) -> int:
        """Block starts (model rate) must fall on multiples of this, so frames, noise-floor anchors (every
        ``patch_hop`` frames) and patches (every ``cleaning_hop``) line up."""
        return self.spec.hop_length * math.lcm(self.spec.patch_hop, self.spec.cleaning_hop)

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(batch)).cpu().numpy()

    def features(
        self, noisy: np.ndarray, span: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noisy log features, the estimated clean log features and the noisy phase.

        ``span=(a, b)``: only samples ``a … b − 1`` are wanted, so the network runs only on the patches
        whose frames touch them (frames elsewhere keep the noisy features).
        """
        noisy_log, phase = self.codec.analyse(noisy)
        frames = None
        if span is not None:
            half, hop = self.spec.n_fft // 2, self.spec.hop_length
            frames = (max(0, (span[0] - half) // hop), (span[1] + half) // hop + 1)
        out = apply_patchwise(
            model_input(noisy_log, self.stats, self.spec, self.rate),
            self._predict,
            self.spec.patch_frames,
            self.spec.cleaning_hop,
            span=frames,
        )
        est = estimate_from_output(noisy_log, out, self.stats, self.spec.target, self.spec.mask_floor_db)
        if frames is not None:  # outside the span: pass the noisy features through, never garbage
            keep = np.zeros(noisy_log.shape[1], dtype=bool)
            keep[frames[0] : frames[1]] = True
            est = np.where(keep[None, :], est, noisy_log)
        return noisy_log, est, phase

    def denoise(
        self, noisy: np.ndarray, span: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The denoised waveform (same length) and each frame's gain on the model's top band.

        The gain is the amplitude ratio ``sqrt(Σ|Ŝ|² / Σ|Y|²)`` over the top :data:`TOP_BAND` of the
        bins, capped at 1: what :class:`RecordingDenoiser` applies to the band above the model's rate.
        """
        noisy = np.asarray(noisy, dtype=np.float32)
        noisy_log, est, phase = self.features(noisy, span)
        wave = self.codec.synthesise(est, phase, len(noisy))
        if self.spec.scale == "mel":  # mel features: gains per STFT bin are not at hand; keep the band as is
            return wave, np.ones(noisy_log.shape[1], dtype=np.float32)
        top = slice(round(noisy_log.shape[0] * (1 - TOP_BAND)), None)
        est_power = (np.maximum(np.exp(est[top].astype(np.float64)) - EPS, 0) ** 2).sum(axis=0)
        noisy_power = (np.maximum(np.exp(noisy_log[top].astype(np.float64)) - EPS, 0) ** 2).sum(axis=0)
        gain = np.sqrt(np.minimum(est_power / np.maximum(noisy_power, 1e-30), 1.0))
        return wave, gain.astype(np.float32)

    def __call__(self, noisy: np.ndarray) -> np.ndarray:
        """The denoised waveform, same length as ``noisy`` (noisy phase reused, or Griffin-Lim)."""
        _, est, phase = self.features(np.asarray(noisy, dtype=np.float32))
        return self.codec.synthesise(est, phase, len(noisy))


class RecordingDenoiser:
    """A recording at any rate → cleaned, at its own rate (``keep_rate``) or the model's.

    At its own rate, a recording sampled faster than the model keeps its band above the model's Nyquist
    frequency: that band is the input minus the input band-limited to the model's rate, multiplied by the
    model's gain on its own top band, frame by frame (sibilants and breath above 8 kHz follow the 6–8 kHz
    speech they belong to; broadband noise there is attenuated as it is just below). Samples are limited
    to full scale ([-1, 1]) rather than normalised by the peak, which would need the whole recording.
    """

    def __init__(self, denoiser: SpeechDenoiser, rate: int, keep_rate: bool = True) -> None:
        self.denoiser = denoiser
        self.rate = int(rate)
        self.out_rate = self.rate if keep_rate else denoiser.rate
        g = math.gcd(self.rate, denoiser.rate)
        self._up, self._down = self.rate // g, denoiser.rate // g  # input samples : model samples
        grid = math.lcm(denoiser.grid, self._down)  # model samples
        self.grid = grid * self._up // self._down  # input samples
        context = denoiser.context + RESAMPLE_GUARD
        self.context = math.ceil(context * self._up / self._down / self.grid) * self.grid

    def __call__(self, x: np.ndarray, keep: tuple[int, int] | None = None) -> np.ndarray:
        """Clean ``x`` (at ``rate``); ``keep=(a, b)``: only input samples ``a … b − 1`` are wanted (the
        output is computed in full length, and exact only there)."""
        x = np.asarray(x, dtype=np.float32)
        m = self.denoiser.rate
        low = resample(x, self.rate, m)
        span = None
        if keep is not None:
            a = keep[0] * self._down // self._up - RESAMPLE_GUARD
            b = -(-keep[1] * self._down // self._up) + RESAMPLE_GUARD
            span = (max(0, a), min(len(low), b))
        clean, gain = self.denoiser.denoise(low, span)
        if self.out_rate == m:
            return np.clip(clean, -1.0, 1.0)
        out = _fit(resample(clean, m, self.rate), len(x))
        if self.rate > m:
            high = x - _fit(resample(low, m, self.rate), len(x))
            centres = np.arange(len(gain)) * self.denoiser.spec.hop_length * self.rate / m
            out = out + np.interp(np.arange(len(x)), centres, gain).astype(np.float32) * high
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def out_index(self, i: int) -> int:
        """Output sample index of input sample ``i`` (``i`` on the block grid, or the end)."""
        return i if self.out_rate == self.rate else -(-i * self._down // self._up)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples (resampling there and back may be a sample short)."""
    return np.pad(x[:n], (0, max(0, n - len(x))))


def denoise_blocks(
    recording: RecordingDenoiser, pieces: Iterable[np.ndarray], block_s: float
) -> Iterator[np.ndarray]:
    """Clean a recording that arrives in ``pieces`` (any sizes), yielding the output as it is ready.

    Blocks of about ``block_s`` seconds are cleaned with ``recording.context`` samples of the recording
    on either side, so memory stays at a block plus twice the context, the delay is a block plus the
    context, and the samples equal ``recording(whole)`` (to float rounding).

    Raises:
        DataError: the model cannot be run block by block (:attr:`SpeechDenoiser.local`).
    """
    why = recording.denoiser.local
    if why:
        raise DataError(
            f"this model cannot clean a recording block by block: {why}. Fix: retrain with "
            "speech.spectrogram.noise_window_s set (e.g. 4.0) and inverse: istft, or clean a file whole."
        )
    grid, context = recording.grid, recording.context
    block = max(1, round(block_s * recording.rate / grid)) * grid
    buffer = np.zeros(0, dtype=np.float32)
    start = 0  # recording index of buffer[0]
    done = 0  # recording index of the next sample to clean
    for piece in pieces:
        buffer = np.concatenate([buffer, np.asarray(piece, dtype=np.float32)])
        while start + len(buffer) >= done + block + context:
            yield _block(recording, buffer, start, done, done + block, done + block + context)
            done += block
            drop = max(0, done - context) - start
            buffer, start = buffer[drop:], start + drop
    end = start + len(buffer)
    if end > done:
        yield _block(recording, buffer, start, done, end, end)


def _block(
    recording: RecordingDenoiser, buffer: np.ndarray, start: int, a: int, b: int, c: int
) -> np.ndarray:
    """Output for recording samples ``a … b − 1``, cleaned from ``buffer`` (``start`` = its first
    index) between ``a − context`` and ``c``."""
    e0 = max(start, a - recording.context)
    y = recording(buffer[e0 - start : c - start], keep=(a - e0, b - e0))
    base = recording.out_index(e0)
    last = recording.out_index(b) if b < c else len(y) + base
    return y[recording.out_index(a) - base : last - base]
