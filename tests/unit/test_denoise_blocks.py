"""Cleaning a recording block by block, from a file or a stream, gives the samples of cleaning it whole;
a recording faster than the model keeps its band above the model's rate."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aeflow.usecases.speech.enhance import RecordingDenoiser, SpeechDenoiser, denoise_blocks
from aeflow.usecases.speech.params import SpectrogramParams
from aeflow.usecases.speech.spectrogram import FeatureStats

MODEL_RATE = 16000


class MaskNet(torch.nn.Module):
    """A small convolutional mask estimator with fixed random weights: local in time and frequency like
    the trained autoencoder, so any block seam would show. ``bias`` moves every gain (0: let all pass
    when ``scale`` is 0; very negative: attenuate all to the mask floor)."""

    def __init__(
        self,
        window_s: float | None,
        scale: float = 1.0,
        bias: float = -0.5,
        inference_patch_hop: int | None = None,
    ) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 1, (5, 5), padding=2)
        self.scale, self.bias = scale, bias
        self.patches = 0  # patches seen by forward, to count the network's work
        spec = SpectrogramParams(
            loss_weight="noisy_power",
            mask_floor_db=-30.0,
            noise_window_s=window_s,
            patch_frames=16,
            inference_patch_hop=inference_patch_hop,
        )
        bins = spec.n_fft // 2 + 1
        stats = FeatureStats(np.zeros(bins, np.float32), np.ones(bins, np.float32), 1.0)
        self.data_config = {
            "use_case": "speech",
            "sample_rate": MODEL_RATE,
            "spectrogram": spec.model_dump(),
            "stats": stats.to_json(),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.patches += len(x)
        return self.scale * torch.tanh(self.conv(x)) + self.bias


def noisy_speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts of harmonics and a hiss that changes level half-way, with energy above
    8 kHz when ``rate`` allows it: the local noise floor and the high band both have work to do."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 2500, 6000), 1))
    if rate > 20000:
        voice = voice + 0.3 * np.sin(2 * np.pi * 11000 * t)
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    hiss = rng.normal(0, 1, len(t)) * np.where(t < seconds / 2, 0.05, 0.2)
    return (0.7 * (0.2 * voice * envelope + hiss)).astype(np.float32)  # peaks below full scale


def pieces(x: np.ndarray, seed: int = 1) -> list[np.ndarray]:
    """``x`` cut at random places, as a pipe delivers it."""
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, len(x)), 25, replace=False))
    return np.split(x, cuts)


@pytest.mark.parametrize(
    ("rate", "keep_rate", "block_s"),
    [(16000, True, 0.5), (48000, True, 1.0), (44100, False, 0.3), (8000, True, 2.0)],
)
def test_blocks_give_the_samples_of_the_whole_recording(rate: int, keep_rate: bool, block_s: float):
    recording = RecordingDenoiser(SpeechDenoiser(MaskNet(window_s=1.0)), rate, keep_rate)
    x = noisy_speechlike(5.3, rate)
    whole = recording(x)
    blocks = list(denoise_blocks(recording, pieces(x), block_s))
    joined = np.concatenate(blocks)
    assert len(joined) == len(whole) == (len(x) if keep_rate else -(-len(x) * MODEL_RATE // rate))
    assert len(blocks) >= 3  # really cut, not one piece
    assert np.max(np.abs(joined - whole)) < 1e-4
    assert np.std(whole - x[: len(whole)] if keep_rate else whole) > 0.01  # the model changed something


def test_denser_patches_when_cleaning_average_more_views_and_still_stream_exactly():
    """``inference_patch_hop: 3`` (the model trained with ``patch_hop: 8``): the network runs on 8/3 as
    many patches, every frame blends more of them, so the output moves; and blocks still give the whole
    recording's samples, on a grid that lines up both hops (lcm 24 frames)."""
    x = noisy_speechlike(5.3, MODEL_RATE)
    sparse_net, dense_net = MaskNet(window_s=1.0), MaskNet(window_s=1.0, inference_patch_hop=3)
    sparse = SpeechDenoiser(sparse_net)(x)
    dense_denoiser = SpeechDenoiser(dense_net)
    dense = dense_denoiser(x)
    assert 2.4 < dense_net.patches / sparse_net.patches < 2.9
    assert dense_denoiser.grid == 24 * dense_denoiser.spec.hop_length
    assert np.max(np.abs(dense - sparse)) > 1e-3  # a different average, not the same output
    recording = RecordingDenoiser(dense_denoiser, MODEL_RATE)
    joined = np.concatenate(list(denoise_blocks(recording, pieces(x), 0.5)))
    assert np.max(np.abs(joined - recording(x))) < 1e-4


def test_an_inference_hop_longer_than_a_patch_is_refused():
    with pytest.raises(ValueError, match=r"inference_patch_hop \(20\) must not exceed patch_frames \(16\)"):
        SpectrogramParams(patch_frames=16, inference_patch_hop=20)


def test_the_noise_floor_follows_the_noise_within_its_window():
    """Hiss 12 dB louder in the second half: a 1 s window's floor rises by ~12 dB there and stays put in
    the first half; the whole-recording floor is one value, and a clip shorter than half the window
    gets exactly that."""
    from aeflow.usecases.speech.spectrogram import (
        SpectrogramCodec,
        local_noise_floor,
        network_view,
        noise_floor,
    )

    spec = SpectrogramParams(noise_window_s=1.0)
    codec = SpectrogramCodec(spec, MODEL_RATE)
    x = noisy_speechlike(6.0, MODEL_RATE)
    log, _ = codec.analyse(x)
    half_width = round(1.0 * MODEL_RATE / spec.hop_length / 2)
    local = local_noise_floor(log, 0.1, half_width, spec.patch_hop).mean(axis=0)
    frames = log.shape[1]
    first, second = local[: frames // 2 - half_width].mean(), local[frames // 2 + half_width :].mean()
    rise_db = 20 * (second - first) / np.log(10)
    assert rise_db == pytest.approx(12.0, abs=1.5)
    whole = noise_floor(log, 0.1).mean()
    assert first < whole < second
    short = log[:, : half_width + 1]
    assert np.array_equal(network_view(short, spec, MODEL_RATE), short - noise_floor(short, 0.1)[:, None])


def test_a_48k_recording_keeps_its_band_above_the_model_rate():
    rate = 48000
    x = noisy_speechlike(3.0, rate)
    spectrum = lambda y: np.abs(np.fft.rfft(y)) ** 2  # noqa: E731
    high = np.fft.rfftfreq(len(x), 1 / rate) > 8500
    pass_all = RecordingDenoiser(SpeechDenoiser(MaskNet(None, scale=0.0, bias=0.0)), rate)
    y = pass_all(x)
    assert len(y) == len(x)
    # A model that lets everything through gives the recording back, its 8–24 kHz band included.
    assert np.max(np.abs(y - x)) < 2e-3
    assert spectrum(y)[high].sum() / spectrum(x)[high].sum() == pytest.approx(1.0, abs=0.01)
    # A model that attenuates everything to its floor (−30 dB) takes the high band down with it.
    silence = RecordingDenoiser(SpeechDenoiser(MaskNet(None, scale=0.0, bias=-100.0)), rate)
    drop_db = 10 * np.log10(spectrum(silence(x))[high].sum() / spectrum(x)[high].sum())
    assert -32 < drop_db < -28


def test_a_model_with_a_whole_recording_floor_refuses_blocks():
    recording = RecordingDenoiser(SpeechDenoiser(MaskNet(window_s=None)), MODEL_RATE)
    with pytest.raises(Exception, match="noise_window_s"):
        list(denoise_blocks(recording, [np.zeros(1000, np.float32)], 0.5))


def wav_bytes(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes((np.clip(x, -1, 1) * 32767).round().astype("<i2").tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("audio_format", ["wav", "raw"])
def test_stream_and_file_commands_give_the_whole_recording_samples(tmp_path, monkeypatch, audio_format):
    import soundfile as sf

    from aeflow import cli

    net = MaskNet(window_s=1.0)
    monkeypatch.setattr(cli, "load_any_model", lambda model, uri=None: net)
    rate = 48000
    x = noisy_speechlike(4.1, rate)
    data = wav_bytes(x, rate)
    x16 = np.frombuffer(data[44:], dtype="<i2").astype(np.float32) / 32768  # what the command reads
    whole = RecordingDenoiser(SpeechDenoiser(net), rate)(x16)
    runner = CliRunner()
    args = ["denoise", "--stream", "--format", audio_format] + (
        ["--rate", str(rate)] if audio_format == "raw" else []
    )
    res = runner.invoke(cli.app, args, input=data if audio_format == "wav" else data[44:])
    assert res.exit_code == 0, res.output
    out = res.stdout_bytes
    if audio_format == "wav":
        assert out[:4] == b"RIFF" and out[8:12] == b"WAVE"
        out = out[44:]
    streamed = np.frombuffer(out, dtype="<i2").astype(np.float32) / 32767
    assert len(streamed) == len(x)
    assert np.max(np.abs(streamed - whole)) <= 1.5 / 32767  # 16-bit rounding only

    src = tmp_path / "in.wav"
    src.write_bytes(data)
    dst = tmp_path / "out.wav"
    res = runner.invoke(cli.app, ["denoise", str(src), "-o", str(dst), "--block-s", "0.7"])
    assert res.exit_code == 0, res.output
    filed, filed_rate = sf.read(dst, dtype="float32")
    assert filed_rate == rate and len(filed) == len(x)
    assert np.max(np.abs(filed - whole)) <= 1.5 / 32767


def test_bad_streams_say_what_to_send(monkeypatch):
    from aeflow import cli

    monkeypatch.setattr(cli, "load_any_model", lambda model, uri=None: MaskNet(window_s=1.0))
    runner = CliRunner()
    res = runner.invoke(cli.app, ["denoise", "--stream"], input=b"not a wave at all")
    assert res.exit_code == 2 and "not a WAV stream" in res.stderr
    res = runner.invoke(cli.app, ["denoise", "--stream", "--format", "raw"], input=b"\x00\x00")
    assert res.exit_code == 2 and "--rate" in res.stderr
