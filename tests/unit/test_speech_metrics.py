"""Speech metrics and classical denoising baselines on real speech (FSDD speaker theo)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeflow.usecases.speech.audio import resample
from aeflow.usecases.speech.metrics import (
    pesq_score,
    score,
    si_sdr,
    snr,
    spectral_gating,
    spectral_subtraction,
    stoi_score,
)
from aeflow.usecases.speech.noise import colored_noise, mix_at_snr

RATE = 8000
pytestmark = pytest.mark.shared_data


def _noisy(clean: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    return mix_at_snr(clean, colored_noise("white", len(clean), np.random.default_rng(seed)), snr_db)[0]


def test_si_sdr_and_snr(theo: np.ndarray):
    assert si_sdr(theo, theo) > 50
    noisy = _noisy(theo, 10.0)
    assert si_sdr(theo, noisy) == pytest.approx(10.0, abs=0.2)
    assert snr(theo, noisy) == pytest.approx(10.0, abs=0.2)
    assert si_sdr(theo, 0.5 * noisy) == pytest.approx(si_sdr(theo, noisy), abs=1e-6)
    # Plain SNR counts the gain error as noise: error −0.5·x + 0.5·n has power 0.25·(1 + 0.1)·P_x.
    assert snr(theo, 0.5 * noisy) == pytest.approx(-10 * math.log10(0.275), abs=0.2)


def test_pesq_narrow_and_wide_band(theo: np.ndarray):
    assert pesq_score(theo, theo, RATE) >= 4.0
    assert pesq_score(theo, _noisy(theo, 0.0), RATE) <= 2.5
    wide = resample(theo, RATE, 16000)
    assert pesq_score(wide, wide, 16000) >= 4.0
    odd = resample(theo, RATE, 11025)  # resampled to 16 kHz inside
    assert pesq_score(odd, odd, 11025) >= 4.0
    assert math.isnan(pesq_score(np.zeros_like(theo), theo, RATE))  # no utterances → NaN


def test_stoi_is_monotone_in_snr(theo: np.ndarray):
    clean = stoi_score(theo, theo, RATE)
    at5 = stoi_score(theo, _noisy(theo, 5.0), RATE)
    at0 = stoi_score(theo, _noisy(theo, 0.0), RATE)
    assert clean > 0.99
    assert clean > at5 > at0


def test_score_keys_and_length_alignment(theo: np.ndarray):
    noisy = _noisy(theo, 5.0)
    quick = score(theo, noisy, RATE, pesq=False, stoi=False)
    assert set(quick) == {"snr", "si_sdr"}
    full = score(theo, noisy, RATE)
    assert set(full) == {"snr", "si_sdr", "pesq", "stoi"}
    assert full["snr"] == pytest.approx(5.0, abs=0.01)
    short = score(theo, noisy[:-50], RATE, pesq=False, stoi=False)
    padded = score(theo, np.pad(noisy[:-50], (0, 50)), RATE, pesq=False, stoi=False)
    assert short == padded
    long = score(theo, np.pad(noisy, (0, 50), constant_values=1.0), RATE, pesq=False, stoi=False)
    assert long == quick


@pytest.mark.parametrize("baseline", [spectral_subtraction, spectral_gating])
def test_baselines_improve_si_sdr_at_0_db(theo: np.ndarray, baseline):
    noisy = _noisy(theo, 0.0)
    out = baseline(noisy, RATE)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    gain = si_sdr(theo, out) - si_sdr(theo, noisy)
    assert gain > 1.0, f"{baseline.__name__} changed SI-SDR by {gain:+.2f} dB"
    odd = baseline(noisy[:-7], RATE)  # a length the hop does not divide
    assert odd.shape == (len(noisy) - 7,)


def test_spectral_subtraction_floor_bounds_attenuation(theo: np.ndarray):
    noisy = _noisy(theo, 0.0)
    # With α = 0 nothing is subtracted: the STFT round trip returns the input.
    assert np.allclose(spectral_subtraction(noisy, RATE, oversubtract=0.0), noisy, atol=1e-5)
    # With floor 1 every bin keeps its noisy power: again the input.
    assert np.allclose(spectral_subtraction(noisy, RATE, floor=1.0), noisy, atol=1e-5)
    heavy = spectral_subtraction(noisy, RATE, oversubtract=100.0, floor=0.01)
    ratio_db = 20 * np.log10(np.sqrt(np.mean(heavy**2)) / np.sqrt(np.mean(noisy**2)))
    assert -20.5 < ratio_db < -10  # bins cannot fall below 10·log10(0.01) = −20 dB
