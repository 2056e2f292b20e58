"""Spectrogram front end: lossless round trip, normalisation, patches, and the inverse of the targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeflow.data.datamodules import PatchDataset
from aeflow.usecases.speech.audio import resample, set_level
from aeflow.usecases.speech.metrics import si_sdr
from aeflow.usecases.speech.noise import colored_noise, mix_at_snr
from aeflow.usecases.speech.params import SpectrogramParams
from aeflow.usecases.speech.spectrogram import (
    EPS,
    FeatureStats,
    SpectrogramCodec,
    apply_patchwise,
    estimate_from_output,
    fit_stats,
    loss_weights,
    model_input,
    model_target,
    noise_floor,
    patch_starts,
    phase_projected,
)
from aeflow.usecases.speech.train import CompressedMagnitudeLoss, training_loss

RATE = 8000
#: A tiny mask network over 9 bins × 8 frames, for tests of the training step.
TINY_MASK_NET = {
    "variant": "denoising",
    "architecture": "conv",
    "latent_dim": 8,
    "channels": [4],
    "blocks_per_stage": 0,
    "hidden_dims": [],
    "loss": "mse",
}


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real synthesised speech (espeak-ng), 8 kHz, about 2.5 s."""
    from aeflow.usecases.speech.espeak import synthesize

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
    stats = fit_stats([n_log], [c_log], p, RATE)
    x = model_input(n_log, stats, p, RATE)
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


# ------------------------------------------------------------------ energy-weighted loss and mask floor
def _logmag(magnitude: list[list[float]]) -> np.ndarray:
    """Log features as :meth:`SpectrogramCodec.analyse` makes them from linear magnitudes."""
    return np.log(np.asarray(magnitude, dtype=np.float32) + EPS)


def test_loss_weights_follow_linear_power_and_ignore_silent_bins():
    noisy = _logmag([[1.0, 3.0], [0.0, 2.0]])
    clean = _logmag([[0.0, 2.0], [0.0, 1.0]])
    uniform = loss_weights(noisy, clean, SpectrogramParams())
    np.testing.assert_array_equal(uniform, np.ones((2, 2), dtype=np.float32))
    # |Y|² = [[1, 9], [0, 4]], mean 3.5.
    power = loss_weights(noisy, clean, SpectrogramParams(loss_weight="noisy_power"))
    np.testing.assert_allclose(power, [[1 / 3.5, 9 / 3.5], [0.0, 4 / 3.5]], rtol=1e-4, atol=1e-9)
    assert power[1, 0] < 1e-9 and power.mean() == pytest.approx(1.0)
    # Exponent 0.5: magnitude weighting, |Y| = [[1, 3], [0, 2]], mean 1.5.
    mag = loss_weights(noisy, clean, SpectrogramParams(loss_weight="noisy_power", loss_weight_exponent=0.5))
    np.testing.assert_allclose(mag, [[2 / 3, 2.0], [0.0, 4 / 3]], rtol=1e-4, atol=1e-9)
    # |S|² = [[0, 4], [0, 1]], mean 1.25: bins with no speech count for nothing.
    speech_only = loss_weights(noisy, clean, SpectrogramParams(loss_weight="clean_power"))
    np.testing.assert_allclose(speech_only, [[0.0, 3.2], [0.0, 0.8]], rtol=1e-4, atol=1e-9)


def test_weighted_mse_matches_the_hand_computed_value_and_skips_zero_weights():
    from aeflow.models.base import weighted_mse

    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.zeros(2, 2)
    weight = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    # (1·1 + 0·4 + 2·9 + 1·16) / (1 + 0 + 2 + 1) = 35 / 4
    assert float(weighted_mse(pred, target, weight)) == pytest.approx(8.75)
    moved = pred.clone()
    moved[0, 1] = 100.0  # the zero-weight element may be anything
    assert float(weighted_mse(moved, target, weight)) == pytest.approx(8.75)
    assert float(weighted_mse(pred, target, torch.ones(2, 2))) == pytest.approx(7.5)  # plain MSE


def test_model_step_uses_the_weights_a_batch_carries():
    from aeflow.models.base import weighted_mse
    from aeflow.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(TINY_MASK_NET, [1, 9, 8], output="identity").eval()
    x, target = torch.randn(3, 1, 9, 8), torch.randn(3, 1, 9, 8)
    weight = torch.rand(3, 1, 9, 8)
    weight[:, :, :4] = 0.0
    with torch.no_grad():
        pred = model(x)
        loss, logs = model.model_step((x, target, weight))
        plain, _ = model.model_step((x, target))
    assert float(logs["recon"]) == pytest.approx(float(weighted_mse(pred, target, weight)), rel=1e-5)
    assert float(plain) == pytest.approx(float(((pred - target) ** 2).mean()), rel=1e-5)
    # Only the weighted bins matter: a different target where the weight is 0 leaves the loss alone.
    other = target.clone()
    other[:, :, :4] += 10.0
    with torch.no_grad():
        assert float(model.model_step((x, other, weight))[0]) == pytest.approx(float(loss), rel=1e-5)


def test_patch_dataset_serves_weights_beside_the_target():
    feats = np.arange(3 * 20, dtype=np.float32).reshape(3, 20)
    ds = PatchDataset(feats, -feats, np.array([0, 4]), 8, weights=2 * feats)
    x, y, w = ds[1]
    assert x.shape == y.shape == w.shape == (1, 3, 8)
    np.testing.assert_array_equal(w.numpy(), 2 * x.numpy())
    assert len(PatchDataset(feats, -feats, np.array([0]), 8)[0]) == 2
    with pytest.raises(ValueError, match="weights"):
        PatchDataset(feats, -feats, np.array([0]), 8, weights=feats[:, :10])


def test_mask_floor_bounds_target_and_estimate():
    noisy = np.array([[0.0, 0.0, 0.0]], dtype=np.float32)
    clean = np.array([[-5.0, -1.0, 0.5]], dtype=np.float32)  # −43 dB, −8.7 dB, +4.3 dB
    stats = FeatureStats(np.zeros(1, np.float32), np.ones(1, np.float32), mask_scale=2.0)
    floor = -np.log(10.0)  # −20 dB of magnitude = ln(0.1) nepers
    y = model_target(noisy, clean, stats, "mask", mask_floor_db=-20.0)
    np.testing.assert_allclose(y, [[floor / 2, -0.5, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(model_target(noisy, clean, stats, "mask"), [[-2.5, -0.5, 0.0]])
    est = estimate_from_output(noisy, np.array([[-10.0, -0.5, 3.0]]), stats, "mask", mask_floor_db=-20.0)
    np.testing.assert_allclose(est, [[floor, -1.0, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="mask_floor_db"):
        SpectrogramParams(target="magnitude", mask_floor_db=-20.0)


def test_a_weighted_loss_with_a_non_mse_loss_is_refused_in_params():
    from aeflow.usecases.speech.params import SpeechParams

    with pytest.raises(ValueError, match=r"model\.loss is 'bce'"):
        SpeechParams.model_validate({"spectrogram": {"loss_weight": "noisy_power"}, "model": {"loss": "bce"}})
    assert SpeechParams.model_validate({"spectrogram": {"loss_weight": "uniform"}, "model": {"loss": "bce"}})


# ------------------------------------------------------------------ compressed-magnitude loss
def test_compressed_loss_is_the_error_of_compressed_magnitudes(speech: np.ndarray):
    """On a real mixture: the loss computed from the network's units equals Σ(|Ŝ|^c − |S̃|^c)² / Σ|Y|^2c
    computed from linear magnitudes, for the params' c and the stats' mask scale."""
    p = SpectrogramParams(
        loss="compressed_magnitude", loss_weight="noisy_power", loss_weight_exponent=0.3, mask_floor_db=-30.0
    )
    codec = SpectrogramCodec(p, RATE)
    noisy, _ = mix_at_snr(speech, colored_noise("pink", len(speech), np.random.default_rng(0)), 5.0)
    noisy_log = codec.analyse(noisy)[0]
    clean_log = codec.analyse(speech)[0]
    stats = fit_stats([noisy_log], [clean_log], p, RATE)
    target = model_target(noisy_log, clean_log, stats, "mask", p.mask_floor_db)
    output = target + np.random.default_rng(1).normal(0, 0.3, target.shape).astype(np.float32)
    weight = loss_weights(noisy_log, clean_log, p)
    loss = training_loss(p, stats)
    assert isinstance(loss, CompressedMagnitudeLoss)
    got = float(loss(torch.from_numpy(output), torch.from_numpy(target), torch.from_numpy(weight)))

    noisy_mag = np.maximum(np.exp(noisy_log.astype(np.float64)) - EPS, 0.0)
    est = noisy_mag * np.exp(output * stats.mask_scale)  # |Ŝ| = |Y|·exp(m̂), the mask unclipped
    reach = noisy_mag * np.exp(target * stats.mask_scale)  # the clean magnitude a bounded mask reaches
    c = 0.3
    want = ((est**c - reach**c) ** 2).sum() / (noisy_mag ** (2 * c)).sum()
    assert got == pytest.approx(want, rel=1e-3)
    assert float(loss(torch.from_numpy(target), torch.from_numpy(target), torch.from_numpy(weight))) == 0.0
    # An over-suppressed bin costs by how loud it is after compression, not by its log error.
    assert training_loss(SpectrogramParams(), stats) is None


def test_compressed_loss_options_are_checked_and_the_model_step_uses_the_data_loss():
    from aeflow.models.registry import build_model

    with pytest.raises(ValueError, match="loss_weight 'noisy_power'"):
        SpectrogramParams(loss="compressed_magnitude", loss_weight="clean_power")
    with pytest.raises(ValueError, match="target 'mask'"):
        SpectrogramParams(loss="compressed_magnitude", loss_weight="noisy_power", target="magnitude")
    torch.manual_seed(0)
    model = build_model(TINY_MASK_NET, [1, 9, 8], output="identity").eval()
    x, target, weight = torch.randn(3, 1, 9, 8), -torch.rand(3, 1, 9, 8), torch.rand(3, 1, 9, 8)
    with torch.no_grad():
        pred = model(x)
        plain = float(model.model_step((x, target, weight))[0])
        model.data_loss = CompressedMagnitudeLoss(0.6)
        compressed = float(model.model_step((x, target, weight))[0])
    want = float((weight * (torch.exp(0.6 * pred) - torch.exp(0.6 * target)) ** 2).sum() / weight.sum())
    assert compressed == pytest.approx(want, rel=1e-5)
    assert compressed != pytest.approx(plain, rel=1e-2)
    with pytest.raises(ValueError, match="noisy_power weights"):
        model.model_step((x, target))


# ------------------------------------------------------------------ phase-sensitive mask target
def test_phase_sensitive_target_gets_closer_to_the_clean_waveform(speech: np.ndarray):
    """Oracle masks on a real 0 dB mixture, applied with the noisy phase as at inference: aiming at
    |S|·cos(θS − θY) beats aiming at |S| in SI-SDR, since |S| puts energy back along a phase the noise
    turned; the projection never exceeds |S| and is 0 (the mask floor) where it points away."""
    p = SpectrogramParams(mask_floor_db=-30.0)
    codec = SpectrogramCodec(p, RATE)
    noisy, _ = mix_at_snr(speech, colored_noise("white", len(speech), np.random.default_rng(3)), 0.0)
    noisy_log, noisy_phase = codec.analyse(noisy)
    clean_log, clean_phase = codec.analyse(speech)
    projected = phase_projected(clean_log, clean_phase, noisy_phase)
    assert np.all(projected <= clean_log + 1e-5)
    away = np.cos(clean_phase - noisy_phase) <= 0
    assert away.mean() > 0.1 and np.allclose(projected[away], np.log(EPS))
    stats = FeatureStats(np.zeros(codec.bins, np.float32), np.ones(codec.bins, np.float32), 1.0)

    def oracle(target_log: np.ndarray) -> float:
        out = model_target(noisy_log, target_log, stats, "mask", p.mask_floor_db)
        est = estimate_from_output(noisy_log, out, stats, "mask", p.mask_floor_db)
        return si_sdr(codec.synthesise(est, noisy_phase, len(noisy)), speech)

    plain, sensitive = oracle(clean_log), oracle(projected)
    assert sensitive > plain + 1.0, (plain, sensitive)
    with pytest.raises(ValueError, match="phase_sensitive needs target 'mask'"):
        SpectrogramParams(phase_sensitive=True, target="magnitude")
