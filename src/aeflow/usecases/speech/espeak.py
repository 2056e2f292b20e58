"""Offline clean speech: the libespeak-ng that ``espeakng-loader`` bundles, driven through ctypes.

A formant synthesiser is not natural speech, but it needs no download, no GPU and no licence review,
synthesises a sentence in a few milliseconds, and gives any number of distinct, reproducible "speakers"
(a voice plus a formant variant such as ``en-us+m1``). That makes the speech use case runnable anywhere
and its tests fast; real recordings come in through the ``dir`` and ``fsdd`` sources.

Why the library is loaded afresh for every synthesis: libespeak-ng keeps hidden state between utterances
that its API cannot reset (e.g. the pitch-flutter phase ``Flutter_ix``, a function-level static in
``wavegen.c``), so with one long-lived engine a sentence's samples depend on everything synthesised before
it in the process. Loading a private copy of the library, initialising it, synthesising, terminating and
unloading it costs ~5 ms and makes :func:`synthesize` a pure function of its arguments, which the
reproducible pipeline needs. The breath noise of some variants (``f2``, ``f3``, ``f5``, ...) comes from the
C library's ``rand()``, which lives outside libespeak-ng, so it is seeded from the arguments before each
synthesis. One process-wide lock serialises all this, since the engine is global C state.
"""

from __future__ import annotations

import _ctypes
import atexit
import contextlib
import ctypes
import re
import shutil
import tempfile
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from aeflow.errors import DataError

#: The seed phrase every espeak speaker says first.
SEED_PHRASE = "Machine learning rocks."

#: Harvard sentences, lists 1–10 of the IEEE Recommended Practice for Speech Quality Measurements (1969):
#: phonetically balanced, public domain, and the usual material of speech-quality tests.
HARVARD_SENTENCES: tuple[str, ...] = (
    # List 1
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "Large size in stockings is hard to sell.",
    # List 2
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    # List 3
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    # List 4
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
    # List 5
    "A king ruled the state in the early days.",
    "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.",
    "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.",
    "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.",
    "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.",
    "Mesh wire keeps chicks inside.",
    # List 6
    "The frosty air passed through the coat.",
    "The crooked maze failed to fool the mouse.",
    "Adding fast leads to wrong sums.",
    "The show was a flop from the very start.",
    "A saw is a tool used for making boards.",
    "The wagon moved on well oiled wheels.",
    "March the soldiers past the next hill.",
    "A cup of sugar makes sweet fudge.",
    "Place a rosebush near the porch steps.",
    "Both lost their lives in the raging storm.",
    # List 7
    "We talked of the side show in the circus.",
    "Use a pencil to write the first draft.",
    "He ran half way to the hardware store.",
    "The clock struck to mark the third period.",
    "A small creek cut across the field.",
    "Cars and busses stalled in snow drifts.",
    "The set of china hit the floor with a crash.",
    "This is a grand season for hikes on the road.",
    "The dune rose from the edge of the water.",
    "Those words were the cue for the actor to leave.",
    # List 8
    "A yacht slid around the point into the bay.",
    "The two met while playing on the sand.",
    "The ink stain dried on the finished page.",
    "The walled town was seized without a fight.",
    "The lease ran out in sixteen weeks.",
    "A tame squirrel makes a nice pet.",
    "The horn of the car woke the sleeping cop.",
    "The heart beat strongly and with firm strokes.",
    "The pearl was worn in a thin silver ring.",
    "The fruit peel was cut in thick slices.",
    # List 9
    "The Navy attacked the big task force.",
    "See the cat glaring at the scared mouse.",
    "There are more than two factors here.",
    "The hat brim was wide and too droopy.",
    "The lawyer tried to lose his case.",
    "The grass curled around the fence post.",
    "Cut the pie into large parts.",
    "Men strive but seldom get rich.",
    "Always close the barn door tight.",
    "He lay prone and hardly moved a limb.",
    # List 10
    "The slush lay deep along the street.",
    "A wisp of cloud hung in the blue air.",
    "A pound of sugar costs more than eggs.",
    "The fin was sharp and cut the clear water.",
    "The play seems dull and quite stupid.",
    "Bail the boat to stop it from sinking.",
    "The term ended in late June that year.",
    "A tusk is used to make costly gifts.",
    "Ten pins were set in order.",
    "The bill was paid every third week.",
)

# Constants of speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3

#: Leading/trailing audio quieter than this (dBFS, per 10 ms frame) is trimmed off a synthesised clip ...
TRIM_THRESHOLD_DB = -50.0
#: ... except for this margin, so the first and last phonemes keep their natural onset and decay.
TRIM_MARGIN_S = 0.05

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` of speak_lib.h (only read, to list the installed voices in error messages)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_LOCK = threading.Lock()
_CHUNKS: list[np.ndarray] = []
_LIBRARY_PATH: str | None = None
_VERSION: str | None = None


def _on_audio(wav: ctypes._Pointer, numsamples: int, events: int | None) -> int:
    if wav and numsamples > 0:
        _CHUNKS.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
    return 0  # 0 = go on synthesising


#: Module-level, so the C side never calls a garbage-collected thunk.
_CALLBACK = _SynthCallback(_on_audio)


def _seed_c_rand(seed: int) -> None:
    """Seed the C library's ``rand()`` (breath noise) and espeak-ng's own generator, where available."""
    try:
        libc = ctypes.CDLL(None)
        libc.srand.argtypes = [ctypes.c_uint]
        libc.srand(seed)
    except (OSError, TypeError, AttributeError):  # no process-wide C library handle (Windows)
        pass


def _library_path() -> str:
    """A private copy of the bundled library (else the original), so no other loader keeps it mapped.

    Unloading only resets the library's static state if nobody else holds it open; a copy under its own
    name is ours alone. Where the temporary folder does not allow loading code (``noexec``) the original
    is used, which is equally fresh unless another component of the process has loaded it.
    """
    global _LIBRARY_PATH
    if _LIBRARY_PATH is None:
        import espeakng_loader

        original = espeakng_loader.get_library_path()
        _LIBRARY_PATH = original
        folder = Path(tempfile.mkdtemp(prefix="aeflow-espeak-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        copy = folder / Path(original).name
        try:
            shutil.copyfile(original, copy)
            _unload(ctypes.CDLL(str(copy)))
            _LIBRARY_PATH = str(copy)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
    return _LIBRARY_PATH


def _unload(lib: ctypes.CDLL) -> None:
    close = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary  # POSIX / Windows
    close(lib._handle)


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of the speak_lib.h functions used here."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))


@contextlib.contextmanager
def _fresh_engine() -> Iterator[tuple[ctypes.CDLL, int, Path]]:
    """Load and initialise libespeak-ng; terminate and unload it afterwards (call with ``_LOCK`` held).

    Yields:
        The library, its output sample rate (22050 Hz) and its data folder.
    """
    global _VERSION
    import espeakng_loader

    try:
        data_path = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(_library_path())
    except (OSError, RuntimeError) as exc:
        raise DataError(
            f"libespeak-ng could not be loaded ({exc}). Fix: reinstall espeakng-loader "
            "(pip install --force-reinstall espeakng-loader), or use speech.ingest.source: dir or fsdd."
        ) from None
    try:
        _declare(lib)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), 0)
        if rate <= 0:
            raise DataError(
                f"libespeak-ng failed to initialise with data {data_path} (code {rate}). "
                "Fix: reinstall espeakng-loader, or use speech.ingest.source: dir or fsdd."
            )
        try:
            _VERSION = (lib.espeak_Info(None) or b"").decode(errors="replace")
            lib.espeak_SetSynthCallback(_CALLBACK)
            yield lib, int(rate), data_path
        finally:
            lib.espeak_Terminate()
    finally:
        _unload(lib)


def _english_voices(lib: ctypes.CDLL) -> list[str]:
    """Names ``espeak_SetVoiceByName`` accepts for the English voices (the identifiers' file names)."""
    names = []
    voices = lib.espeak_ListVoices(None)
    i = 0
    while voices[i]:
        voice = voices[i].contents
        # ``languages`` is a priority byte followed by the language name.
        if voice.languages and voice.languages[1:].startswith(b"en") and voice.identifier:
            names.append(voice.identifier.decode().rsplit("/", 1)[-1].lower())
        i += 1
    return sorted(set(names))


def _variants(data_path: Path) -> list[str]:
    """The plain male/female variants (``m1``…, ``f1``…) shipped in ``voices/!v``."""
    folder = data_path / "voices" / "!v"
    found = [f.name for f in folder.iterdir() if re.fullmatch(r"[mf]\d+", f.name)] if folder.is_dir() else []
    return sorted(found, key=lambda n: (n[0], int(n[1:])))


def espeak_version() -> str:
    """Version string of the bundled libespeak-ng, e.g. ``1.52.0`` (for provenance in ``info.json``)."""
    with _LOCK:
        if _VERSION is None:
            with _fresh_engine():
                pass
        return _VERSION or "unknown"


def file_safe(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``-``.

    Clip ids become file names, and ``+`` (voice variants), spaces or colons are awkward or invalid on some
    file systems; a leading dot would make the file hidden.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    return "_" + safe if safe.startswith(".") or not safe else safe


def _unknown_voice(lib: ctypes.CDLL, data_path: Path, voice: str, why: str) -> DataError:
    return DataError(
        f"espeak voice {voice!r}: {why}. Fix: use a voice name that `espeak-ng --voices` lists, e.g. "
        f"{', '.join(_english_voices(lib))}, optionally followed by a variant "
        f"(+{', +'.join(_variants(data_path))}), as in 'en-us+m1'."
    )


def _trim(x: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading/trailing frames below ``TRIM_THRESHOLD_DB``, keeping ``TRIM_MARGIN_S`` around speech."""
    frame = max(1, rate // 100)
    n = len(x) // frame
    if n == 0:
        return x
    power = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    loud = np.flatnonzero(power > 10 ** (TRIM_THRESHOLD_DB / 10))
    if len(loud) == 0:
        return x[:0]
    margin = round(TRIM_MARGIN_S * rate)
    start = max(0, loud[0] * frame - margin)
    stop = min(len(x), (loud[-1] + 1) * frame + margin)
    return x[start:stop]


def synthesize(text: str, voice: str, rate_wpm: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng ``voice`` (``name`` or ``name+variant``): float32 mono and its rate.

    Leading and trailing silence is trimmed (see ``TRIM_THRESHOLD_DB``) so a clip starts with speech.
    The output is deterministic: the same arguments give the same samples.

    Raises:
        DataError: the voice or its variant is unknown, or espeak-ng produced no audible output.
    """
    base, _, variant = voice.partition("+")
    data = text.encode("utf-8")
    with _LOCK, _fresh_engine() as (lib, rate, data_path):
        if not base:
            raise _unknown_voice(lib, data_path, voice, "no voice name before the variant")
        if variant and not (data_path / "voices" / "!v" / variant).is_file():
            # espeak-ng silently ignores an unknown variant, which would merge two "speakers" into one.
            raise _unknown_voice(
                lib, data_path, voice, f"espeak-ng {_VERSION} has no voice variant {variant!r}"
            )
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise _unknown_voice(lib, data_path, voice, f"espeak-ng {_VERSION} has no voice {base!r}")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(rate_wpm), 0)
        lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        seed = zlib.crc32(f"{voice}|{rate_wpm}|{pitch}|{text}".encode())
        _seed_c_rand(seed)
        if hasattr(lib, "espeak_ng_SetRandSeed"):  # espeak-ng >= 1.52
            lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        _CHUNKS.clear()
        try:
            code = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            chunks = list(_CHUNKS)
        finally:
            _CHUNKS.clear()
    if code != 0:
        raise DataError(f"espeak-ng failed to synthesise {text!r} with voice {voice!r} (error code {code}).")
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    x = _trim(samples.astype(np.float32) / 32768.0, rate)
    if len(x) == 0:
        raise DataError(
            f"espeak-ng produced no audible speech for {text!r} with voice {voice!r}. "
            "Fix: use text with pronounceable words, or another voice."
        )
    return x, rate


def espeak_corpus(
    speakers: Sequence[str],
    n_sentences: int,
    rates_wpm: Sequence[int],
    pitches: Sequence[int],
    seed: int,
) -> list[tuple[str, str, str, np.ndarray, int]]:
    """Synthesise ``n_sentences`` per speaker: the seed phrase, then the first Harvard sentences.

    Each sentence gets a speaking rate and pitch drawn from ``rates_wpm``/``pitches`` by a generator seeded
    with ``(seed, speaker index)``, so a speaker's prosody varies between sentences (closer to a real
    speaker) while the corpus stays reproducible and adding a speaker does not change the others.

    Returns:
        ``(clip_id, speaker, text, audio, rate)`` per sentence, speakers in the given order; ``clip_id`` is
        ``<speaker>_s<index>`` made file-safe, e.g. ``en-us-m1_s003``.

    Raises:
        DataError: more sentences than available, an empty rate/pitch list, or a bad voice.
    """
    available = len(HARVARD_SENTENCES) + 1
    if n_sentences > available:
        raise DataError(
            f"espeak corpus: {n_sentences} sentences per speaker requested, but only {available} exist "
            f"(the seed phrase + {len(HARVARD_SENTENCES)} Harvard sentences). "
            f"Fix: set speech.ingest.espeak_sentences to at most {available}, or add speakers instead."
        )
    if not rates_wpm or not pitches:
        raise DataError("espeak corpus: espeak_rates_wpm and espeak_pitches each need at least one value.")
    sentences = [SEED_PHRASE, *HARVARD_SENTENCES[: n_sentences - 1]]
    out = []
    for index, speaker in enumerate(speakers):
        rng = np.random.default_rng([seed, index])
        for i, text in enumerate(sentences):
            rate_wpm = int(rates_wpm[rng.integers(len(rates_wpm))])
            pitch = int(pitches[rng.integers(len(pitches))])
            audio, rate = synthesize(text, speaker, rate_wpm=rate_wpm, pitch=pitch)
            out.append((file_safe(f"{speaker}_s{i:03d}"), speaker, text, audio, rate))
    return out
