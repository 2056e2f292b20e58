"""Speech quality metrics and classical denoising baselines, on float32 NumPy waveforms.

Metrics (higher is better for all):

* ``snr`` – signal-to-noise ratio of the estimate against the reference, in dB (torchmetrics).
* ``si_sdr`` – scale-invariant signal-to-distortion ratio (Le Roux et al. 2019), in dB: ignores a global
  gain, so a denoiser is not rewarded or punished for changing the level (torchmetrics).
* ``pesq`` – ITU-T P.862 perceptual quality, MOS-LQO scale about 1–4.5 (``pesq`` package); narrow-band
  at 8 kHz, wide-band at 16 kHz.
* ``stoi`` – short-time objective intelligibility, 0–1 (``pystoi``).

The baselines are what an autoencoder denoiser must beat to be worth training: Berouti-style power
spectral subtraction (:func:`spectral_subtraction`) and noisereduce's spectral gating
(:func:`spectral_gating`). Neither needs training data or a voice-activity detector.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aeflow.usecases.speech.audio import resample

#: Rates PESQ supports natively, with its mode for each.
PESQ_MODES = {8000: "nb", 16000: "wb"}


def _tensor(x: np.ndarray) -> torch.Tensor:
    """A float64 tensor: metrics in float64 so near-perfect estimates do not hit float32 round-off."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def _match_length(estimate: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``estimate`` to ``n`` samples (STFT round trips can be off by a few samples)."""
    estimate = np.asarray(estimate, dtype=np.float32)
    if len(estimate) >= n:
        return estimate[:n]
    return np.pad(estimate, (0, n - len(estimate)))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (zero-mean), via torchmetrics."""
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    return float(
        scale_invariant_signal_distortion_ratio(_tensor(estimate), _tensor(reference), zero_mean=True)
    )


def snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SNR in dB of ``estimate`` with ``estimate − reference`` as the noise, via torchmetrics."""
    from torchmetrics.functional.audio import signal_noise_ratio

    return float(signal_noise_ratio(_tensor(estimate), _tensor(reference)))


def pesq_score(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    """PESQ (MOS-LQO): narrow-band at 8 kHz, wide-band at 16 kHz, other rates resampled to 16 kHz first.

    Returns ``float('nan')`` when PESQ itself refuses the pair (``pesq.PesqError``, e.g.
    ``NoUtterancesError`` when it finds no speech in the reference, or a buffer too short): one
    unscorable clip should show up as a missing value in the averages, not abort a whole evaluation.
    """
    from pesq import PesqError, pesq

    reference = np.asarray(reference, dtype=np.float32)
    estimate = _match_length(estimate, len(reference))
    if rate not in PESQ_MODES:
        reference, estimate = resample(reference, rate, 16000), resample(estimate, rate, 16000)
        rate = 16000
    try:
        return float(pesq(rate, reference, estimate, PESQ_MODES[rate]))
    except PesqError:
        return math.nan


def stoi_score(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    """STOI (classic, not extended) via pystoi.

    pystoi resamples to 10 kHz internally and scores 384 ms segments, so clips shorter than about 2 s give
    meaningless values (it warns "Not enough STFT frames"); the speech clips here are at least 2 s long.
    """
    from pystoi import stoi

    reference = np.asarray(reference, dtype=np.float64)
    estimate = _match_length(estimate, len(reference)).astype(np.float64)
    return float(stoi(reference, estimate, rate, extended=False))


def score(
    reference: np.ndarray, estimate: np.ndarray, rate: int, *, pesq: bool = True, stoi: bool = True
) -> dict[str, float]:
    """Every metric of ``estimate`` against ``reference`` as a dict (``snr``, ``si_sdr``, ``pesq``, ``stoi``).

    PESQ and STOI are the slow ones (tens of ms per clip) and can be switched off for quick checks. An
    estimate of another length is trimmed or zero-padded to the reference's length first.
    """
    reference = np.asarray(reference, dtype=np.float32)
    estimate = _match_length(estimate, len(reference))
    out = {"snr": snr(reference, estimate), "si_sdr": si_sdr(reference, estimate)}
    if pesq:
        out["pesq"] = pesq_score(reference, estimate, rate)
    if stoi:
        out["stoi"] = stoi_score(reference, estimate, rate)
    return out


def spectral_subtraction(
    noisy: np.ndarray,
    rate: int,
    *,
    n_fft: int = 256,
    hop: int = 64,
    oversubtract: float = 1.5,
    floor: float = 0.05,
    noise_quantile: float = 0.1,
) -> np.ndarray:
    """Power spectral subtraction with over-subtraction and a spectral floor (Berouti et al. 1979).

    The noise power per frequency bin is the mean power of the quietest ``noise_quantile`` of frames (by
    total frame energy): speech is intermittent, so its quietest frames are mostly noise, and this needs
    neither a voice-activity detector nor leading silence. Then

        |S|² = max(|Y|² − α·N, β·|Y|²),    α = ``oversubtract``, β = ``floor``,

    i.e. the floor is on power and relative to the noisy bin, so each bin is attenuated by at most
    10·log10(β) dB (−13 dB for β = 0.05). A floor relative to the noisy power rather than to N keeps the
    residual noise shaped like the input, which sounds less "musical" than isolated surviving peaks.
    The noisy phase is kept; the result is the ISTFT at the input's length.

    Args:
        noisy: 1-D noisy waveform.
        rate: Sample rate (unused by the algorithm; kept so every baseline has the same signature).
        n_fft: FFT size (Hann window of the same length); 256 is 32 ms at 8 kHz.
        hop: Frame shift in samples.
        oversubtract: α ≥ 1 removes more than the average noise estimate, curbing residual peaks.
        floor: β in (0, 1], the least fraction of the noisy power any bin keeps.
        noise_quantile: Fraction of the lowest-energy frames that estimate the noise.
    """
    del rate
    x = np.asarray(noisy, dtype=np.float32)
    n = len(x)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(_tensor(x), n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    power = spec.abs().square()  # (bins, frames)
    energy = power.sum(dim=0)
    count = max(1, math.ceil(noise_quantile * energy.numel()))
    quiet = torch.argsort(energy)[:count]
    noise_power = power[:, quiet].mean(dim=1, keepdim=True)
    clean_power = torch.maximum(power - oversubtract * noise_power, floor * power)
    gain = torch.sqrt(clean_power / power.clamp_min(1e-20))
    out = torch.istft(spec * gain, n_fft, hop_length=hop, window=window, center=True, length=n)
    return out.numpy().astype(np.float32)


def spectral_gating(noisy: np.ndarray, rate: int, *, stationary: bool = False) -> np.ndarray:
    """noisereduce's spectral gating (non-stationary by default), run in-process without a progress bar.

    The non-stationary mode tracks the noise floor with a smoothed running estimate per bin, so it also
    follows slowly changing noise such as the appliance models. ``n_jobs=1`` and ``use_tqdm=False`` keep
    it from spawning worker processes or writing to the terminal inside a pipeline stage.
    """
    import noisereduce

    x = np.asarray(noisy, dtype=np.float32)
    out = noisereduce.reduce_noise(y=x, sr=rate, stationary=stationary, n_jobs=1, use_tqdm=False)
    return _match_length(np.asarray(out, dtype=np.float32), len(x))
