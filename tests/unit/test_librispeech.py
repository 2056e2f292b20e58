"""LibriSpeech for the speech use case: the ``librispeech`` download source and ``dir`` on its folders.

The download is tested against a local HTTP server that serves a small ``<subset>.tar.gz`` built here in
LibriSpeech's layout from synthesised speech; the real LibriSpeech files in ``../shared/datasets`` are
read in place (linked, never copied).
"""

from __future__ import annotations

import functools
import io
import os
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aeflow.errors import DataError, DownloadError, ParamsError
from aeflow.io import read_json
from aeflow.params import parse_params
from aeflow.usecases.speech.audio import read_audio, resample, set_level
from aeflow.usecases.speech.espeak import HARVARD_SENTENCES, synthesize
from aeflow.usecases.speech.params import SpeechIngestParams
from aeflow.usecases.speech.sources import SPLITS, UNPACKED_MARKER, _speaker_of, ingest_speech

RATE = 16000
#: speaker -> (chapter, espeak voice); three speakers give one each to train, val and test.
SPEAKERS = {"19": ("198", "en-us+m1"), "84": ("121123", "en+f3"), "1272": ("128104", "en-gb-scotland+m4")}
UTTERANCES = 2
DOCUMENTED_PATTERN = r"^(?P<speaker>\d+)-\d+-\d+$"  # the README's explicit LibriSpeech pattern


@functools.cache
def utterance(voice: str, index: int) -> np.ndarray:
    """A Harvard sentence (~2 s) spoken by ``voice`` at 16 kHz, quantised as the FLAC will hold it."""
    x = resample(synthesize(HARVARD_SENTENCES[index], voice)[0], 22050, RATE)
    return np.round(x * 32767) / 32768


def flac_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def librispeech_archive(path: Path, subset: str = "dev-clean", extra: dict[str, bytes] | None = None) -> dict:
    """Write ``path`` as LibriSpeech does: ``LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac``
    plus one ``<spk>-<chapter>.trans.txt`` per chapter and the top-level text files; return id -> text."""
    texts = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        add_file(tf, "LibriSpeech/README.TXT", b"LibriSpeech ASR corpus\n")
        add_file(tf, "LibriSpeech/SPEAKERS.TXT", b"; ID | SEX | SUBSET | MINUTES | NAME\n")
        for speaker, (chapter, voice) in SPEAKERS.items():
            folder = f"LibriSpeech/{subset}/{speaker}/{chapter}"
            lines = []
            for i in range(UTTERANCES):
                utt = f"{speaker}-{chapter}-{i:04d}"
                add_file(tf, f"{folder}/{utt}.flac", flac_bytes(utterance(voice, i)))
                texts[utt] = HARVARD_SENTENCES[i].upper().rstrip(".")
                lines.append(f"{utt} {texts[utt]}\n")
            add_file(tf, f"{folder}/{speaker}-{chapter}.trans.txt", "".join(lines).encode())
        for name, data in (extra or {}).items():
            add_file(tf, name, data)
        link = tarfile.TarInfo(f"LibriSpeech/{subset}/19/198/19-198-0099.flac")  # must not be followed
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    return texts


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def libri_params(tmp_path: Path, urls: list[str], **kw: object) -> SpeechIngestParams:
    base = {
        "source": "librispeech",
        "librispeech_subset": "dev-clean",
        "librispeech_urls": urls,
        "download_dir": str(tmp_path / "dl"),
        "timeout_s": 2,
        "retries": 1,
        "sample_rate": RATE,
        "min_duration_s": 1.0,
        "test_speaker_count": 1,
        "val_speaker_count": 1,
    }
    return SpeechIngestParams(**{**base, **kw})


# ------------------------------------------------------------------------------------------- librispeech
def test_librispeech_download_unpack_ingest_and_reuse(tmp_path, http_server):
    texts = librispeech_archive(tmp_path / "served" / "dev-clean.tar.gz")
    url = http_server(tmp_path / "served")
    down = f"http://127.0.0.1:{closed_port()}/{{subset}}.tar.gz"
    p = libri_params(tmp_path, [down, url + "{subset}.tar.gz"])  # the first mirror is down
    corpus = ingest_speech(p, seed=0)

    subset = tmp_path / "dl" / "librispeech" / "dev-clean"
    kept = sorted(str(f.relative_to(subset)) for f in subset.rglob("*") if f.is_file())
    assert kept == sorted(
        [UNPACKED_MARKER]
        + [f"{s}/{c}/{s}-{c}.trans.txt" for s, (c, _) in SPEAKERS.items()]
        + [f"{s}/{c}/{s}-{c}-{i:04d}.flac" for s, (c, _) in SPEAKERS.items() for i in range(UTTERANCES)]
    )  # FLACs and transcripts only, in LibriSpeech's nesting; no README, no link
    assert not (tmp_path / "dl" / "librispeech" / "dev-clean.tar.gz").exists()  # removed once unpacked
    assert corpus.info["origin"] == url + "dev-clean.tar.gz" and corpus.info["recordings"] == 6
    assert corpus.info["source"] == "librispeech" and corpus.sample_rate == RATE

    # Speakers from the file names, each in exactly one split; one ~2 s utterance per clip, with its text.
    assert {c.speaker for c in corpus.clips} == set(SPEAKERS)
    splits = {s: corpus.info["splits"][s]["speakers"] for s in SPLITS}
    assert sorted(len(v) for v in splits.values()) == [1, 1, 1]
    assert sorted(s for v in splits.values() for s in v) == sorted(SPEAKERS)
    assert len(corpus.clips) == 6
    for clip in corpus.clips:
        origin = Path(clip.origin)
        assert origin.parent.parent.name == clip.speaker and origin.name.startswith(f"{clip.speaker}-")
        assert clip.text == texts[origin.stem] and clip.split in SPLITS
        voice = SPEAKERS[clip.speaker][1]
        expected = set_level(utterance(voice, int(origin.stem[-4:])), p.level_dbfs)
        np.testing.assert_allclose(clip.audio, expected, atol=1e-5)  # 16 kHz in, 16 kHz out: untouched

    # Second run, every URL unreachable: the unpacked subset is reused without a request; at 8 kHz.
    offline = p.model_copy(update={"librispeech_urls": [down], "sample_rate": 8000})
    again = ingest_speech(offline, seed=0)
    assert again.info["origin"] == url + "dev-clean.tar.gz" and again.sample_rate == 8000
    assert [c.id for c in again.clips] == [c.id for c in corpus.clips]
    assert all(
        abs(2 * len(a.audio) - len(b.audio)) <= 1 and a.text == b.text
        for a, b in zip(again.clips, corpus.clips, strict=True)
    )

    # A file lost since: the folder is no longer complete, so the subset is fetched and unpacked again.
    (subset / "84" / "121123" / "84-121123-0001.flac").unlink()
    with pytest.raises(DownloadError, match="could not download LibriSpeech dev-clean"):
        ingest_speech(offline, seed=0)
    assert len(ingest_speech(p, seed=0).clips) == 6
    assert read_json(subset / UNPACKED_MARKER)["flac_files"] == 6


def _truncated(path: Path) -> None:
    librispeech_archive(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(b"<html>rate limited</html>"), r"not a readable \.tar\.gz archive"),
        (_truncated, r"not a readable \.tar\.gz archive"),
        (lambda p: librispeech_archive(p, subset="test-clean"), r"no LibriSpeech/dev-clean/.*not the Libri"),
        (
            lambda p: librispeech_archive(p, extra={"LibriSpeech/dev-clean/../../../evil.flac": b"x"}),
            r"'LibriSpeech/dev-clean/\.\./\.\./\.\./evil\.flac'.*outside",
        ),
        (lambda p: librispeech_archive(p, extra={"/tmp/evil.flac": b"x"}), r"'/tmp/evil\.flac'.*outside"),
    ],
    ids=["garbage", "truncated", "other-subset", "dotdot", "absolute"],
)
def test_librispeech_bad_archive_is_a_data_error(tmp_path, make, match):
    # A cached download is used as is; the error names it, says what is wrong and how to fix it.
    archive = tmp_path / "dl" / "librispeech" / "dev-clean.tar.gz"
    archive.parent.mkdir(parents=True)
    make(archive)
    p = libri_params(tmp_path, [f"http://127.0.0.1:{closed_port()}/{{subset}}.tar.gz"])
    with pytest.raises(
        DataError, match=rf"(?s)dev-clean\.tar\.gz: .*{match}.*Fix: .*(delete|download)"
    ) as err:
        ingest_speech(p, seed=0)
    assert str(archive) in str(err.value)
    # Nothing half-unpacked is left to be mistaken for the subset, and nothing escaped the folder.
    assert sorted(f.name for f in archive.parent.iterdir()) == ["dev-clean.tar.gz"]
    assert not (tmp_path / "evil.flac").exists() and not Path("/tmp/evil.flac").exists()


def test_librispeech_unreachable_names_every_url_and_the_fix(tmp_path):
    port = closed_port()
    p = libri_params(
        tmp_path, [f"http://127.0.0.1:{port}/a/{{subset}}.tar.gz"], librispeech_subset="test-other"
    )
    with pytest.raises(
        DownloadError, match=r"(?s)LibriSpeech test-other.*:\d+/a/test-other\.tar\.gz.*librispeech_urls"
    ):
        ingest_speech(p, seed=0)


def test_librispeech_params_are_checked_at_load():
    def error(ingest: dict) -> str:
        with pytest.raises(ParamsError) as exc:
            parse_params({"speech": {"ingest": ingest}})
        return str(exc.value)

    msg = error({"source": "librispeech", "librispeech_subset": "dev-clen"})
    assert "'speech.ingest.librispeech_subset' = 'dev-clen'" in msg
    for name in ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-other-500"):
        assert f"'{name}'" in msg
    assert "needs {subset}" in error({"librispeech_urls": ["https://example.org/dev-clean.tar.gz"]})
    assert "only {subset}" in error({"librispeech_urls": ["https://example.org/{subset}/{lang}.tar.gz"]})
    assert "min_length" in error({"librispeech_urls": []}) or "at least 1" in error({"librispeech_urls": []})
    p = parse_params({"speech": {"ingest": {"source": "librispeech"}}}).speech.ingest
    assert p.librispeech_subset == "dev-clean" and p.download_dir == "data/downloads/speech"
    assert [u.format(subset="x") for u in p.librispeech_urls] == [
        "https://www.openslr.org/resources/12/x.tar.gz",
        "https://us.openslr.org/resources/12/x.tar.gz",
    ]


# ---------------------------------------------------------------------------------------------------- dir
@pytest.mark.parametrize(
    ("stem", "speaker"),
    [
        ("0_jackson_0", "jackson"),  # FSDD <digit>_<speaker>_<n>
        ("7_anne-marie_12", "anne-marie"),
        ("1272-128104-0000", "1272"),  # LibriSpeech <speaker>-<chapter>-<utterance>
        ("19-198-0001", "19"),
    ],
)
def test_default_speaker_pattern_reads_fsdd_and_librispeech_names(stem, speaker):
    default = SpeechIngestParams().speaker_pattern
    assert _speaker_of(Path(f"any/{stem}.flac"), default) == speaker
    if "-" in stem and "_" not in stem:
        assert _speaker_of(Path(f"{stem}.flac"), DOCUMENTED_PATTERN) == speaker


@pytest.mark.parametrize("stem", ["spk0", "a_b", "1272-128104", "x-1-2"])
def test_default_speaker_pattern_rejects_other_names(stem):
    with pytest.raises(DataError, match=rf"{stem}\.wav.*speaker_pattern"):
        _speaker_of(Path(f"{stem}.wav"), SpeechIngestParams().speaker_pattern)


def _librispeech_folder(root: Path, flat: bool) -> Path:
    """LibriSpeech's files unpacked as ``<spk>/<chapter>/...`` (nested) or all in one folder (flat)."""
    archive = root / "a.tar.gz"
    librispeech_archive(archive)
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 5 and member.isreg():
                out = root / "dev-clean" / (parts[-1] if flat else Path(*parts[2:]))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tf.extractfile(member).read())
    return root / "dev-clean"


@pytest.mark.parametrize("flat", [False, True], ids=["nested", "flat"])
def test_dir_reads_librispeech_folders_with_the_default_pattern(tmp_path, flat):
    folder = _librispeech_folder(tmp_path, flat)
    p = SpeechIngestParams(
        source="dir",
        dir=str(folder),
        sample_rate=RATE,
        min_duration_s=1.0,
        test_speaker_count=1,
        val_speaker_count=1,
    )
    corpus = ingest_speech(p, seed=0)
    assert {c.speaker for c in corpus.clips} == set(SPEAKERS) and len(corpus.clips) == 6
    assert all(c.text and c.text.isupper() for c in corpus.clips)  # from the *.trans.txt beside the audio
    explicit = ingest_speech(p.model_copy(update={"speaker_pattern": DOCUMENTED_PATTERN}), seed=0)
    assert [(c.id, c.speaker) for c in explicit.clips] == [(c.id, c.speaker) for c in corpus.clips]


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b[:100], lambda b: np.random.default_rng(0).bytes(3000)],
    ids=["truncated", "header-only", "garbage"],
)
def test_dir_bad_flac_is_named_with_a_fix(tmp_path, damage):
    folder = _librispeech_folder(tmp_path, flat=False)
    bad = folder / "84" / "121123" / "84-121123-0001.flac"
    bad.write_bytes(damage(bad.read_bytes()))
    p = SpeechIngestParams(
        source="dir", dir=str(folder), sample_rate=RATE, test_speaker_count=1, val_speaker_count=1
    )
    with pytest.raises(
        DataError, match=r"84-121123-0001\.flac: not a readable audio file.*Fix: .*remove it"
    ) as err:
        ingest_speech(p, seed=0)
    assert str(bad) in str(err.value)


# ------------------------------------------------------------------------------------ shared LibriSpeech
@pytest.fixture(scope="module")
def shared_librispeech(shared_datasets: Path) -> Path:
    """``../shared/datasets/speech-wideband/librispeech``: fail (not skip) under CI when it is missing."""
    folder = shared_datasets / "speech-wideband" / "librispeech"
    if not (folder / "train-clean-100").is_dir() or not (folder / "test-other").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"LibriSpeech not found at {folder} (CI is set, so this is an error)")
        pytest.skip(f"LibriSpeech not found at {folder}")
    return folder


@pytest.mark.shared_data
def test_real_librispeech_folder_via_dir(tmp_path, shared_librispeech):
    # Both layouts of the shared copy, linked (not copied): train-clean-100 is flat, test-other nested.
    picked = [
        "train-clean-100/103-1240-0000.flac",
        "train-clean-100/1034-121119-0000.flac",
        "train-clean-100/1040-133433-0000.flac",
        "test-other/1688/1688-142285-0000.flac",
        "test-other/1688/1688-142285-0001.flac",
        "test-other/1998/1998-15444-0000.flac",
    ]
    for rel in picked:
        link = tmp_path / "libri" / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(shared_librispeech / rel)
    p = SpeechIngestParams(
        source="dir",
        dir=str(tmp_path / "libri"),
        sample_rate=RATE,
        max_duration_s=30.0,
        test_speaker_count=1,
        val_speaker_count=1,
        max_clips=5,
    )
    corpus = ingest_speech(p, seed=0)
    speakers = {"103", "1034", "1040", "1688", "1998"}
    assert corpus.info["recordings"] == 6 and len(corpus.clips) == 5 and corpus.sample_rate == RATE
    assert {c.speaker for c in corpus.clips} == speakers  # from the file names, in both layouts
    assert sum(len(corpus.info["splits"][s]["speakers"]) for s in SPLITS) == 5
    for clip in corpus.clips:
        x, rate = read_audio(clip.origin)
        assert rate == RATE and Path(clip.origin).name.startswith(f"{clip.speaker}-")
        np.testing.assert_allclose(clip.audio, set_level(x, p.level_dbfs), atol=1e-6)  # whole, unresampled
