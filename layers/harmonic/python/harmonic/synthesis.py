"""A keyword's spelling spoken by synthetic voices: examples a keyword registered by its text is matched by.

Why: a keyword registered by its spelling alone was searched only by PocketSphinx, whose acoustic model finds
almost no keyword said by a formant synthesizer, and a keyword registered from one example has one voice's
speech embeddings to compare. Speaking the spelling in several voices at registration, and keeping each
rendering's speech embeddings (harmonic.speech_embedding) as further examples of the keyword, gives every
keyword by text the embedding evidence an example gives, from several voices. It is the data side of the
speech embedding's own training (J. Lin et al., "Training keyword spotters with limited and synthesized
speech data", ICASSP 2020: the same network, its keyword heads trained on synthesized speech). Measured in
docs/matching.md, "Synthesized examples".

The voices are eSpeak NG's (formant synthesis) through its C library as the ``espeakng-loader`` wheel ships
it (libespeak-ng 1.52 and its data, manylinux x86_64 and aarch64; the speech layer), called by ctypes in
synchronous mode, **in a child process** (this file run as a script; it imports nothing but the standard
library there): the library keeps state from one utterance to the next (reseeding its random generator and
libc's, even initialising it again, does not reset it all), so only a fresh process gives the same samples
for the same text, which makes a registration and a rebuild of it repeatable; and a fault in the C library
fails one child (RuntimeError), not the function. About 40 ms for the process, 5 ms per voice. eSpeak NG is
GPL-3.0-or-later; the wheel is installed from PyPI into the deployer's own layer, never copied into this
repository.

Deviations: the library speaks at 22,050 Hz and its output is resampled to 16 kHz (harmonic.resample). The
voices (``VOICES``) are variants that no split of ``make eval`` enrols, queries or babbles with, so that the
eval's speakers stay unheard by the patterns.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: (eSpeak NG voice, words per minute, pitch 0-99): eight variants of five accents, none of them a voice of
#: any split or babble bed of ``make eval`` (scripts/make_xspeaker_testdata.py; a unit test checks). Eight
#: were chosen on the eval's tuned split, among the first 2, 4, 6 or 8 of this list (docs/matching.md).
VOICES: tuple[tuple[str, int, int], ...] = (
    ("en-us+m1", 150, 50),
    ("en-us+f3", 160, 60),
    ("en+m3", 140, 40),  # "en" is British English (the CLI's "en-gb")
    ("en+f1", 155, 55),
    ("en-gb-x-rp+m4", 165, 45),
    ("en-us+klatt2", 145, 50),
    ("en-gb-scotland+m6", 150, 35),
    ("en-029+f5", 170, 65),
)
#: Background speech a keyword's synthesized examples are calibrated against (:func:`background_level`):
#: twelve everyday sentences, each said by four more eSpeak NG variants that neither ``VOICES`` nor any split,
#: babble bed or unseen babble bed of ``make eval`` uses, none of them saying a keyword or a sentence of the
#: eval (unit tests check). The constants that read the level (logic.patterns.SYNTHESIZED_OFFSET) were
#: fitted with this set, on the eval's tuned split alone (docs/matching.md, "Calibrated synthesized
#: evidence"): change it, and they must be fitted again.
BACKGROUND_TEXTS: tuple[str, ...] = (
    "the committee will publish its findings after the summer recess",
    "our neighbours painted their fence a bright shade of green",
    "a small boat drifted slowly towards the rocky shore",
    "the librarian stamped every book with the date of return",
    "please remember to water the tomatoes while we are away",
    "the driver slowed down when he saw the flashing signal",
    "four ducks walked in a line across the wet grass",
    "she found an old photograph hidden inside the piano",
    "the price of coffee went up again last month",
    "they built a wooden bridge over the narrow stream",
    "nobody could explain why the clock had stopped at noon",
    "the children played football until it grew dark",
)
BACKGROUND_VOICES: tuple[tuple[str, int, int], ...] = (
    ("en-us+m7", 155, 45),
    ("en+f4", 165, 60),
    ("en-us+klatt4", 150, 50),
    ("en-gb-x-rp+m8", 145, 40),
)
#: The longest text spoken (characters): a keyword or short phrase (phonetic.pronounce_text: 8 words).
MAX_TEXT = 400
#: How long the child process may take before the synthesis is abandoned (seconds).
TIMEOUT_S = 30.0

_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SEED = 1
_UNKNOWN_VOICE = 3  # the child's exit status for a voice eSpeak NG lacks
_UNAVAILABLE = 4  # ... and for a library that is not installed


class SynthesisUnavailable(RuntimeError):
    """The eSpeak NG library is not installed here (the speech layer is absent: python_runtime 3.12)."""


def available() -> bool:
    """Whether the eSpeak NG library is installed here (checked without loading it)."""
    import importlib.util

    return importlib.util.find_spec("espeakng_loader") is not None


def speak_all(
    text: str, voices: tuple[tuple[str, int, int], ...] = VOICES, sr: int = 16_000
) -> list[np.ndarray]:
    """``text`` spoken by each of ``voices`` ((eSpeak NG voice, words per minute, pitch 0-99), e.g.
    ``("en-us+m1", 150, 50)``), each mono float32 in -1..1 at ``sr``, in one fresh child process.

    ValueError for an empty or over-long text, a rate or pitch out of range, or a voice eSpeak NG lacks
    (named); SynthesisUnavailable where the library is not installed; RuntimeError when the child fails.
    """
    import numpy as np

    if not text.strip() or len(text) > MAX_TEXT:
        raise ValueError(f"text to speak must be 1 to {MAX_TEXT} characters; got {len(text)}")
    for voice, rate, pitch in voices:
        if not 80 <= rate <= 450 or not 0 <= pitch <= 99:
            raise ValueError(
                f"rate must be 80-450 words per minute and pitch 0-99; got {rate}, {pitch} ({voice})"
            )
    if not available():
        raise SynthesisUnavailable("espeakng-loader is not installed (the speech layer; python_runtime 3.13)")
    request = json.dumps({"text": text, "voices": [list(v) for v in voices]}).encode()
    try:
        child = subprocess.run(
            # -P: the script's directory (this package) is not put on the child's path; the parent's path is,
            # so the child finds espeakng_loader wherever the parent does (a Lambda layer's /opt/python)
            [sys.executable, "-P", str(Path(__file__).resolve())],
            input=request,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as slow:
        raise RuntimeError(f"eSpeak NG took over {TIMEOUT_S:.0f} s to speak {len(text)} characters") from slow
    message = child.stderr.decode("utf-8", "replace").strip()[-500:]
    if child.returncode == _UNKNOWN_VOICE:
        raise ValueError(message)
    if child.returncode == _UNAVAILABLE:
        raise SynthesisUnavailable(message)
    if child.returncode != 0:
        raise RuntimeError(f"eSpeak NG failed (exit status {child.returncode}): {message}")
    rate, renderings = _read_renderings(child.stdout, len(voices))
    out = []
    for raw in renderings:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        if sr != rate and samples.size:
            from harmonic.resample import resample

            samples = resample(samples, rate, sr).astype(np.float32)
        out.append(samples)
    return out


def speak(text: str, voice: str, rate: int = 160, pitch: int = 50, sr: int = 16_000) -> np.ndarray:
    """``text`` spoken by one eSpeak NG ``voice`` (:func:`speak_all`)."""
    return speak_all(text, ((voice, rate, pitch),), sr)[0]


def spoken_examples(text: str, whisper: bool = True) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """What a keyword registered by its text keeps as its synthesized examples: ``text`` spoken by every one
    of ``VOICES``, each rendering's speech embeddings (harmonic.templates.example_embedding) and, with
    ``whisper``, its Whisper encoder rows (harmonic.templates.example_whisper_rows), rendering by rendering.

    About 0.25 s for a word (the child process and synthesis ~0.08 s, the embedding network the rest) and
    ~0.2 s more for the encoder rows (eight encodings). A rendering without speech enough to embed
    (InvalidAudio) is left out of both.
    """
    from harmonic import InvalidAudio
    from harmonic.templates import example_embedding, example_whisper_rows

    embeddings, rows = [], []
    for samples in speak_all(text):
        try:
            embedding = example_embedding(samples, 16_000)
        except InvalidAudio:
            continue
        embeddings.append(embedding)
        encoded = example_whisper_rows(samples, 16_000) if whisper else None
        if encoded is not None:
            rows.append(encoded)
    return tuple(embeddings), tuple(rows)


#: The background as scripts/make_synthesis_background.py computed it (:func:`synthesize_background`, 48
#: sentences' speech embeddings, 0.65 MB), so that the first keyword registered by its text after a cold start
#: does not pay for twelve child processes and 48 sentences through the network (2-5 s). A unit test holds it
#: to a fresh synthesis; :func:`background` synthesizes afresh when it is absent, unreadable, or was made for
#: other texts or voices than ``BACKGROUND_TEXTS`` and ``BACKGROUND_VOICES``.
BACKGROUND_FILE = Path(__file__).with_name("synthesis_background.npz")


@lru_cache(maxsize=1)
def background() -> tuple[tuple[str, np.ndarray], ...]:
    """Every BACKGROUND_TEXTS sentence said by every BACKGROUND_VOICES voice: (the sentence, its speech
    embeddings (harmonic.speech_embedding.embed)), sentence by sentence, voice by voice; read from
    :data:`BACKGROUND_FILE` (a few milliseconds) or, where that cannot be used, synthesized once per process
    (:func:`synthesize_background`; SynthesisUnavailable and RuntimeError as :func:`speak_all`)."""
    stored = stored_background()
    return stored if stored is not None else synthesize_background()


def synthesize_background() -> tuple[tuple[str, np.ndarray], ...]:
    """The background of :func:`background`, computed: 12 child processes and 48 sentences through the
    network (2-5 s)."""
    from harmonic.speech_embedding import embed

    out = []
    for text in BACKGROUND_TEXTS:
        for samples in speak_all(text, BACKGROUND_VOICES):
            out.append((text, embed(samples, 16_000)))
    return tuple(out)


def _voice_labels() -> list[str]:
    return [f"{voice}|{rate}|{pitch}" for voice, rate, pitch in BACKGROUND_VOICES]


def save_background(path: Path, background: tuple[tuple[str, np.ndarray], ...]) -> None:
    """Write ``background`` (as :func:`synthesize_background` returns it) to ``path`` (.npz; no pickle):
    the texts and voices it was made for, each sentence's number of embedding rows, and the rows."""
    import numpy as np

    np.savez_compressed(
        path,
        texts=np.array(BACKGROUND_TEXTS),
        voices=np.array(_voice_labels()),
        lengths=np.array([embeddings.shape[0] for _, embeddings in background], dtype=np.int64),
        embeddings=np.concatenate([embeddings for _, embeddings in background]).astype(np.float32),
    )


def stored_background(path: Path | None = None) -> tuple[tuple[str, np.ndarray], ...] | None:
    """The background read from ``path`` (default :data:`BACKGROUND_FILE`); None when the file is absent or
    unreadable, was made for other texts or voices than the constants name, or its rows do not add up (a
    stale or damaged file is never used)."""
    import zipfile
    import zlib

    import numpy as np

    from harmonic.speech_embedding import DIMENSIONS

    try:
        with np.load(path or BACKGROUND_FILE, allow_pickle=False) as data:
            texts, voices = [str(t) for t in data["texts"]], [str(v) for v in data["voices"]]
            lengths, embeddings = data["lengths"], data["embeddings"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error):
        return None
    if texts != list(BACKGROUND_TEXTS) or voices != _voice_labels():
        return None
    sentences = [text for text in texts for _ in voices]
    if (
        lengths.dtype.kind not in "iu"
        or embeddings.dtype.kind != "f"
        or lengths.shape != (len(sentences),)
        or embeddings.ndim != 2
        or embeddings.shape[1] != DIMENSIONS
        or int(lengths.min(initial=1)) < 1
        or int(lengths.sum()) != embeddings.shape[0]
        or not np.all(np.isfinite(embeddings))
    ):
        return None
    rows = np.split(embeddings.astype(np.float32), np.cumsum(lengths)[:-1])
    return tuple(zip(sentences, rows, strict=True))


def background_level(examples: tuple[np.ndarray, ...], words: list[str]) -> float:
    """Where a keyword's synthesized ``examples`` stand on background speech: over the background sentences
    (:func:`background`) that do not say the keyword (its ``words`` in a row), their best score on each
    sentence (harmonic.speech_embedding.best_scores, the best of the examples as at match time), its mean
    plus one standard deviation.

    Why: a short word or a common sound (``stop``) finds something like itself in any sentence, a long one
    (``activate``) seldom; one fixed neutral point lets the first through on sentences without it and holds
    the second back. Measured from the same examples against the same background for every keyword, the
    point means the same for all of them: a score normalization against a background, as cohort
    normalization is in speaker verification (docs/matching.md, "Calibrated synthesized evidence").
    ValueError without examples, or when every sentence says the keyword.
    """
    import numpy as np

    from harmonic.speech_embedding import best_scores

    if not examples:
        raise ValueError("a background level needs at least one synthesized example")
    keyword = f" {' '.join(words).lower()} "
    best = [
        float(np.max(best_scores(embeddings, list(examples))))
        for sentence, embeddings in background()
        if keyword not in f" {sentence} "
    ]
    if not best:
        raise ValueError(f"every background sentence says {keyword.strip()!r}")
    return float(np.mean(best) + np.std(best))


def _read_renderings(data: bytes, expected: int) -> tuple[int, list[bytes]]:
    """The child's output: its sample rate, then per voice a sample count and that many int16 samples."""
    if len(data) < 8:
        raise RuntimeError("eSpeak NG's child process wrote no header")
    rate, count = struct.unpack_from("<II", data, 0)
    if count != expected or not 8_000 <= rate <= 48_000:
        raise RuntimeError(f"eSpeak NG's child process wrote {count} renderings at {rate} Hz")
    offset, out = 8, []
    for _ in range(count):
        if offset + 4 > len(data):
            raise RuntimeError("eSpeak NG's child process output is truncated")
        (samples,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if offset + 2 * samples > len(data):
            raise RuntimeError("eSpeak NG's child process output is truncated")
        out.append(data[offset : offset + 2 * samples])
        offset += 2 * samples
    return rate, out


def _child() -> int:
    """Run as a script: read the request from stdin, speak it, write the renderings to stdout."""
    try:
        import espeakng_loader
    except ImportError:
        sys.stderr.write("espeakng-loader is not installed (the speech layer; python_runtime 3.13)")
        return _UNAVAILABLE
    request = json.loads(sys.stdin.buffer.read())
    library: Any = ctypes.CDLL(espeakng_loader.get_library_path())
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    library.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
    library.espeak_Synth.argtypes += [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = library.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if rate <= 0:
        sys.stderr.write(f"espeak_Initialize failed ({rate})")
        return 1
    chunks: list[bytes] = []

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
    def receive(wave: Any, count: int, _events: Any) -> int:
        if count > 0 and wave:
            chunks.append(ctypes.string_at(wave, 2 * count))
        return 0  # go on

    library.espeak_SetSynthCallback(receive)
    text = request["text"].encode("utf-8")
    out = [struct.pack("<II", rate, len(request["voices"]))]
    for voice, words_per_minute, pitch in request["voices"]:
        if library.espeak_SetVoiceByName(str(voice).encode()) != 0:
            sys.stderr.write(f"eSpeak NG has no voice {voice!r}")
            return _UNKNOWN_VOICE
        library.espeak_SetParameter(_RATE, int(words_per_minute), 0)
        library.espeak_SetParameter(_PITCH, int(pitch), 0)
        library.espeak_ng_SetRandSeed(_SEED)
        chunks.clear()
        buffer = ctypes.create_string_buffer(text)
        status = library.espeak_Synth(buffer, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            sys.stderr.write(f"espeak_Synth failed ({status}) for voice {voice!r}")
            return 1
        library.espeak_Synchronize()
        raw = b"".join(chunks)
        out += [struct.pack("<I", len(raw) // 2), raw]
    sys.stdout.buffer.write(b"".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
