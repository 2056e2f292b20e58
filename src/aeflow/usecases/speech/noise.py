"""Noise for speech: seeded generators and exact-SNR mixing on float32 NumPy arrays.

The speech denoiser is trained on (noisy, clean) pairs, so the noise has to be varied enough that the model
cannot memorise one spectrum, and reproducible so the same seed gives the same mixtures. Every generator
takes an explicit ``numpy.random.Generator`` and returns unit-RMS noise: the level is set only once, by
:func:`mix_at_snr`, which makes the SNR the single knob of difficulty.

Sources (the names ``speech.noise.train_sources``/``test_sources`` accept, see
:class:`aeflow.config.SpeechNoiseParams`):

* ``white``, ``pink``, ``brown``: Gaussian noise with power ∝ 1, 1/f, 1/f² (0, −3, −6 dB per octave).
* ``fan``, ``vacuum``: synthetic appliance noise (motor harmonics + broadband airflow), see
  :func:`appliance_noise`.
* ``file:<name>``: a real recording under ``noise_dir``, read from a random offset and looped when short.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import numpy as np

from aeflow.errors import DataError
from aeflow.usecases.speech.audio import AUDIO_SUFFIXES, load_clip, rms_dbfs

COLORED_KINDS = ("white", "pink", "brown")
APPLIANCE_KINDS = ("fan", "vacuum")
#: Power-spectrum exponent per colour: PSD ∝ 1 / f**exponent.
_COLOR_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: Harmonics are kept below this fraction of the sample rate, so they stay clear of Nyquist even with jitter.
_MAX_HARMONIC_FRACTION = 0.45


def _unit_rms(x: np.ndarray) -> np.ndarray:
    """Scale to RMS 1 in float64, then cast: one place that defines "unit RMS" for every source."""
    x = np.asarray(x, dtype=np.float64)
    rms = math.sqrt(float(np.mean(np.square(x)))) if len(x) else 0.0
    if rms == 0.0:
        raise ValueError("the noise is silent (all samples are zero), so it cannot be scaled to unit RMS")
    return (x / rms).astype(np.float32)


def _shaped_gaussian(n: int, rng: np.random.Generator, gain: np.ndarray | None = None) -> np.ndarray:
    """White Gaussian noise filtered in the frequency domain by an amplitude ``gain`` per rfft bin.

    Shaping the spectrum of one long FFT gives the exact target slope over the whole band (an IIR filter
    would only approximate 1/f), and the DC bin is zeroed so no generated noise carries an offset.
    """
    spectrum = np.fft.rfft(rng.standard_normal(n))
    if gain is not None:
        spectrum *= gain
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n=n)


def _bin_freqs(n: int, rate: float = 1.0) -> np.ndarray:
    """Frequencies of the rfft bins with bin 0 set to the first bin's value (avoids 1/0 at DC)."""
    f = np.fft.rfftfreq(n, d=1.0 / rate)
    if len(f) > 1:
        f[0] = f[1]
    else:
        f[0] = 1.0
    return f


def colored_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink (power ∝ 1/f, −3 dB/octave) or brown (∝ 1/f², −6 dB/octave) noise.

    The slope is relative, so no sample rate is needed: the same samples are pink at any rate.

    Args:
        kind: ``"white"``, ``"pink"`` or ``"brown"``.
        n: Number of samples (≥ 2).
        rng: Source of randomness; the same state gives the same samples.

    Raises:
        ValueError: ``kind`` is not a colour or ``n`` < 2.
    """
    if kind not in _COLOR_EXPONENT:
        raise ValueError(f"unknown noise colour {kind!r}; available: {', '.join(COLORED_KINDS)}")
    if n < 2:
        raise ValueError(f"need at least 2 samples of noise, got n={n}")
    exponent = _COLOR_EXPONENT[kind]
    gain = None if exponent == 0 else _bin_freqs(n) ** (-exponent / 2)
    return _unit_rms(_shaped_gaussian(n, rng, gain))


def _slow_wander(n: int, rate: int, rng: np.random.Generator, changes_per_s: float) -> np.ndarray:
    """A smooth random curve in [-1, 1]: Gaussian control points every 1/changes_per_s s, interpolated.

    Motors never hold their speed exactly; this drives the frequency jitter of the harmonics.
    """
    duration = n / rate
    points = max(2, math.ceil(duration * changes_per_s) + 2)
    values = np.clip(rng.standard_normal(points) / 2.0, -1.0, 1.0)
    t = np.arange(n) / rate
    return np.interp(t, np.linspace(0.0, duration, points), values)


def _harmonic_series(
    n: int,
    rate: int,
    rng: np.random.Generator,
    f0: float,
    harmonics: int,
    decay: float,
    jitter: float,
) -> np.ndarray:
    """Sum of harmonics k·f0 with amplitude k**-decay (randomly scattered), sharing one jittering speed.

    All harmonics follow the same instantaneous speed, as they would on a real rotor; each gets a random
    phase. Harmonics at or above ``_MAX_HARMONIC_FRACTION`` × rate (allowing for the jitter) are dropped so
    nothing aliases.
    """
    wander = _slow_wander(n, rate, rng, changes_per_s=rng.uniform(1.0, 4.0))
    f_inst = f0 * (1.0 + jitter * wander)
    phase = 2.0 * np.pi * np.cumsum(f_inst) / rate
    out = np.zeros(n)
    ceiling = _MAX_HARMONIC_FRACTION * rate / (1.0 + jitter)
    for k in range(1, harmonics + 1):
        if k * f0 >= ceiling:
            break
        amplitude = 1.0 if k == 1 else k ** (-decay) * rng.uniform(0.5, 1.0)
        out += amplitude * np.sin(k * phase + rng.uniform(0.0, 2.0 * np.pi))
    return out


def _mix_powers(parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Sum unit-RMS-normalised parts, each weighted so it contributes the given share of power."""
    return sum(math.sqrt(share) * _unit_rms(part).astype(np.float64) for part, share in parts)


def appliance_noise(kind: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic household-appliance noise: a ``"fan"`` or a ``"vacuum"`` cleaner, unit RMS.

    Real fan/vacuum recordings are not available offline (the MS-SNSD and ESC-50 sets that have them are
    several GB; see ``shared/datasets/noise/PROVENANCE.md``), so they are modelled on what makes them
    hard for a denoiser: a rotating motor gives a tonal hum at its rotation rate and harmonics, which
    overlap the speech pitch range and do not look like white noise, and moving air gives a broadband,
    near-stationary noise floor. The parameters are drawn per call so no two clips share one spectrum.

    * ``fan``: fundamental in [45, 120] Hz (mains-synchronous and small DC fans) with 6–10 harmonics of
      decaying amplitude, ±0.3–1 % slow speed jitter, slow amplitude modulation at 0.3–3 Hz (blade pass
      and turbulence), plus pink airflow noise low-passed at 300–1000 Hz. The hum carries 60–80 % of the
      power, so the harmonics stand well above the floor.
    * ``vacuum``: a faster universal motor whine, fundamental in [150, 400] Hz with 8–16 harmonics, plus
      loud broadband hiss (white noise high-passed at 600–1500 Hz: air rushing through the nozzle) that
      carries 60–80 % of the power.

    Args:
        kind: ``"fan"`` or ``"vacuum"``.
        n: Number of samples (≥ 2).
        rate: Sample rate in Hz, needed because the model is defined in Hz.
        rng: Source of randomness; the same state gives the same samples.

    Raises:
        ValueError: unknown ``kind``, ``n`` < 2 or a rate too low for the motor's fundamental.
    """
    if kind not in APPLIANCE_KINDS:
        raise ValueError(f"unknown appliance noise {kind!r}; available: {', '.join(APPLIANCE_KINDS)}")
    if n < 2:
        raise ValueError(f"need at least 2 samples of noise, got n={n}")
    f = _bin_freqs(n, rate)
    t = np.arange(n) / rate
    if kind == "fan":
        f0 = rng.uniform(45.0, 120.0)
        hum = _harmonic_series(
            n,
            rate,
            rng,
            f0,
            harmonics=int(rng.integers(6, 11)),
            decay=rng.uniform(0.6, 1.2),
            jitter=rng.uniform(0.003, 0.01),
        )
        depth, f_am = rng.uniform(0.05, 0.2), rng.uniform(0.3, 3.0)
        hum *= 1.0 + depth * np.sin(2.0 * np.pi * f_am * t + rng.uniform(0.0, 2.0 * np.pi))
        cutoff = rng.uniform(300.0, 1000.0)
        lowpass = 1.0 / np.sqrt(1.0 + (f / cutoff) ** 4)  # 2nd-order Butterworth magnitude
        airflow = _shaped_gaussian(n, rng, lowpass / np.sqrt(f))
        hum_share = rng.uniform(0.6, 0.8)
        return _unit_rms(_mix_powers([(hum, hum_share), (airflow, 1.0 - hum_share)]))
    f0 = rng.uniform(150.0, 400.0)
    if f0 * 1.02 >= _MAX_HARMONIC_FRACTION * rate:
        raise ValueError(f"sample rate {rate} Hz is too low for a vacuum motor at {f0:.0f} Hz")
    whine = _harmonic_series(
        n,
        rate,
        rng,
        f0,
        harmonics=int(rng.integers(8, 17)),
        decay=rng.uniform(0.5, 1.0),
        jitter=rng.uniform(0.005, 0.02),
    )
    cutoff = rng.uniform(600.0, 1500.0)
    highpass = 1.0 / np.sqrt(1.0 + (cutoff / f) ** 4)
    hiss = _shaped_gaussian(n, rng, highpass)
    hiss_share = rng.uniform(0.6, 0.8)
    return _unit_rms(_mix_powers([(whine, 1.0 - hiss_share), (hiss, hiss_share)]))


def file_noise(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a real recording from a random offset, looped (tiled) when it is shorter, unit RMS.

    A random offset makes every mixture hear a different stretch of the recording. When the recording is
    at least ``n`` long the excerpt never wraps (no splice click); when shorter, it is repeated end to
    start, which is what keeping a short stationary recording running would sound like.

    Raises:
        ValueError: the recording is empty or silent, or the excerpt is silent.
    """
    noise = np.asarray(noise, dtype=np.float32)
    if len(noise) == 0 or not np.any(noise):
        raise ValueError("the noise recording is silent (empty or all zeros)")
    length = len(noise)
    if length >= n:
        offset = int(rng.integers(0, length - n + 1))
        excerpt = noise[offset : offset + n]
    else:
        offset = int(rng.integers(0, length))
        excerpt = np.tile(noise, math.ceil((offset + n) / length))[offset : offset + n]
    try:
        return _unit_rms(excerpt)
    except ValueError:
        raise ValueError(
            f"the {n}-sample excerpt at offset {offset} of the noise recording is silent"
        ) from None


#: Frequency (Hz) that a tilt pivots on (its gain there is 1), and the lowest frequency a tilt is
#: computed at (below it the gain is held, so a steep tilt cannot blow up the bins near DC).
TILT_PIVOT_HZ, TILT_LOWEST_HZ = 1000.0, 50.0


def vary_noise(
    noise: np.ndarray, rate: int, rng: np.random.Generator, tilt_db_per_octave: float, level_wander_db: float
) -> np.ndarray:
    """A new variant of unit-RMS ``noise``: its spectrum tilted by a random slope and its level wandering.

    Why: a few real recordings teach the model a few noise *shapes*; a noise of another colour or with
    other level changes at test time is partly left in. Each variant draws a slope uniformly in
    ±``tilt_db_per_octave`` dB per octave (pivoting on 1 kHz: a fan becomes a rumble or a hiss) and a
    smooth level curve spanning ±``level_wander_db`` dB (about one change per second: steady noise
    starts to come and go). 0 turns either off and draws nothing from ``rng``. The result is unit RMS.
    """
    if tilt_db_per_octave == 0 and level_wander_db == 0:
        return noise  # as recorded, sample for sample (not even re-scaled)
    x = np.asarray(noise, dtype=np.float64)
    if tilt_db_per_octave > 0:
        slope = rng.uniform(-tilt_db_per_octave, tilt_db_per_octave)
        f = np.maximum(np.fft.rfftfreq(len(x), d=1.0 / rate), TILT_LOWEST_HZ)
        x = np.fft.irfft(np.fft.rfft(x) * 10 ** (slope * np.log2(f / TILT_PIVOT_HZ) / 20), n=len(x))
    if level_wander_db > 0:
        x = x * 10 ** (level_wander_db * _slow_wander(len(x), rate, rng, 1.0) / 20)
    return _unit_rms(x)


class NoiseBank:
    """Makes noise by source name, reading each ``file:`` recording once (resampled to ``rate``).

    Args:
        rate: Sample rate of the speech the noise will be mixed with.
        noise_dir: Folder that ``file:<name>`` sources are relative to (``speech.noise.noise_dir``).
    """

    def __init__(self, rate: int, noise_dir: Path | None) -> None:
        self.rate = int(rate)
        self.noise_dir = Path(noise_dir) if noise_dir is not None else None
        self._cache: dict[str, np.ndarray] = {}

    def make(self, source: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` samples of unit-RMS noise from ``source`` (a kind in ``NOISE_KINDS`` or ``file:<name>``).

        Raises:
            DataError: a ``file:`` source is missing, unreadable or silent.
            ValueError: ``source`` is not a known source.
        """
        if source in COLORED_KINDS:
            return colored_noise(source, n, rng)
        if source in APPLIANCE_KINDS:
            return appliance_noise(source, n, self.rate, rng)
        if source.startswith("file:") and source[5:]:
            return file_noise(self._recording(source[5:]), n, rng)
        raise ValueError(
            f"unknown noise source {source!r}; allowed: {', '.join(COLORED_KINDS + APPLIANCE_KINDS)} "
            "or file:<name>"
        )

    def available_files(self) -> list[str]:
        """Audio files under ``noise_dir`` (recursively), as the names a ``file:`` source takes."""
        if self.noise_dir is None or not self.noise_dir.is_dir():
            return []
        return sorted(
            p.relative_to(self.noise_dir).as_posix()
            for p in self.noise_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        )

    def _suggest(self, name: str, shown: int = 12) -> str:
        """The audio files a missing ``file:`` source could have meant, for its error message.

        A short folder is listed whole; a large one (``noise_dir`` pointing at a whole dataset collection
        holds thousands of clips) gives the closest names (the same file name in another subfolder first),
        so the message stays readable and still names the fix.
        """
        files = self.available_files()
        if not files:
            return f"No audio files in {self.noise_dir}."
        if len(files) <= shown:
            return f"Audio files in {self.noise_dir}: {', '.join(f'file:{f}' for f in files)}."
        base = name.rsplit("/", 1)[-1]
        same_name = [f for f in files if f.rsplit("/", 1)[-1] == base]
        close = difflib.get_close_matches(name, files, n=shown, cutoff=0.5)
        picks = list(dict.fromkeys(same_name + close))[:shown]
        if not picks:
            return f"{len(files)} audio files in {self.noise_dir}, none with a name like it."
        return (
            f"{len(files)} audio files in {self.noise_dir}; the closest: "
            f"{', '.join(f'file:{f}' for f in picks)}."
        )

    def _recording(self, name: str) -> np.ndarray:
        """The recording ``name`` at ``self.rate``, loaded on first use and cached."""
        if name in self._cache:
            return self._cache[name]
        if self.noise_dir is None:
            raise DataError(
                f"noise source 'file:{name}' needs a folder to read it from. "
                "Fix: set speech.noise.noise_dir in params.yaml."
            )
        path = self.noise_dir / name
        if not path.is_file():
            raise DataError(
                f"{path}: noise file not found (source 'file:{name}'). {self._suggest(name)} Fix: edit "
                "speech.noise.train_sources/test_sources (names relative to speech.noise.noise_dir) in "
                "params.yaml to name a file that is there, or put the file there."
            )
        recording = load_clip(path, self.rate)
        if not math.isfinite(rms_dbfs(recording)):
            raise DataError(f"{path}: the noise recording is silent (all samples are zero). Fix: replace it.")
        self._cache[name] = recording
        return recording


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR in dB of ``noisy`` against ``clean``, with the noise taken as ``noisy − clean``.

    Computed in float64 so the float32 inputs do not limit the precision of the check.
    """
    clean64 = np.asarray(clean, dtype=np.float64)
    noise64 = np.asarray(noisy, dtype=np.float64) - clean64
    p_clean = float(np.mean(np.square(clean64)))
    p_noise = float(np.mean(np.square(noise64)))
    if p_noise == 0.0:
        return math.inf
    if p_clean == 0.0:
        return -math.inf
    return 10.0 * math.log10(p_clean / p_noise)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, float]:
    """Add ``noise`` to ``clean`` scaled so that 10·log10(P_clean / P_noise) = ``snr_db``.

    The SNR is measured over the whole clip (not per speech segment), the convention of VoiceBank-DEMAND
    and MS-SNSD. The returned SNR is recomputed from the float32 arrays actually produced, so callers
    can log the value the model really saw.

    Returns:
        The noisy float32 signal and its measured SNR in dB.

    Raises:
        ValueError: the lengths differ, or clean or noise is silent.
    """
    clean = np.asarray(clean, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if clean.shape != noise.shape:
        raise ValueError(f"clean {clean.shape} and noise {noise.shape} must have the same shape")
    p_clean = float(np.mean(np.square(clean, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_clean == 0.0 or p_noise == 0.0:
        raise ValueError("cannot mix at an SNR: the clean signal or the noise is silent")
    gain = math.sqrt(p_clean / (p_noise * 10.0 ** (snr_db / 10.0)))
    noisy = (clean.astype(np.float64) + gain * noise.astype(np.float64)).astype(np.float32)
    return noisy, measured_snr_db(clean, noisy)
