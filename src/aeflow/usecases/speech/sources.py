"""Clean-speech corpus for the ``speech`` use case: sources, conditioning, speaker-disjoint splits.

Four sources give one result, a list of :class:`Clip` at one sample rate and one level:

- ``espeak``: offline synthesis (:mod:`aeflow.usecases.speech.espeak`), one speaker per voice+variant;
- ``dir``: every WAV/FLAC under a folder (speaker from a file-name pattern or the parent folder);
- ``fsdd``: the Free Spoken Digit Dataset archive, downloaded and then read like ``dir``;
- ``librispeech``: one LibriSpeech subset (real read speech), downloaded by name, unpacked and read like
  ``dir``, with the speaker from the file name and the text from the chapter's transcript.

Clips are conditioned so that every later stage can rely on them: mono, ``sample_rate``, at least
``min_duration_s`` (short recordings of one speaker are joined with ``gap_s`` of silence, because
intelligibility metrics such as STOI need ~2 s of speech and FSDD digits last ~0.4 s), at most
``max_duration_s`` (longer ones are cut), and scaled to ``level_dbfs`` RMS. Splits never share a speaker,
so test scores measure generalisation to unseen voices rather than memorised ones.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.data.download import fetch
from aeflow.errors import DataError, DownloadError
from aeflow.io import atomic_dir, read_json, write_json
from aeflow.usecases.speech.audio import (
    AUDIO_SUFFIXES,
    clipping_ratio,
    read_audio,
    resample,
    rms_dbfs,
    set_level,
    silence_ratio,
    write_wav,
)
from aeflow.usecases.speech.espeak import espeak_corpus, espeak_version, file_safe
from aeflow.usecases.speech.params import SpeechIngestParams

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("train", "val", "test")
#: A LibriSpeech utterance's file stem, ``<speaker>-<chapter>-<utterance>`` (e.g. ``84-121123-0001``).
LIBRISPEECH_STEM = re.compile(r"^(?P<speaker>\d+)-(?P<chapter>\d+)-(?P<utterance>\d+)$")
#: Written last into an unpacked LibriSpeech subset: its presence (inside a folder that appears
#: atomically) and its FLAC count tell a later run that the folder is complete.
UNPACKED_MARKER = "unpacked.json"
MANIFEST_COLUMNS = (
    "id",
    "path",
    "speaker",
    "split",
    "duration_s",
    "sample_rate",
    "rms_dbfs",
    "clipping_ratio",
    "silence_ratio",
    "text",
    "origin",
)


@dataclass
class Clip:
    """One conditioned clip: float32 mono at the corpus rate, level-set, of one speaker and one split."""

    id: str
    speaker: str
    split: str
    audio: np.ndarray
    origin: str  # source file path(s) joined by '+', or 'espeak:<voice>'
    text: str = ""


@dataclass
class SpeechCorpus:
    """All clips of every split, their common sample rate, and provenance (written as ``info.json``)."""

    clips: list[Clip]
    sample_rate: int
    info: dict[str, Any]


@dataclass
class _Recording:
    """One source recording or sentence, mono at the target rate, not yet joined, cut or level-set."""

    speaker: str
    audio: np.ndarray
    origin: str
    text: str = ""


# ------------------------------------------------------------------------------------------------ sources
def _resample_many(signals: Sequence[np.ndarray], orig_rate: int, rate: int) -> list[np.ndarray]:
    """:func:`resample` for many signals at once; each output equals resampling that signal alone.

    Why: torchaudio rebuilds its sinc kernel on every call, ~0.1 s for 22050 -> 8000 Hz, which made a
    300-sentence espeak ingest take 20 s instead of 4 s. The signals are laid end to end, each starting at
    a multiple of ``orig_rate / gcd`` input samples (so its outputs land on whole output samples, at the
    same filter phase as alone) and followed by zeros longer than the kernel (so neighbours never mix);
    the output is then cut back at the matching positions.
    """
    if orig_rate == rate:
        return [np.asarray(x, dtype=np.float32) for x in signals]
    g = math.gcd(int(orig_rate), int(rate))
    step_in, step_out = orig_rate // g, rate // g
    # torchaudio's kernel spans 2 * ceil(6 * step_in / (0.99 * min(step_in, step_out))) + step_in inputs.
    half_width = math.ceil(8 * step_in / (0.9 * min(step_in, step_out)))
    guard = step_in * (math.ceil(2 * half_width / step_in) + 2)
    out: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    used = 0

    def flush() -> None:
        nonlocal used
        if not batch:
            return
        slots = [math.ceil(len(x) / step_in) * step_in + guard for x in batch]
        joined = np.zeros(sum(slots), dtype=np.float32)
        starts = np.cumsum([0, *slots[:-1]])
        for x, start in zip(batch, starts, strict=True):
            joined[start : start + len(x)] = x
        y = resample(joined, orig_rate, rate)
        for x, start in zip(batch, starts, strict=True):
            begin = start // step_in * step_out
            out.append(y[begin : begin + -(-len(x) * step_out // step_in)].copy())
        batch.clear()
        used = 0

    for x in signals:
        batch.append(x)
        used += len(x)
        if used >= 1 << 23:  # ~32 MB of float32 per call keeps memory bounded for large folders
            flush()
    flush()
    return out


def _espeak_recordings(p: SpeechIngestParams, seed: int) -> list[_Recording]:
    corpus = espeak_corpus(p.espeak_speakers, p.espeak_sentences, p.espeak_rates_wpm, p.espeak_pitches, seed)
    engine_rate = corpus[0][4] if corpus else p.sample_rate  # one engine, one output rate (22050 Hz)
    audio = _resample_many([x for *_, x, _ in corpus], engine_rate, p.sample_rate)
    return [
        _Recording(speaker, x, f"espeak:{speaker}", text)
        for (_, speaker, text, _, _), x in zip(corpus, audio, strict=True)
    ]


def _audio_files(folder: Path, setting: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(
            f"{folder}: folder not found ({setting}). Fix: point {setting} at a folder of .wav/.flac "
            "recordings (searched recursively), or use speech.ingest.source: espeak."
        )
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(
            f"{folder}: no .wav or .flac files found (searched recursively; {setting}). Fix: add recordings "
            "or point the setting at the folder that holds them."
        )
    return files


def _speaker_of(path: Path, pattern: str | None) -> str:
    """Speaker name: the ``speaker`` group of ``pattern`` on the file stem, else the parent folder's name."""
    if not pattern:
        return path.parent.name
    match = re.match(pattern, path.stem)
    if match is None or not match.group("speaker"):
        raise DataError(
            f"{path}: the file name does not match speech.ingest.speaker_pattern {pattern!r}, so its speaker "
            "is unknown. Fix: rename the file to match, adjust the pattern, or set "
            "speech.ingest.speaker_pattern to null to use the folder name as the speaker."
        )
    return match.group("speaker")


def _transcripts(folders: set[Path]) -> dict[str, str]:
    """Text per file stem from LibriSpeech-style ``*.trans.txt`` files (``<stem> <TEXT>`` lines) in folders.

    Why: LibriSpeech keeps one transcript per chapter beside the FLAC files; reading it fills the
    manifest's ``text`` column for real speech the way espeak's sentences do for synthetic speech.
    """
    texts: dict[str, str] = {}
    for folder in sorted(folders):
        for path in sorted(folder.glob("*.trans.txt")):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(
                    f"{path}: not a readable transcript ({exc}). Fix: restore the file (UTF-8 lines "
                    "'<file stem> <text>') or remove it; the text is optional."
                ) from None
            for line in lines:
                stem, _, text = line.strip().partition(" ")
                if stem and text.strip():
                    texts[stem] = text.strip()
    return texts


def _folder_recordings(folder: Path, pattern: str | None, rate: int, setting: str) -> list[_Recording]:
    loaded = []
    files = _audio_files(folder, setting)
    texts = _transcripts({path.parent for path in files})
    for path in files:
        speaker = _speaker_of(path, pattern)
        x, orig_rate = read_audio(path)
        if not math.isfinite(rms_dbfs(x)):
            raise DataError(f"{path}: the recording is silent (all samples are zero). Fix: remove it.")
        loaded.append((path, speaker, x, orig_rate))
    audio: list[np.ndarray | None] = [None] * len(loaded)
    for orig_rate in sorted({r for *_, r in loaded}):  # one batch per original rate
        idx = [i for i, item in enumerate(loaded) if item[3] == orig_rate]
        for i, x in zip(idx, _resample_many([loaded[i][2] for i in idx], orig_rate, rate), strict=True):
            audio[i] = x
    return [
        _Recording(speaker, x, str(path), texts.get(path.stem, ""))
        for (path, speaker, _, _), x in zip(loaded, audio, strict=True)
    ]


def _is_recording(member: str) -> bool:
    """``recordings/*.wav`` or ``<top>/recordings/*.wav`` inside the FSDD archive."""
    parts = PurePosixPath(member).parts
    return len(parts) in (2, 3) and parts[-2] == "recordings" and parts[-1].lower().endswith(".wav")


def _extract_recordings(archive: Path, target: Path) -> Path:
    """Unpack the archive's ``recordings/*.wav`` flat into ``target``; skip when already complete."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {PurePosixPath(m.filename).name: m for m in zf.infolist() if _is_recording(m.filename)}
            if not members:
                raise DataError(
                    f"{archive}: the archive holds no recordings/*.wav files, so it is not the Free Spoken "
                    "Digit Dataset. Fix: check speech.ingest.fsdd_urls, delete the file and run again."
                )
            if target.is_dir() and len(list(target.glob("*.wav"))) == len(members):
                return target
            with atomic_dir(target) as tmp:
                for name, member in members.items():
                    (tmp / name).write_bytes(zf.read(member))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise DataError(
            f"{archive}: not a readable zip archive ({exc}). Fix: delete it so the next run downloads it "
            "again, or unpack the recordings yourself and use speech.ingest.source: dir."
        ) from None
    return target


def _download_folder(p: SpeechIngestParams, source: str) -> Path:
    """``<download_dir>/<source>``: each download source keeps its archive and files in its own folder."""
    return Path(p.download_dir) / source


def _fetch_first(
    urls: Sequence[str], dest: Path, p: SpeechIngestParams
) -> tuple[Path | None, str, list[str]]:
    """The first of ``urls`` that downloads into ``dest``: (archive, its URL, why each earlier one failed).

    Why: every download source lists mirrors tried in turn (``fetch`` retries each with a timeout); the
    archive is None when none answered, and the reasons make the error's list.
    """
    attempts: list[str] = []
    for url in urls:
        base, _, filename = url.rpartition("/")
        if not base or not filename:
            attempts.append(f"{url}: not a URL of a file")
            continue
        try:
            return fetch(filename, [base], dest, timeout_s=p.timeout_s, retries=p.retries), url, attempts
        except DownloadError as exc:
            attempts.append(str(exc))
    return None, "", attempts


def download_fsdd(p: SpeechIngestParams) -> tuple[Path, str]:
    """Download (or reuse) the FSDD archive and unpack its recordings; return the folder and the URL used.

    Each entry of ``fsdd_urls`` is tried in turn (``fetch`` retries each with a timeout), so a mirror can
    be listed after the GitHub URL.
    """
    dest = _download_folder(p, "fsdd")
    archive, url, attempts = _fetch_first(p.fsdd_urls, dest, p)
    if archive is not None:
        return _extract_recordings(archive, dest / "recordings"), url
    raise DownloadError(
        "could not download the Free Spoken Digit Dataset:\n  "
        + "\n  ".join(attempts)
        + "\n  Fix: check the network or proxy, add a reachable URL to speech.ingest.fsdd_urls, or download "
        "and unpack the archive yourself and set speech.ingest.source: dir with dir: <folder>/recordings."
    )


def _librispeech_member(name: str, subset: str, archive: Path) -> PurePosixPath | None:
    """Where archive member ``name`` goes inside the unpacked subset folder; None when it is not needed.

    Only ``LibriSpeech/<subset>/.../<speaker>-<chapter>-<utterance>.flac`` and the ``*.trans.txt``
    transcripts are kept (the READMEs and speaker lists are not read). Raises :class:`DataError` for an
    absolute or ``..`` member, which no genuine LibriSpeech archive holds and which could otherwise write
    outside the download folder.
    """
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise DataError(
            f"{archive}: the archive holds the member {name!r}, which points outside its folder, so it is "
            "not a genuine LibriSpeech archive and is not unpacked. Fix: delete it and check "
            "speech.ingest.librispeech_urls (use openslr.org or a mirror you trust)."
        )
    parts = path.parts
    if len(parts) < 3 or parts[0] != "LibriSpeech" or parts[1] != subset:
        return None
    rel = PurePosixPath(*parts[2:])
    if rel.suffix.lower() == ".flac" and LIBRISPEECH_STEM.match(rel.stem):
        return rel
    return rel if rel.name.endswith(".trans.txt") else None


def _librispeech_complete(target: Path) -> dict[str, Any] | None:
    """The marker of a completely unpacked subset folder (still holding all its FLAC files), else None."""
    try:
        info = read_json(target / UNPACKED_MARKER)
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict):
        return None
    flac_files = sum(1 for f in target.rglob("*") if f.suffix.lower() == ".flac" and f.is_file())
    return info if flac_files == info.get("flac_files") else None


def _unpack_librispeech(archive: Path, subset: str, target: Path, url: str) -> None:
    """Unpack the subset's FLAC files and transcripts from ``archive`` into ``target``, atomically.

    The archive is read as a stream (one pass; train-clean-360 is 23 GB) and each kept member is copied
    to a path built from its checked name parts, never extracted by tarfile itself, so links, devices and
    traversal cannot escape ``target``. ``target`` appears only once complete, marker included.
    """
    flac_files = 0
    try:
        with tarfile.open(archive, "r|gz") as tf, atomic_dir(target) as tmp:
            for member in tf:
                rel = _librispeech_member(member.name, subset, archive)
                if rel is None or not member.isreg():  # links and devices are never followed or made
                    continue
                source = tf.extractfile(member)
                if source is None:
                    continue
                out = tmp.joinpath(*rel.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with source, out.open("wb") as fh:
                    shutil.copyfileobj(source, fh, 1 << 20)
                flac_files += rel.suffix.lower() == ".flac"
            if not flac_files:
                raise DataError(
                    f"{archive}: the archive holds no LibriSpeech/{subset}/.../<speaker>-<chapter>-"
                    "<utterance>.flac files, so it is not the LibriSpeech subset asked for. Fix: check "
                    "speech.ingest.librispeech_subset and librispeech_urls, delete the file and run again."
                )
            write_json(tmp / UNPACKED_MARKER, {"url": url, "archive": archive.name, "flac_files": flac_files})
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{archive}: not a readable .tar.gz archive ({exc}); the download is damaged or cut short, "
            "or the server sent something else (an error page). Fix: delete it so the next run downloads it "
            "again, or download and unpack the subset yourself and use speech.ingest.source: dir."
        ) from None


def download_librispeech(p: SpeechIngestParams) -> tuple[Path, str]:
    """Download (or reuse) the LibriSpeech subset and unpack it; return its folder and the URL used.

    ``<download_dir>/librispeech/<subset>/`` holds ``<speaker>/<chapter>/*.flac`` and the transcripts.
    When that folder is complete nothing is requested at all. Otherwise each template of
    ``librispeech_urls`` is tried in turn (``fetch`` retries each with a timeout); the archive is removed
    once unpacked, because the FLAC files take as much room again and are all that is read.
    """
    subset = p.librispeech_subset
    dest = _download_folder(p, "librispeech")
    target = dest / subset
    done = _librispeech_complete(target)
    if done is not None:
        return target, str(done.get("url", ""))
    urls = [template.format(subset=subset) for template in p.librispeech_urls]
    archive, url, attempts = _fetch_first(urls, dest, p)
    if archive is not None:
        _unpack_librispeech(archive, subset, target, url)
        archive.unlink()
        return target, url
    raise DownloadError(
        f"could not download LibriSpeech {subset}:\n  "
        + "\n  ".join(attempts)
        + "\n  Fix: check the network or proxy, add a reachable URL template to "
        f"speech.ingest.librispeech_urls, or download {subset}.tar.gz from openslr.org/12 yourself, unpack "
        f"it and set speech.ingest.source: dir with dir: <folder>/LibriSpeech/{subset}."
    )


# ------------------------------------------------------------------------------------------- conditioning
def _join(group: Sequence[_Recording], gap: np.ndarray) -> np.ndarray:
    parts: list[np.ndarray] = []
    for i, rec in enumerate(group):
        if i:
            parts.append(gap)
        parts.append(rec.audio)
    return np.concatenate(parts).astype(np.float32)


def _group(recordings: Sequence[_Recording], p: SpeechIngestParams) -> list[list[_Recording]]:
    """Consecutive recordings of one speaker, joined until each group lasts ``min_duration_s``.

    A short leftover at the end joins the previous group (which may then need cutting).
    """
    rate, gap = p.sample_rate, round(p.gap_s * p.sample_rate)
    groups: list[list[_Recording]] = []
    current: list[_Recording] = []
    length = 0
    for rec in recordings:
        length += len(rec.audio) + (gap if current else 0)
        current.append(rec)
        if length >= p.min_duration_s * rate:
            groups.append(current)
            current, length = [], 0
    if current:
        if not groups:
            files = ", ".join(dict.fromkeys(r.origin for r in current))
            raise DataError(
                f"speaker {current[0].speaker!r} has only {length / rate:.2f} s of speech ({files}), "
                f"less than speech.ingest.min_duration_s = {p.min_duration_s:g} s for a single clip. "
                "Fix: lower speech.ingest.min_duration_s or add recordings of this speaker."
            )
        groups[-1].extend(current)
    return groups


def _cut(x: np.ndarray, rate: int, min_s: float, max_s: float) -> list[np.ndarray]:
    """Cut ``x`` into pieces of at most ``max_s`` seconds, none shorter than ``min_s``.

    The fewest equal pieces that fit ``max_s`` are used, so there is no tiny remainder. Only when those
    would be shorter than ``min_s`` (possible when ``min_s > max_s / 2``) pieces of exactly ``max_s`` are
    taken and a final remainder shorter than ``min_s`` is dropped.
    """
    max_len = int(max_s * rate)
    if len(x) <= max_len:
        return [x]
    k = math.ceil(len(x) / max_len)
    bounds = np.linspace(0, len(x), k + 1).round().astype(int)
    pieces = [x[a:b] for a, b in itertools.pairwise(bounds)]
    if min(len(piece) for piece in pieces) >= min_s * rate:
        return pieces
    pieces = [x[i : i + max_len] for i in range(0, len(x), max_len)]
    return [piece for piece in pieces if len(piece) >= min_s * rate]


def _speaker_clips(speaker: str, recordings: Sequence[_Recording], p: SpeechIngestParams) -> list[Clip]:
    """Join, cut and level-set one speaker's recordings; ids are ``<speaker>_<index>``."""
    rate = p.sample_rate
    gap = np.zeros(round(p.gap_s * rate), dtype=np.float32)
    clips = []
    for group in _group(recordings, p):
        origin = "+".join(dict.fromkeys(r.origin for r in group))
        pieces = _cut(_join(group, gap), rate, p.min_duration_s, p.max_duration_s)
        # A cut piece holds only part of the words, so the text is kept for uncut clips only.
        text = " ".join(r.text for r in group if r.text) if len(pieces) == 1 else ""
        for piece in pieces:
            try:
                audio = set_level(piece, p.level_dbfs)
            except ValueError:
                raise DataError(
                    f"{origin}: a clip made from this audio is silent (all samples are zero). "
                    "Fix: remove the silent recording(s) or trim their silence."
                ) from None
            clips.append(Clip(f"{file_safe(speaker)}_{len(clips):04d}", speaker, "", audio, origin, text))
    return clips


def _limit(by_speaker: dict[str, list[Clip]], max_clips: int | None) -> dict[str, list[Clip]]:
    """Keep at most ``max_clips`` clips, shared round-robin over speakers so every speaker stays.

    Within a speaker the kept clips are spread evenly over its material (first, ..., last) rather than
    taken from the start, so a capped FSDD corpus still holds every digit, not just the zeros.
    """
    if max_clips is None or sum(len(c) for c in by_speaker.values()) <= max_clips:
        return by_speaker
    if max_clips < len(by_speaker):
        raise DataError(
            f"speech.ingest.max_clips = {max_clips} is smaller than the number of speakers "
            f"({len(by_speaker)}), so some speakers would vanish. Fix: raise max_clips to at least "
            f"{len(by_speaker)} or set it to null."
        )
    quota = dict.fromkeys(by_speaker, 0)
    left = max_clips
    while left:
        for speaker, clips in by_speaker.items():
            if left and quota[speaker] < len(clips):
                quota[speaker] += 1
                left -= 1
    kept = {}
    for speaker, clips in by_speaker.items():
        idx = np.floor(np.linspace(0, len(clips) - 1, quota[speaker]) + 0.5).astype(int)
        kept[speaker] = [clips[i] for i in idx]
    return kept


def split_speakers(speakers: Sequence[str], p: SpeechIngestParams, seed: int) -> dict[str, list[str]]:
    """Assign each speaker to one split: the named ones where given, the rest drawn with ``seed``."""
    speakers = sorted(speakers)
    chosen: dict[str, list[str]] = {}
    for split, names in (("test", p.test_speakers), ("val", p.val_speakers)):
        if names is None:
            continue
        unknown = [s for s in names if s not in speakers]
        if unknown:
            raise DataError(
                f"speech.ingest.{split}_speakers names {', '.join(map(repr, unknown))}, not among the "
                f"speakers found: {', '.join(speakers)}. Fix: use names from that list."
            )
        chosen[split] = list(dict.fromkeys(names))
    both = set(chosen.get("test", [])) & set(chosen.get("val", []))
    if both:
        raise DataError(
            f"speaker(s) {', '.join(sorted(both))} are in both test_speakers and val_speakers. "
            "Fix: a speaker may belong to one split only."
        )
    rest = [s for s in speakers if s not in chosen.get("test", []) and s not in chosen.get("val", [])]
    n_test = 0 if "test" in chosen else p.test_speaker_count
    n_val = 0 if "val" in chosen else p.val_speaker_count
    if len(rest) < n_test + n_val + 1:
        raise DataError(
            f"{len(speakers)} speaker(s) found ({', '.join(speakers)}), too few for speaker-disjoint splits: "
            f"{n_test} more test, {n_val} more val and at least 1 train speaker are needed. Fix: add "
            "speakers (for dir: one folder per speaker, or a speaker_pattern), or lower "
            "speech.ingest.test_speaker_count / val_speaker_count."
        )
    drawn = [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))]
    test = chosen.get("test", drawn[:n_test])
    val = chosen.get("val", drawn[n_test : n_test + n_val])
    train = [s for s in rest if s not in drawn[: n_test + n_val]]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


# ------------------------------------------------------------------------------------------------ ingest
def ingest_speech(p: SpeechIngestParams, seed: int) -> SpeechCorpus:
    """Load the configured source, condition every clip and split the speakers (see the module doc).

    Raises:
        DataError: missing/empty folder, unreadable or silent file, unknown speaker or voice, too few
            speakers or too little audio of one speaker.
        DownloadError: the ``fsdd`` or ``librispeech`` archive could not be downloaded.
    """
    if p.source == "espeak":
        recordings = _espeak_recordings(p, seed)
        origin = f"espeak-ng {espeak_version()}"
    elif p.source == "dir":
        recordings = _folder_recordings(
            Path(p.dir or ""), p.speaker_pattern, p.sample_rate, "speech.ingest.dir"
        )
        origin = str(p.dir)
    elif p.source == "fsdd":
        folder, origin = download_fsdd(p)
        recordings = _folder_recordings(
            folder, p.speaker_pattern, p.sample_rate, "speech.ingest.download_dir"
        )
    else:  # librispeech: the speaker is always the file name's, whatever speaker_pattern says
        folder, origin = download_librispeech(p)
        recordings = _folder_recordings(
            folder, LIBRISPEECH_STEM.pattern, p.sample_rate, "speech.ingest.download_dir"
        )

    by_speaker: dict[str, list[_Recording]] = {}
    for rec in recordings:
        by_speaker.setdefault(rec.speaker, []).append(rec)
    speakers = sorted(by_speaker)
    safe = [file_safe(s) for s in speakers]
    if len(set(safe)) != len(safe):
        raise DataError(
            f"speaker names {speakers} collide once made file-safe ({safe}). "
            "Fix: rename the speakers so they differ in letters, digits, '.', '_' or '-'."
        )
    clips = _limit({s: _speaker_clips(s, by_speaker[s], p) for s in speakers}, p.max_clips)

    splits = split_speakers(speakers, p, seed)
    ordered: list[Clip] = []
    summary: dict[str, Any] = {}
    for split in SPLITS:
        for speaker in splits[split]:
            for clip in clips[speaker]:
                clip.split = split
                ordered.append(clip)
        members = [c for c in ordered if c.split == split]
        summary[split] = {
            "clips": len(members),
            "speakers": splits[split],
            "seconds": round(sum(len(c.audio) for c in members) / p.sample_rate, 3),
        }
    info = {
        "source": p.source,
        "origin": origin,
        "sample_rate": p.sample_rate,
        "level_dbfs": p.level_dbfs,
        "recordings": len(recordings),
        "splits": summary,
    }
    return SpeechCorpus(ordered, p.sample_rate, info)


# ------------------------------------------------------------------------------------------------- files
def write_corpus(corpus: SpeechCorpus, out: Path) -> None:
    """Write ``audio/<split>/<id>.wav`` (16-bit PCM), ``manifest.csv`` and ``info.json`` atomically."""
    import pandas as pd

    ids = [c.id for c in corpus.clips]
    if len(set(ids)) != len(ids):
        raise DataError("clip ids are not unique, so their files would overwrite each other.")
    rate = corpus.sample_rate
    rows = []
    with atomic_dir(out) as tmp:
        for clip in corpus.clips:
            rel = PurePosixPath("audio", clip.split, f"{clip.id}.wav")
            write_wav(tmp / rel, clip.audio, rate, subtype="PCM_16")
            rows.append(
                {
                    "id": clip.id,
                    "path": str(rel),
                    "speaker": clip.speaker,
                    "split": clip.split,
                    "duration_s": round(len(clip.audio) / rate, 4),
                    "sample_rate": rate,
                    "rms_dbfs": round(rms_dbfs(clip.audio), 3),
                    "clipping_ratio": clipping_ratio(clip.audio),
                    "silence_ratio": round(silence_ratio(clip.audio, rate), 4),
                    "text": clip.text,
                    "origin": clip.origin,
                }
            )
        pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).to_csv(tmp / "manifest.csv", index=False)
        write_json(tmp / "info.json", corpus.info)


def read_manifest(folder: Path) -> pd.DataFrame:
    """The ``manifest.csv`` of a corpus folder written by :func:`write_corpus`.

    Raises:
        DataError: the manifest is missing, unreadable or lacks columns.
    """
    import pandas as pd

    path = Path(folder) / "manifest.csv"
    if not path.is_file():
        raise DataError(f"{path}: manifest not found. Fix: run the speech ingest stage first.")
    text_columns = ("id", "path", "speaker", "split", "text", "origin")
    try:
        # keep_default_na=False: an empty text stays "" and a speaker called "NA" stays a name.
        df = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str), keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(
            f"{path}: not a readable manifest ({exc}). Fix: run the speech ingest stage again."
        ) from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: the manifest lacks column(s) {', '.join(missing)}. "
            "Fix: run the speech ingest stage again."
        )
    return df


def load_split(folder: Path, split: str) -> list[tuple[str, str, np.ndarray]]:
    """``(id, speaker, audio)`` of every clip of ``split``, in manifest order.

    Raises:
        DataError: unknown split name, a missing/unreadable WAV, or a WAV at another rate than listed.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}.")
    folder = Path(folder)
    df = read_manifest(folder)
    out = []
    for row in df[df["split"] == split].itertuples(index=False):
        x, rate = read_audio(folder / row.path)
        if rate != int(row.sample_rate):
            raise DataError(
                f"{folder / row.path}: sample rate {rate} Hz, but the manifest says {row.sample_rate} Hz. "
                "Fix: run the speech ingest stage again."
            )
        out.append((row.id, row.speaker, x))
    return out
