"""Spectrogram front end: lossless round trip, normalisation, patches, and the inverse of the targets."""

from __future__ import annotations

import numpy as np
import pytest

from aeflow.config import SpectrogramParams
from aeflow.data.audio import resample, set_level
from aeflow.data.spectrogram import (
    SpectrogramCodec,
    apply_patchwise,
    estimate_from_output,
    fit_stats,
    model_input,
    model_target,
    noise_floor,
    patch_starts,
)
from aeflow.data.speech_noise import colored_noise, mix_at_snr
from aeflow.evaluation.speech import si_sdr

RATE = 8000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real synthesised speech (espeak-ng), 8 kHz, about 2.5 s."""
    from aeflow.data.espeak import synthesize

    x, rate = synthesize("The birch canoe slid on the smooth planks.", "en-us+m1")
    return set_level(resample(x, rate, RATE), -23.0)


@pytest.mark.parametrize(("n_fft", "hop"), [(256, 64), (512, 128), (400, 100)])
def test_round_trip_loses_less_than_a_tenth_of_a_db(speech: np.ndarray, n_fft: int, hop: int):
    codec = SpectrogramCodec(SpectrogramParams(n_fft=n_fft, hop_length=hop), RATE)
    logmag, phase = codec.analyse(speech)
    assert logmag.shape[0] == n_fft // 2 + 1
    back = codec.synthesise(logmag, phase, len(speech))
    assert len(back) == len(speech)
    assert si_sdr(speech, back) > 60.0
    noisy, _ = mix_at_snr(speech, colored_noise("pink", len(speech), np.random.default_rng(0)), 5.0)
    n_logmag, n_phase = codec.analyse(noisy)
    assert abs(si_sdr(speech, codec.synthesise(n_logmag, n_phase, len(noisy))) - si_sdr(speech, noisy)) < 0.1


def test_mel_and_griffin_lim_options_are_lossy_but_usable(speech: np.ndarray):
    mel = SpectrogramCodec(SpectrogramParams(scale="mel", target="magnitude", input="absolute"), RATE)
    logmel, phase = mel.analyse(speech)
    assert logmel.shape[0] == 64
    assert si_sdr(speech, mel.synthesise(logmel, phase, len(speech))) > 15.0
    gl = SpectrogramCodec(SpectrogramParams(inverse="griffin_lim", griffin_lim_iters=16), RATE)
    logmag, _ = gl.analyse(speech)
    back = gl.synthesise(logmag, None, len(speech))
    # Griffin-Lim invents a phase, so compare magnitudes, not samples.
    err = np.abs(gl.analyse(back)[0] - logmag)[logmag > np.percentile(logmag, 50)]
    assert np.median(err) < 0.5


def test_noise_floor_tracks_the_noise_level(speech: np.ndarray):
    codec = SpectrogramCodec(SpectrogramParams(), RATE)
    rng = np.random.default_rng(1)
    floors = []
    for snr in (0.0, 10.0, 20.0):
        noisy, _ = mix_at_snr(speech, colored_noise("white", len(speech), rng), snr)
        floors.append(float(noise_floor(codec.analyse(noisy)[0], 0.1).mean()))
    # 10 dB less noise power = log magnitude lower by ln(10)/2 ≈ 1.15 nepers.
    assert floors[0] - floors[1] == pytest.approx(np.log(10) / 2, abs=0.3)
    assert floors[1] > floors[2]


@pytest.mark.parametrize("target", ["mask", "magnitude"])
@pytest.mark.parametrize("view", ["relative", "absolute"])
def test_targets_invert_exactly(speech: np.ndarray, target: str, view: str):
    p = SpectrogramParams(target=target, input=view)
    codec = SpectrogramCodec(p, RATE)
    noisy, _ = mix_at_snr(speech, colored_noise("brown", len(speech), np.random.default_rng(2)), 0.0)
    n_log, c_log = codec.analyse(noisy)[0], codec.analyse(speech)[0]
    stats = fit_stats([n_log], [c_log], p)
    x = model_input(n_log, stats, p)
    assert abs(float(x.mean())) < 0.05 and float(x.std()) == pytest.approx(1.0, abs=0.05)
    y = model_target(n_log, c_log, stats, target)
    est = estimate_from_output(n_log, y, stats, target)
    expected = np.minimum(c_log, n_log) if target == "mask" else c_log
    np.testing.assert_allclose(est, expected, atol=1e-4)
    if target == "mask":
        assert (y <= 0).all()


def test_patches_stay_inside_utterances():
    lengths = [40, 10, 33]
    starts = patch_starts(lengths, 16, 4)
    bounds = np.cumsum([0, *lengths])
    for s in starts:
        utt = np.searchsorted(bounds, s, side="right") - 1
        assert s + 16 <= bounds[utt + 1]
    # The last frames of each long-enough utterance are covered; the 10-frame one yields nothing.
    assert 40 - 16 in starts and 50 + 33 - 16 in starts
    assert not any(40 <= s < 50 for s in starts)


def test_apply_patchwise_is_exact_for_the_identity_and_pads_short_inputs():
    x = np.random.default_rng(0).normal(size=(129, 70)).astype(np.float32)
    np.testing.assert_allclose(apply_patchwise(x, lambda b: b, 16, 4), x, atol=1e-5)
    short = x[:, :5]
    np.testing.assert_allclose(apply_patchwise(short, lambda b: b, 16, 4), short, atol=1e-5)
    doubled = apply_patchwise(x, lambda b: 2 * b, 16, 3)
    np.testing.assert_allclose(doubled, 2 * x, atol=1e-4)


def test_params_reject_inconsistent_options():
    with pytest.raises(ValueError, match="mel"):
        SpectrogramParams(scale="mel", target="mask", input="absolute")
    with pytest.raises(ValueError, match="hop_length"):
        SpectrogramParams(n_fft=128, hop_length=256)
