"""Clean-speech sources: espeak synthesis, folders of recordings, the FSDD download, the written corpus."""

from __future__ import annotations

import functools
import socket
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aeflow.errors import DataError, DownloadError
from aeflow.io import read_json
from aeflow.usecases.speech.audio import read_audio, resample, rms_dbfs, set_level
from aeflow.usecases.speech.espeak import HARVARD_SENTENCES, SEED_PHRASE, espeak_corpus, file_safe, synthesize
from aeflow.usecases.speech.params import SpeechIngestParams
from aeflow.usecases.speech.sources import (
    MANIFEST_COLUMNS,
    SPLITS,
    _cut,
    ingest_speech,
    load_split,
    read_manifest,
    write_corpus,
)

VOICES = ("en-us+m1", "en+f3", "en-gb-scotland+m4", "en-gb-x-rp+f4")
DIGITS = ("zero", "one", "two")


def f0_hz(x: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames (a crude but adequate voice fingerprint)."""
    n = int(0.04 * rate)
    lo, hi = rate // 400, rate // 60
    pitches = []
    for i in range(0, len(x) - n, n):
        frame = x[i : i + n]
        if rms_dbfs(frame) < -35:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        pitches.append(rate / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(pitches))


@functools.cache
def spoken(text: str, voice: str, rate: int = 22050) -> np.ndarray:
    """``text`` spoken by ``voice`` at ``rate`` (cached: the same words serve several tests)."""
    return resample(synthesize(text, voice)[0], 22050, rate)


def write_speech(path: Path, text: str, voice: str, rate: int = 8000, channels: int = 1) -> np.ndarray:
    """Write real (synthesised) speech as 16-bit PCM at ``rate``; return the mono signal written."""
    x = spoken(text, voice, rate)
    data = np.stack([x, 0.5 * x], axis=1) if channels == 2 else x
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype="PCM_16")
    return x


def speaker_folders(root: Path, per_speaker: int = 2) -> Path:
    """``root/<speaker>/<i>.wav``: one folder per speaker (3 speakers), each a Harvard sentence."""
    for s, voice in enumerate(VOICES[:3]):
        for i in range(per_speaker):
            write_speech(root / f"spk{s}" / f"{i}.wav", HARVARD_SENTENCES[i], voice)
    return root


def dir_params(folder: Path, **kw: object) -> SpeechIngestParams:
    base = {
        "source": "dir",
        "dir": str(folder),
        "speaker_pattern": None,
        "test_speaker_count": 1,
        "val_speaker_count": 1,
        "min_duration_s": 1.0,
    }
    return SpeechIngestParams(**{**base, **kw})


def assert_level(clips: list, level: float) -> None:
    for clip in clips:
        peak = float(np.max(np.abs(clip.audio)))
        assert abs(rms_dbfs(clip.audio) - level) <= 0.5 or peak >= 0.98, (clip.id, rms_dbfs(clip.audio), peak)


# ------------------------------------------------------------------------------------------------ espeak
def test_synthesize_is_speech_at_22050_and_deterministic():
    x, rate = synthesize(HARVARD_SENTENCES[0], "en-us+m1")
    assert rate == 22050 and x.dtype == np.float32 and x.ndim == 1
    assert 1.0 <= len(x) / rate <= 5.0
    assert -30 < rms_dbfs(x) < -10 and np.max(np.abs(x)) <= 1.0
    # Leading silence is trimmed to the ~50 ms margin: speech (> -50 dBFS) starts within 70 ms.
    assert np.flatnonzero(np.abs(x) > 10 ** (-50 / 20))[0] / rate < 0.07
    synthesize("Something else entirely.", "en+f3", rate_wpm=300, pitch=10)  # must not leak into the next
    again, _ = synthesize(HARVARD_SENTENCES[0], "en-us+m1")
    assert np.array_equal(x, again)


def test_voices_rate_and_pitch_change_the_speech():
    male, female = spoken(HARVARD_SENTENCES[0], "en-us+m1"), spoken(HARVARD_SENTENCES[0], "en-us+f3")
    assert f0_hz(male, 22050) < 130 < 160 < f0_hz(female, 22050)  # measured ~95 Hz and ~200 Hz
    slow = synthesize(HARVARD_SENTENCES[0], "en-us+m1", rate_wpm=100)[0]
    fast = synthesize(HARVARD_SENTENCES[0], "en-us+m1", rate_wpm=300)[0]
    assert len(slow) > 2 * len(fast)
    low = synthesize(HARVARD_SENTENCES[0], "en-us+m1", pitch=10)[0]
    high = synthesize(HARVARD_SENTENCES[0], "en-us+m1", pitch=90)[0]
    assert f0_hz(high, 22050) > 1.4 * f0_hz(low, 22050)


@pytest.mark.parametrize(("voice", "named"), [("nope-voice", "nope-voice"), ("en-us+zz9", "zz9")])
def test_unknown_voice_or_variant_is_a_data_error(voice, named):
    # An unknown variant is silently ignored by espeak-ng itself; it must not merge two "speakers".
    with pytest.raises(DataError, match=named) as err:
        synthesize("Hello.", voice)
    assert "en-us" in str(err.value) and "+m1" in str(err.value)  # the fix lists real names


def test_harvard_sentences_and_corpus_determinism():
    assert len(HARVARD_SENTENCES) >= 60 and len(set(HARVARD_SENTENCES)) == len(HARVARD_SENTENCES)
    assert HARVARD_SENTENCES[0] == "The birch canoe slid on the smooth planks."
    args = (["en-us+m1", "en+f3"], 3, [120, 220], [20, 80])
    a, b = espeak_corpus(*args, seed=1), espeak_corpus(*args, seed=1)
    assert [c[0] for c in a] == [
        "en-us-m1_s000",
        "en-us-m1_s001",
        "en-us-m1_s002",
        "en-f3_s000",
        *(["en-f3_s001", "en-f3_s002"]),
    ]
    assert [c[2] for c in a[:3]] == [SEED_PHRASE, *HARVARD_SENTENCES[:2]]
    assert all(np.array_equal(x[3], y[3]) and x[4] == 22050 for x, y in zip(a, b, strict=True))
    others = [espeak_corpus(*args, seed=s) for s in (2, 3)]
    assert any(not np.array_equal(x[3], y[3]) for o in others for x, y in zip(a, o, strict=True))
    with pytest.raises(DataError, match="espeak_sentences"):
        espeak_corpus(["en-us"], len(HARVARD_SENTENCES) + 2, [175], [50], seed=0)
    assert file_safe("a+b c:d") == "a-b-c-d" and file_safe(".x") == "_.x"


@pytest.fixture(scope="module")
def espeak_corpus_small():
    p = SpeechIngestParams(
        espeak_speakers=list(VOICES),
        espeak_sentences=3,
        test_speaker_count=1,
        val_speaker_count=1,
        min_duration_s=2.0,
        max_duration_s=6.0,
        level_dbfs=-26.0,
    )
    return p, ingest_speech(p, seed=0)


def test_espeak_ingest_splits_levels_durations(espeak_corpus_small):
    p, corpus = espeak_corpus_small
    assert corpus.sample_rate == 8000
    by_split = {s: {c.speaker for c in corpus.clips if c.split == s} for s in SPLITS}
    assert [len(by_split[s]) for s in SPLITS] == [2, 1, 1]
    assert set.union(*by_split.values()) == set(VOICES)
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"])
    assert_level(corpus.clips, -26.0)
    durations = [len(c.audio) / 8000 for c in corpus.clips]
    assert min(durations) >= 2.0 and max(durations) <= 6.0
    # 3 sentences of ~1.1 + 2 × ~2.2 s per speaker: the short seed phrase is joined with the next one.
    first = next(c for c in corpus.clips if c.speaker == VOICES[0])
    assert first.text == f"{SEED_PHRASE} {HARVARD_SENTENCES[0]}" and first.origin == f"espeak:{VOICES[0]}"
    assert all(c.audio.dtype == np.float32 and c.audio.ndim == 1 for c in corpus.clips)
    info = corpus.info
    assert info["origin"].startswith("espeak-ng 1.") and info["recordings"] == 12
    assert sum(info["splits"][s]["clips"] for s in SPLITS) == len(corpus.clips)
    again = ingest_speech(p, seed=0)
    assert [c.id for c in again.clips] == [c.id for c in corpus.clips]
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(again.clips, corpus.clips, strict=True))


def test_explicit_speakers_and_seeded_choice():
    p = SpeechIngestParams(
        espeak_speakers=list(VOICES), espeak_sentences=2, test_speakers=["en+f3"], val_speaker_count=1
    )
    corpus = ingest_speech(p, seed=5)
    assert corpus.info["splits"]["test"]["speakers"] == ["en+f3"]
    assert len(corpus.info["splits"]["val"]["speakers"]) == 1
    with pytest.raises(DataError, match=r"'bob'.*en\+f3, en\+m3"):
        ingest_speech(
            p.model_copy(update={"test_speakers": ["bob"], "espeak_speakers": ["en+f3", "en+m3"]}), 0
        )


# ---------------------------------------------------------------------------------------------------- dir
def test_dir_stereo_48k_becomes_mono_8k_with_expected_duration(tmp_path):
    folder = speaker_folders(tmp_path / "d", per_speaker=1)
    x48 = write_speech(
        folder / "spk0" / "stereo.wav", HARVARD_SENTENCES[5], VOICES[0], rate=48000, channels=2
    )
    corpus = ingest_speech(dir_params(folder, min_duration_s=0.5), seed=0)
    clip = next(c for c in corpus.clips if c.origin.endswith("stereo.wav"))
    assert clip.audio.ndim == 1 and corpus.sample_rate == 8000
    assert abs(len(clip.audio) - len(x48) / 6) <= 1  # 48 kHz -> 8 kHz keeps the duration
    expected = set_level(resample(0.75 * x48, 48000, 8000), -23.0)  # channels averaged: (x + x/2) / 2
    np.testing.assert_allclose(clip.audio, expected, atol=2e-4)
    assert len(corpus.clips) == 4 and {c.speaker for c in corpus.clips} == {"spk0", "spk1", "spk2"}


def test_dir_short_clips_are_joined_per_speaker(tmp_path):
    folder = tmp_path / "digits"
    lengths = {}
    for s, voice in enumerate(VOICES[:3]):
        for d, word in enumerate(DIGITS * 2):
            path = folder / f"{d % 3}_spk{s}_{d}.wav"
            lengths[str(path)] = len(write_speech(path, word, voice))
    p = dir_params(folder, speaker_pattern=r"^[^_]+_(?P<speaker>[^_]+)_", min_duration_s=1.0, gap_s=0.1)
    corpus = ingest_speech(p, seed=0)
    assert {c.speaker for c in corpus.clips} == {"spk0", "spk1", "spk2"}
    for clip in corpus.clips:
        files = clip.origin.split("+")
        assert len(files) >= 2 and all(f"_{clip.speaker}_" in f for f in files)
        assert len(clip.audio) == sum(lengths[f] for f in files) + 800 * (len(files) - 1)  # 0.1 s gaps
        assert len(clip.audio) >= 8000
    # Every file is used exactly once.
    used = [f for c in corpus.clips for f in c.origin.split("+")]
    assert sorted(used) == sorted(lengths)


def test_dir_long_clip_is_cut_and_cut_rules(tmp_path):
    x = np.ones(25_000, dtype=np.float32)
    assert [len(p) for p in _cut(x, 8000, 0.5, 1.0)] == [6250] * 4  # fewest equal pieces <= 1 s
    assert [len(p) for p in _cut(x[:8000], 8000, 0.5, 1.0)] == [8000]  # fits: untouched
    # Halves of 9000 samples (0.56 s) would be shorter than min 0.9 s: one 1 s piece, 0.125 s dropped.
    assert [len(p) for p in _cut(np.ones(9000, dtype=np.float32), 8000, 0.9, 1.0)] == [8000]
    folder = speaker_folders(tmp_path / "d", per_speaker=1)  # one ~2.1 s sentence per speaker
    corpus = ingest_speech(dir_params(folder, min_duration_s=0.5, max_duration_s=1.0), seed=0)
    for speaker in ("spk0", "spk1", "spk2"):
        pieces = [len(c.audio) for c in corpus.clips if c.speaker == speaker]
        original = len(read_audio(folder / speaker / "0.wav")[0])
        assert len(pieces) == 3 and sum(pieces) == original and max(pieces) - min(pieces) <= 1


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda f: (f / "spk0" / "x.wav").write_bytes(np.random.default_rng(0).bytes(3000)), r"x\.wav"),
        (lambda f: sf.write(str(f / "spk1" / "empty.wav"), np.zeros(0), 8000), r"empty\.wav.*0 frames"),
        (lambda f: sf.write(str(f / "spk2" / "mute.wav"), np.zeros(8000), 8000), r"mute\.wav.*silent"),
    ],
)
def test_dir_bad_files_are_named(tmp_path, make, match):
    folder = speaker_folders(tmp_path / "d", per_speaker=1)
    make(folder)
    with pytest.raises(DataError, match=match):
        ingest_speech(dir_params(folder), seed=0)


def test_dir_configuration_errors(tmp_path):
    folder = speaker_folders(tmp_path / "d", per_speaker=1)
    with pytest.raises(DataError, match=r"0\.wav.*speaker_pattern.*null"):
        ingest_speech(dir_params(folder, speaker_pattern=r"^(?P<speaker>[a-z]+)_"), seed=0)
    with pytest.raises(DataError, match=r"'nobody'.*spk0, spk1, spk2"):
        ingest_speech(dir_params(folder, test_speakers=["nobody"]), seed=0)
    with pytest.raises(DataError, match=r"'spk\d'.*min_duration_s = 5"):
        ingest_speech(dir_params(folder, min_duration_s=5.0), seed=0)
    with pytest.raises(DataError, match=r"3 speaker.*too few"):
        ingest_speech(dir_params(folder, test_speaker_count=2), seed=0)
    with pytest.raises(DataError, match="folder not found"):
        ingest_speech(dir_params(tmp_path / "missing"), seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.wav or \.flac"):
        ingest_speech(dir_params(tmp_path / "empty"), seed=0)


def test_max_clips_keeps_every_speaker(tmp_path):
    folder = speaker_folders(tmp_path / "d", per_speaker=4)
    full = ingest_speech(dir_params(folder, min_duration_s=0.5), seed=0)
    assert len(full.clips) == 12
    capped = ingest_speech(dir_params(folder, min_duration_s=0.5, max_clips=5), seed=0)
    per_speaker = {s: sum(c.speaker == s for c in capped.clips) for s in ("spk0", "spk1", "spk2")}
    assert sorted(per_speaker.values()) == [1, 2, 2]
    kept = {c.id for c in capped.clips if c.speaker == "spk0"}
    assert kept <= {c.id for c in full.clips} and len(kept) in (1, 2)
    with pytest.raises(DataError, match=r"max_clips = 2.*3"):
        ingest_speech(dir_params(folder, min_duration_s=0.5, max_clips=2), seed=0)


# --------------------------------------------------------------------------------------------------- fsdd
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdd_download_extract_ingest(tmp_path, http_server):
    served = tmp_path / "served"
    served.mkdir()
    lengths = {}
    with zipfile.ZipFile(served / "v1.0.10.zip", "w") as zf:
        zf.writestr("free-spoken-digit-dataset-1.0.10/README.md", "not a recording")
        for s, voice in enumerate(VOICES):
            for i, word in enumerate(DIGITS * 2):
                wav = tmp_path / "w" / f"{i % 3}_sp{s}_{i}.wav"
                lengths[wav.name] = len(write_speech(wav, word, voice))
                zf.write(wav, f"free-spoken-digit-dataset-1.0.10/recordings/{wav.name}")
    url = http_server(served) + "v1.0.10.zip"
    p = SpeechIngestParams(
        source="fsdd",
        fsdd_urls=[f"http://127.0.0.1:{closed_port()}/v1.0.10.zip", url],  # first mirror down
        download_dir=str(tmp_path / "dl"),
        timeout_s=2,
        retries=1,
        min_duration_s=1.0,
        test_speaker_count=1,
        val_speaker_count=1,
    )
    corpus = ingest_speech(p, seed=0)
    recordings = sorted(f.name for f in (tmp_path / "dl" / "fsdd" / "recordings").iterdir())
    assert recordings == sorted(lengths)  # only recordings/*.wav, flat, in the source's own folder
    assert corpus.info["origin"] == url and corpus.info["recordings"] == 24
    assert {c.speaker for c in corpus.clips} == {"sp0", "sp1", "sp2", "sp3"}
    assert all(len(c.audio) >= 8000 for c in corpus.clips)
    assert_level(corpus.clips, -23.0)
    # Offline re-run: the archive and the extracted recordings are reused.
    offline = ingest_speech(
        p.model_copy(update={"fsdd_urls": [f"http://127.0.0.1:{closed_port()}/v1.0.10.zip"]}), 0
    )
    assert [c.id for c in offline.clips] == [c.id for c in corpus.clips]


def test_fsdd_unreachable_is_a_quick_download_error(tmp_path):
    port = closed_port()
    p = SpeechIngestParams(
        source="fsdd",
        fsdd_urls=[f"http://127.0.0.1:{port}/v1.0.10.zip"],
        download_dir=str(tmp_path / "dl"),
        timeout_s=1,
        retries=1,
    )
    start = time.perf_counter()
    with pytest.raises(DownloadError, match=rf"(?s)127\.0\.0\.1:{port}.*Connection refused.*fsdd_urls"):
        ingest_speech(p, seed=0)
    assert time.perf_counter() - start < 5


def test_fsdd_corrupt_archive_is_a_data_error(tmp_path):
    cached = tmp_path / "dl" / "fsdd" / "v1.0.10.zip"  # fsdd's own folder under download_dir
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"<html>rate limited</html>")  # a cached bad download
    p = SpeechIngestParams(
        source="fsdd", fsdd_urls=["http://127.0.0.1:9/v1.0.10.zip"], download_dir=str(tmp_path / "dl")
    )
    with pytest.raises(DataError, match=r"v1\.0\.10\.zip.*not a readable zip.*delete it"):
        ingest_speech(p, seed=0)


@pytest.mark.shared_data
def test_real_fsdd_subset(tmp_path, shared_datasets):
    recordings = shared_datasets / "fsdd" / "recordings"
    speakers = ("george", "jackson", "lucas", "theo")
    subset = tmp_path / "fsdd"
    subset.mkdir()
    for speaker in speakers:  # 15 files per speaker, linked rather than copied
        for digit in range(5):
            for index in range(3):
                name = f"{digit}_{speaker}_{index}.wav"
                (subset / name).symlink_to(recordings / name)
    p = dir_params(subset, speaker_pattern=r"^[^_]+_(?P<speaker>[^_]+)_", min_duration_s=1.0, max_clips=10)
    corpus = ingest_speech(p, seed=0)
    assert len(corpus.clips) == 10 and corpus.info["recordings"] == 60
    assert {c.speaker for c in corpus.clips} == set(speakers)
    for clip in corpus.clips:
        files = clip.origin.split("+")
        assert all(f"_{clip.speaker}_" in Path(f).name for f in files)
        assert len(clip.audio) >= 8000
        # The clip is its files (read at 8 kHz, no resampling) joined with 0.15 s gaps, then level-set.
        raw = [read_audio(f)[0] for f in files]
        assert len(clip.audio) == sum(map(len, raw)) + 1200 * (len(files) - 1)
    assert_level(corpus.clips, -23.0)
    splits = {s: set(corpus.info["splits"][s]["speakers"]) for s in SPLITS}
    assert sum(map(len, splits.values())) == 4 and set.union(*splits.values()) == set(speakers)


# ------------------------------------------------------------------------------------------------- corpus
def test_write_corpus_round_trip(tmp_path, espeak_corpus_small):
    _, corpus = espeak_corpus_small
    out = tmp_path / "clean"
    write_corpus(corpus, out)
    df = read_manifest(out)
    assert tuple(df.columns) == MANIFEST_COLUMNS and len(df) == len(corpus.clips)
    assert read_json(out / "info.json") == corpus.info
    by_id = {c.id: c for c in corpus.clips}
    for split in SPLITS:
        loaded = load_split(out, split)
        expected = [c for c in corpus.clips if c.split == split]
        assert [(i, s) for i, s, _ in loaded] == [(c.id, c.speaker) for c in expected]
        for clip_id, _, audio in loaded:
            np.testing.assert_allclose(audio, by_id[clip_id].audio, atol=1.5 / 32768)  # PCM16 quantisation
    row = df.iloc[0]
    clip = by_id[row["id"]]
    assert row["path"] == f"audio/{clip.split}/{clip.id}.wav" and (out / row["path"]).is_file()
    assert row["duration_s"] == pytest.approx(len(clip.audio) / 8000, abs=1e-4)
    assert row["rms_dbfs"] == pytest.approx(-26.0, abs=0.5) and row["sample_rate"] == 8000
    assert 0 <= row["silence_ratio"] < 0.6 and row["clipping_ratio"] == 0.0
    assert row["text"] == clip.text and row["origin"] == clip.origin


def test_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("id,path\na,b\n")
    with pytest.raises(DataError, match=r"lacks column.*speaker"):
        read_manifest(tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        load_split(tmp_path, "dev")
