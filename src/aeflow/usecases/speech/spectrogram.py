"""Waveform ⇄ spectrogram, the normalisation fitted on training data, and patches with frame context.

The denoising autoencoder never sees waveforms: it maps a patch of the noisy log-magnitude spectrogram
(``patch_frames`` consecutive frames, all frequency bins) to the matching clean patch, or to a log ratio
mask (see :class:`aeflow.config.SpectrogramParams`). The noisy phase is kept and reused to go back to a
waveform, which is why the round trip clean → spectrogram → waveform is (numerically) lossless with
``istft``: ``log(|X| + eps)`` is inverted exactly by ``exp(l) - eps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aeflow.usecases.speech.params import SpectrogramParams

EPS = 1e-5


class SpectrogramCodec:
    """STFT analysis/synthesis with the settings of ``params`` at ``rate`` Hz."""

    def __init__(self, params: SpectrogramParams, rate: int) -> None:
        self.p = params
        self.rate = rate
        win = torch.hann_window if params.window == "hann" else torch.hamming_window
        self.window = win(params.n_fft, periodic=True)
        self._mel: Any = None
        self._inverse_mel: Any = None
        if params.scale == "mel":
            import torchaudio.transforms as T

            self._mel = T.MelScale(n_mels=params.n_mels, sample_rate=rate, n_stft=params.n_fft // 2 + 1)
            self._inverse_mel = T.InverseMelScale(
                n_stft=params.n_fft // 2 + 1, n_mels=params.n_mels, sample_rate=rate, driver="gelsd"
            )

    @property
    def bins(self) -> int:
        """Rows of a feature matrix: mel bands, or STFT bins ``n_fft // 2 + 1``."""
        return self.p.n_mels if self.p.scale == "mel" else self.p.n_fft // 2 + 1

    def stft(self, x: np.ndarray) -> torch.Tensor:
        """Complex STFT of a 1-D signal, shape (bins, frames)."""
        return torch.stft(
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            self.p.n_fft,
            self.p.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        )

    def analyse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-magnitude features (bins, frames) and the STFT phase (STFT bins, frames)."""
        spec = self.stft(x)
        mag = spec.abs()
        if self._mel is not None:
            mag = self._mel(mag)
        return torch.log(mag + EPS).numpy(), torch.angle(spec).numpy()

    def magnitude(self, logmag: np.ndarray) -> torch.Tensor:
        """Linear STFT magnitude from log features (mel features are mapped back by least squares)."""
        mag = torch.clamp(torch.exp(torch.from_numpy(np.asarray(logmag, dtype=np.float32))) - EPS, min=0.0)
        if self._inverse_mel is not None:
            mag = self._inverse_mel(mag)
        return mag

    def synthesise(self, logmag: np.ndarray, phase: np.ndarray | None, length: int) -> np.ndarray:
        """Waveform of ``length`` samples from log features and a phase (``None`` or ``griffin_lim``:
        estimate the phase iteratively instead)."""
        mag = self.magnitude(logmag)
        if phase is None or self.p.inverse == "griffin_lim":
            import torchaudio.functional as AF

            wave = AF.griffinlim(
                mag,
                self.window,
                self.p.n_fft,
                self.p.hop_length,
                self.p.n_fft,
                1.0,
                self.p.griffin_lim_iters,
                0.99,
                length,
                True,
            )
            return wave.numpy().astype(np.float32)
        spec = torch.polar(mag, torch.from_numpy(np.asarray(phase, dtype=np.float32)))
        wave = torch.istft(
            spec, self.p.n_fft, self.p.hop_length, window=self.window, center=True, length=length
        )
        return wave.numpy().astype(np.float32)


@dataclass(frozen=True)
class FeatureStats:
    """Per-bin mean/std of noisy log features on the training split, and the scale of the mask target.

    Fitted on training mixtures only, so validation and test data never leak into the model's inputs.
    """

    mean: np.ndarray
    std: np.ndarray
    mask_scale: float

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "mask_scale": self.mask_scale}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureStats:
        return cls(
            np.asarray(data["mean"], dtype=np.float32),
            np.asarray(data["std"], dtype=np.float32),
            float(data["mask_scale"]),
        )


def noise_floor(noisy_log: np.ndarray, quantile: float) -> np.ndarray:
    """Per-bin log magnitude of the noise, from the quietest ``quantile`` of frames (no VAD needed)."""
    energy = np.exp(2 * noisy_log).sum(axis=0)
    k = max(1, round(quantile * noisy_log.shape[1]))
    quiet = np.argsort(energy)[:k]
    return (0.5 * np.log(np.exp(2 * noisy_log[:, quiet]).mean(axis=1) + EPS**2)).astype(np.float32)


def local_noise_floor(noisy_log: np.ndarray, quantile: float, half_width: int, step: int) -> np.ndarray:
    """Per-bin, per-frame noise floor (bins, frames) that only looks ``half_width`` frames either way.

    Why local: a floor taken over the whole recording needs the whole recording before the first frame
    can be cleaned, so neither a stream nor a file read in blocks could reproduce it, and it is wrong
    wherever the noise changes (a vacuum cleaner switched on half-way). Here the floor is fitted at anchor
    frames ``0, step, 2·step, …``, each from the quietest ``quantile`` of the frames within ``half_width``
    of it, and interpolated linearly between anchors. Frame ``t`` therefore depends on frames
    ``t − half_width − step … t + half_width + step`` only (:func:`floor_radius`), counted from the start
    of the signal; a clip shorter than the window gets :func:`noise_floor` at every frame.
    """
    bins, frames = noisy_log.shape
    if frames - 1 <= half_width:  # every anchor's window holds the whole clip
        return np.repeat(noise_floor(noisy_log, quantile)[:, None], frames, axis=1)
    power = np.exp(2 * noisy_log)
    energy = power.sum(axis=0)
    anchors = np.arange(0, frames, step)
    values = np.empty((bins, len(anchors)), dtype=np.float64)
    for i, a in enumerate(anchors):
        lo, hi = max(0, a - half_width), min(frames, a + half_width + 1)
        k = max(1, round(quantile * (hi - lo)))
        quiet = lo + np.argpartition(energy[lo:hi], k - 1)[:k]
        values[:, i] = 0.5 * np.log(power[:, np.sort(quiet)].mean(axis=1) + EPS**2)
    t = np.arange(frames)
    left = np.minimum(t // step, len(anchors) - 1)
    right = np.minimum(left + 1, len(anchors) - 1)
    frac = np.where(right > left, (t - anchors[left]) / step, 0.0)
    return (values[:, left] * (1 - frac) + values[:, right] * frac).astype(np.float32)


def floor_half_width(params: SpectrogramParams, rate: int) -> int | None:
    """Frames either side of a frame that its noise floor looks at (``None``: the whole recording)."""
    if params.input != "relative" or params.noise_window_s is None:
        return None
    return max(1, round(params.noise_window_s * rate / params.hop_length / 2))


def floor_radius(params: SpectrogramParams, rate: int) -> int:
    """Frames either side of a frame that its network input depends on through the noise floor."""
    half = floor_half_width(params, rate)
    return 0 if half is None else half + params.patch_hop


def network_view(noisy_log: np.ndarray, params: SpectrogramParams, rate: int) -> np.ndarray:
    """The features the network is fed before normalisation (relative to the noise floor, or absolute).

    The floor is the recording's (``noise_window_s: null``) or a local one over ``noise_window_s``
    seconds around each frame (:func:`local_noise_floor`; anchors every ``patch_hop`` frames).
    """
    if params.input != "relative":
        return noisy_log
    half = floor_half_width(params, rate)
    if half is None:
        return noisy_log - noise_floor(noisy_log, params.noise_quantile)[:, None]
    return noisy_log - local_noise_floor(noisy_log, params.noise_quantile, half, params.patch_hop)


def phase_projected(clean_log: np.ndarray, clean_phase: np.ndarray, noisy_phase: np.ndarray) -> np.ndarray:
    """Log of ``|S|·cos(θS − θY)``, the clean magnitude along the noisy phase (0 where it points away),
    in the ``log(· + EPS)`` units of :meth:`SpectrogramCodec.analyse`: a phase-sensitive mask target."""
    magnitude = np.maximum(np.exp(clean_log.astype(np.float64)) - EPS, 0.0)
    along = np.maximum(magnitude * np.cos(clean_phase - noisy_phase), 0.0)
    return np.log(along + EPS).astype(np.float32)


def mask_floor(floor_db: float | None) -> float:
    """The lowest log ratio (nepers of magnitude) a mask may take: ``floor_db`` dB, or ``-inf``."""
    return -np.inf if floor_db is None else float(floor_db) * np.log(10.0) / 20.0


def log_ratio_mask(noisy_log: np.ndarray, clean_log: np.ndarray, floor_db: float | None = None) -> np.ndarray:
    """Clean − noisy log magnitude, capped at 0 (a mask only attenuates) and at ``floor_db`` below."""
    return np.clip(clean_log - noisy_log, mask_floor(floor_db), 0.0)


def fit_stats(
    noisy: list[np.ndarray], clean: list[np.ndarray], params: SpectrogramParams, rate: int
) -> FeatureStats:
    """Fit :class:`FeatureStats` on training log features, each array (bins, frames), at ``rate`` Hz."""
    frames = np.concatenate([network_view(n, params, rate) for n in noisy], axis=1)
    mean = frames.mean(axis=1).astype(np.float32)
    std = np.maximum(frames.std(axis=1), 1e-3).astype(np.float32)
    ratio = np.concatenate(
        [log_ratio_mask(n, c, params.mask_floor_db) for n, c in zip(noisy, clean, strict=True)], axis=1
    )
    return FeatureStats(mean, std, float(max(ratio.std(), 1e-3)))


def model_input(
    noisy_log: np.ndarray, stats: FeatureStats, params: SpectrogramParams, rate: int
) -> np.ndarray:
    """Normalised noisy features of one utterance at ``rate`` Hz: what the network sees."""
    view = network_view(noisy_log, params, rate)
    return ((view - stats.mean[:, None]) / stats.std[:, None]).astype(np.float32)


def model_target(
    noisy_log: np.ndarray,
    clean_log: np.ndarray,
    stats: FeatureStats,
    target: str,
    mask_floor_db: float | None = None,
) -> np.ndarray:
    """What the network learns to output: a scaled log ratio mask (≤ 0, ≥ ``mask_floor_db``) or
    normalised clean features."""
    if target == "mask":
        return (log_ratio_mask(noisy_log, clean_log, mask_floor_db) / stats.mask_scale).astype(np.float32)
    return ((clean_log - stats.mean[:, None]) / stats.std[:, None]).astype(np.float32)


def estimate_from_output(
    noisy_log: np.ndarray,
    output: np.ndarray,
    stats: FeatureStats,
    target: str,
    mask_floor_db: float | None = None,
) -> np.ndarray:
    """Clean log features estimated from the network's output (inverse of :func:`model_target`).

    The mask is clipped to the same range as its training target, so an overshoot of the network can
    neither amplify a bin nor attenuate it more than the model was taught to.
    """
    if target == "mask":
        return noisy_log + np.clip(output * stats.mask_scale, mask_floor(mask_floor_db), 0.0)
    return output * stats.std[:, None] + stats.mean[:, None]


def loss_weights(noisy_log: np.ndarray, clean_log: np.ndarray, params: SpectrogramParams) -> np.ndarray:
    """Per-bin weights of the training loss for one utterance (bins, frames), mean 1.

    ``noisy_power`` weights each bin by its linear noisy power (``|Y|²``, to ``loss_weight_exponent``):
    a mask error in a bin costs the waveform roughly ``|Y|²`` times the squared error of the gain, so
    this makes the loss track the energy that SI-SDR measures. ``clean_power`` weights by ``|S|²`` (noise-
    only bins then hardly count). A bin with no energy gets weight 0; normalising per utterance keeps a
    loud and a quiet utterance equally important, as SI-SDR is scale-invariant.
    """
    if params.loss_weight == "uniform":
        return np.ones_like(noisy_log, dtype=np.float32)
    ref = noisy_log if params.loss_weight == "noisy_power" else clean_log
    magnitude = np.maximum(np.exp(ref.astype(np.float64)) - EPS, 0.0)
    weight = magnitude ** (2.0 * params.loss_weight_exponent)
    total = weight.mean()
    return (weight / total if total > 0 else np.ones_like(weight)).astype(np.float32)


def patch_starts(lengths: list[int] | np.ndarray, patch_frames: int, hop: int) -> np.ndarray:
    """Global start frames of every patch that lies inside one utterance (features concatenated in time).

    An utterance shorter than ``patch_frames`` yields no training patch (clips are ≥ 2 s by default, i.e.
    ~250 frames, so this only drops degenerate inputs).
    """
    starts: list[np.ndarray] = []
    offset = 0
    for n in lengths:
        if n >= patch_frames:
            local = np.arange(0, n - patch_frames + 1, hop)
            if local[-1] != n - patch_frames:
                local = np.append(local, n - patch_frames)
            starts.append(local + offset)
        offset += int(n)
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, dtype=np.int64)


def apply_patchwise(
    features: np.ndarray,
    predict: Any,
    patch_frames: int,
    hop: int,
    batch_size: int = 256,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """Run ``predict`` (batch of (1, bins, patch_frames) → same shape) over a whole utterance.

    Overlapping patch outputs are averaged with a Hann taper across time, so every frame is the blend of
    the patches that saw it with context on both sides; short inputs are edge-padded to one patch.
    ``span=(lo, hi)`` runs only the patches that touch frames ``lo … hi − 1`` (the frames outside are
    left at 0): a block of a long recording then costs the network its own frames plus one patch either
    side, and those frames come out exactly as in the whole-utterance call.
    """
    frames = features.shape[1]
    padded = features
    if frames < patch_frames:
        padded = np.pad(features, ((0, 0), (0, patch_frames - frames)), mode="edge")
    starts = patch_starts([padded.shape[1]], patch_frames, hop)
    if span is not None:
        starts = starts[(starts < span[1]) & (starts + patch_frames > span[0])]
    taper = np.hanning(patch_frames + 2)[1:-1].astype(np.float32)
    out = np.zeros_like(padded)
    weight = np.zeros(padded.shape[1], dtype=np.float32)
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        batch = np.stack([padded[:, s : s + patch_frames] for s in chunk])[:, None]
        pred = predict(batch)[:, 0]
        for s, p in zip(chunk, pred, strict=True):
            out[:, s : s + patch_frames] += p * taper
            weight[s : s + patch_frames] += taper
    return (out / np.maximum(weight, 1e-8))[:, :frames]
