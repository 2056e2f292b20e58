"""Noise for speech: spectra of the generators, exact-SNR mixing, real recordings through NoiseBank."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from aeflow.errors import DataError
from aeflow.usecases.speech.audio import read_audio, write_wav
from aeflow.usecases.speech.noise import (
    NoiseBank,
    appliance_noise,
    colored_noise,
    file_noise,
    measured_snr_db,
    mix_at_snr,
    vary_noise,
)
from aeflow.usecases.speech.params import NOISE_KINDS

RATE = 8000


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))


def _slope_db_per_octave(x: np.ndarray, rate: int = RATE) -> float:
    """Least-squares slope of the Welch PSD (dB) against log2(frequency) over 100 Hz–3.5 kHz."""
    f, p = welch(x, fs=rate, nperseg=1024)
    band = (f >= 100) & (f <= 3500)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


@pytest.mark.parametrize(
    ("kind", "slope", "tol"), [("white", 0.0, 0.5), ("pink", -3.0, 0.7), ("brown", -6.0, 1.0)]
)
def test_colored_noise_slopes(kind: str, slope: float, tol: float):
    x = colored_noise(kind, 4 * RATE, np.random.default_rng(0))
    assert x.dtype == np.float32 and len(x) == 4 * RATE
    assert _rms(x) == pytest.approx(1.0, abs=1e-5)
    assert abs(float(np.mean(x))) < 1e-3  # DC bin zeroed
    assert _slope_db_per_octave(x) == pytest.approx(slope, abs=tol)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_generators_are_seeded(kind: str):
    bank = NoiseBank(RATE, None)
    a = bank.make(kind, RATE, np.random.default_rng(7))
    b = bank.make(kind, RATE, np.random.default_rng(7))
    c = bank.make(kind, RATE, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert _rms(a) == pytest.approx(1.0, abs=1e-5) and np.isfinite(a).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fan_has_strong_harmonic_peaks(seed: int):
    x = appliance_noise("fan", 4 * RATE, RATE, np.random.default_rng(seed))
    f, p = welch(x, fs=RATE, nperseg=8192)  # ~1 Hz resolution
    low = (f >= 40) & (f <= 130)
    f0 = float(f[low][np.argmax(p[low])])
    assert 45 - 2 <= f0 <= 120 + 2
    median = float(np.median(p))
    for k in (1, 2, 3):
        near = np.abs(f - k * f0) <= 3 * k
        peak_db = 10 * np.log10(float(p[near].max()) / median)
        assert peak_db > 10, f"harmonic {k} of {f0:.1f} Hz only {peak_db:.1f} dB above the median PSD"


def _share_above(x: np.ndarray, hz: float) -> float:
    f, p = welch(x, fs=RATE, nperseg=1024)
    return float(p[f > hz].sum() / p.sum())


def test_vacuum_has_more_high_frequency_energy_than_fan():
    for seed in range(4):
        fan = appliance_noise("fan", 2 * RATE, RATE, np.random.default_rng(seed))
        vacuum = appliance_noise("vacuum", 2 * RATE, RATE, np.random.default_rng(seed))
        assert _share_above(vacuum, 2000) > 0.3 > 0.05 > _share_above(fan, 2000)


def test_appliance_noise_at_16k_is_unit_rms():
    for kind in ("fan", "vacuum"):
        x = appliance_noise(kind, 16000, 16000, np.random.default_rng(0))
        assert x.dtype == np.float32 and _rms(x) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.shared_data
@pytest.mark.parametrize("source", [*NOISE_KINDS, "file:running_tap.wav"])
def test_mix_at_snr_is_exact(theo: np.ndarray, shared_datasets: Path, source: str):
    bank = NoiseBank(RATE, shared_datasets / "noise" / "speech_commands_background")
    noise = bank.make(source, len(theo), np.random.default_rng(3))
    for target in (-5.0, 0.0, 5.0, 10.0, 20.0):
        noisy, measured = mix_at_snr(theo, noise, target)
        assert noisy.dtype == np.float32 and noisy.shape == theo.shape
        assert measured == pytest.approx(target, abs=0.01)
        assert measured_snr_db(theo, noisy) == measured


def test_mix_at_snr_rejects_bad_input():
    x = np.ones(100, np.float32)
    with pytest.raises(ValueError, match="same shape"):
        mix_at_snr(x, np.ones(99, np.float32), 0.0)
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(x, np.zeros(100, np.float32), 0.0)
    assert measured_snr_db(x, x) == math.inf


def test_file_noise_loops_a_short_recording():
    noise = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    out = file_noise(noise, 3000, np.random.default_rng(1))
    assert len(out) == 3000 and _rms(out) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(out[:2000], out[1000:])  # periodic with the recording's length
    # One period is the recording rotated to the random offset, scaled by one gain.
    offsets = [k for k in range(1000) if np.allclose(out[:1000], np.roll(noise, -k) * (out[0] / noise[k]))]
    assert len(offsets) == 1


def test_file_noise_offsets_depend_on_the_seed():
    noise = np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    a = file_noise(noise, 8000, np.random.default_rng(1))
    b = file_noise(noise, 8000, np.random.default_rng(2))
    assert not np.allclose(a, b)
    assert np.array_equal(a, file_noise(noise, 8000, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="silent"):
        file_noise(np.zeros(500, np.float32), 100, np.random.default_rng(0))


def test_noise_bank_reads_files_once_and_resamples(tmp_path: Path):
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32) * 0.1
    write_wav(tmp_path / "hum.wav", tone, 16000)
    (tmp_path / "sub").mkdir()
    write_wav(tmp_path / "sub" / "other.wav", tone, 16000)
    bank = NoiseBank(RATE, tmp_path)
    out = bank.make("file:hum.wav", 3 * RATE, np.random.default_rng(0))
    assert len(out) == 3 * RATE and _rms(out) == pytest.approx(1.0, abs=1e-4)
    assert len(bank._cache["hum.wav"]) == RATE  # 1 s at 16 kHz → 8000 samples at 8 kHz
    (tmp_path / "hum.wav").unlink()  # cached: no second read
    assert len(bank.make("file:hum.wav", 100, np.random.default_rng(0))) == 100

    with pytest.raises(DataError) as err:
        bank.make("file:nope.wav", 100, np.random.default_rng(0))
    message = str(err.value)
    assert str(tmp_path / "nope.wav") in message
    assert "file:sub/other.wav" in message and "train_sources" in message

    with pytest.raises(DataError, match="noise_dir"):
        NoiseBank(RATE, None).make("file:hum.wav", 100, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown noise source"):
        bank.make("traffic", 100, np.random.default_rng(0))


def test_missing_noise_file_in_a_large_folder_names_the_closest(tmp_path: Path):
    """noise_dir at a whole collection: the message gives the likely files, not thousands of names."""
    tone = np.zeros(1600, np.float32)
    tone[::7] = 0.1
    for i in range(40):
        (tmp_path / "speech" / f"s{i:02d}").mkdir(parents=True)
        write_wav(tmp_path / "speech" / f"s{i:02d}" / f"clip_{i}.wav", tone, 16000)
    (tmp_path / "musan" / "free-sound").mkdir(parents=True)
    write_wav(tmp_path / "musan" / "free-sound" / "noise-0000.wav", tone, 16000)
    bank = NoiseBank(RATE, tmp_path)
    with pytest.raises(DataError) as err:  # the name relative to the wrong folder
        bank.make("file:free-sound/noise-0000.wav", 100, np.random.default_rng(0))
    message = str(err.value)
    assert "41 audio files" in message and "file:musan/free-sound/noise-0000.wav" in message
    assert message.count("file:") <= 13  # the source itself + at most 12 suggestions
    assert "train_sources" in message
    with pytest.raises(DataError, match="none with a name like it"):
        bank.make("file:zzzzzzzzzzzzzzzzzz.flac", 100, np.random.default_rng(0))


@pytest.mark.shared_data
def test_noise_bank_real_recording(shared_datasets: Path):
    folder = shared_datasets / "noise" / "speech_commands_background"
    bank = NoiseBank(RATE, folder)
    out = bank.make("file:running_tap.wav", 2 * RATE, np.random.default_rng(0))
    assert out.dtype == np.float32 and len(out) == 2 * RATE
    assert _rms(out) == pytest.approx(1.0, abs=1e-4)
    raw, raw_rate = read_audio(folder / "running_tap.wav")
    assert raw_rate == 16000
    assert len(bank._cache["running_tap.wav"]) == pytest.approx(len(raw) / 2, abs=1)
    # Running water is broadband: a real recording, not a tone, and not DC.
    f, p = welch(out, fs=RATE, nperseg=512)
    assert float(p[f > 1000].sum() / p.sum()) > 0.2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vary_noise_tilts_the_spectrum_by_the_drawn_slope(seed: int):
    """White noise comes out with the slope drawn first from the same generator (±6 dB/octave)."""
    white = colored_noise("white", 4 * RATE, np.random.default_rng(100 + seed))
    drawn = np.random.default_rng(seed).uniform(-6.0, 6.0)
    varied = vary_noise(white, RATE, np.random.default_rng(seed), 6.0, 0.0)
    assert _rms(varied) == pytest.approx(1.0, abs=1e-5) and varied.dtype == np.float32
    assert _slope_db_per_octave(varied) == pytest.approx(drawn, abs=0.6)


def test_vary_noise_level_wanders_and_off_draws_nothing():
    white = colored_noise("white", 8 * RATE, np.random.default_rng(0))
    quarter = RATE // 4

    def level_span_db(x: np.ndarray) -> float:
        levels = [10 * np.log10(np.mean(np.square(x[i : i + quarter]))) for i in range(0, len(x), quarter)]
        return max(levels) - min(levels)

    assert level_span_db(white) < 1.5
    assert 4.0 < level_span_db(vary_noise(white, RATE, np.random.default_rng(1), 0.0, 6.0)) < 13.0
    rng = np.random.default_rng(5)
    same = vary_noise(white, RATE, rng, 0.0, 0.0)
    assert same is white  # off: the recording itself, not even re-scaled
    assert rng.random() == np.random.default_rng(5).random()  # nothing drawn: default mixtures unchanged


def test_augmented_training_noise_leaves_the_test_mixtures_as_recorded(tmp_path: Path):
    """With tilt and wander on, train/val mixtures change and the test mixtures (the real, unseen noise
    the model is scored on) are byte-for-byte those of a run without them."""
    from aeflow.params import parse_params
    from aeflow.usecases.speech.corrupt import inject_noise
    from aeflow.usecases.speech.sources import Clip, SpeechCorpus, write_corpus

    t = np.arange(2 * RATE) / RATE
    clips = [
        Clip(
            f"{split}{i}",
            f"spk{split}",
            split,
            (0.1 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32),
            "tone",
        )
        for split in ("train", "val", "test")
        for i in range(2)
    ]
    write_corpus(SpeechCorpus(clips, RATE, {}), tmp_path / "raw")
    noise = {"train_sources": ["pink"], "test_sources": ["pink"], "mixtures_per_clip": 1}
    base = {"speech": {"ingest": {"sample_rate": RATE}, "noise": noise}}
    varied = {
        "speech": {
            "ingest": {"sample_rate": RATE},
            "noise": {**noise, "train_tilt_db_per_octave": 6.0, "train_level_wander_db": 6.0},
        }
    }
    plain_info = inject_noise(parse_params(base), tmp_path / "raw", tmp_path / "plain")
    varied_info = inject_noise(parse_params(varied), tmp_path / "raw", tmp_path / "varied")
    assert (plain_info["train_tilt_db_per_octave"], varied_info["train_tilt_db_per_octave"]) == (0.0, 6.0)
    for split, same in (("train", False), ("val", False), ("test", True)):
        for i in range(2):
            a = read_audio(next((tmp_path / "plain" / "audio" / split).glob(f"{split}{i}__*.wav")))[0]
            b = read_audio(next((tmp_path / "varied" / "audio" / split).glob(f"{split}{i}__*.wav")))[0]
            assert np.array_equal(a, b) == same, (split, i)
