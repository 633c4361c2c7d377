"""Keyword spotting with CMU PocketSphinx's acoustic model: keywords by spelling or by example (optional).

This module needs ``pocketsphinx==5.1.1`` (BSD-style licence; wheels for CPython 3.11 and 3.13, none for
3.12) and uses only the en-us model bundled in its wheel (acoustic model, cmudict and the phone language
model; the 26 MB word language model is never loaded). Nothing is downloaded. It is imported lazily, so
``import harmonic`` stays numpy + scipy only; :func:`available` says whether it can be used here.

A keyword is a list of **pronunciations** (ARPAbet phone strings as in cmudict, e.g. ``"W EH DH ER"``):

- by spelling: :func:`pronounce` looks the word (or each word of a phrase) up in the bundled cmudict;
- by example: :func:`phones_of_example` decodes a recording of the keyword into phones with PocketSphinx's
  phone-loop search (``allphone`` with the bundled phone bigram), i.e. what the acoustic model, trained on
  recorded speech, hears; the speaker's voice is not kept, only the phones.

:class:`KeywordSpotter` searches a query for every pronunciation of every keyword with PocketSphinx's
keyphrase search (``kws``): each keyphrase's HMM runs against a phone-loop background model, and a detection
is reported where the keyphrase beats the background. ``Match.score`` is :func:`frame_score`: the
detection's log likelihood ratio against the background *per frame*, in 0..1 (a sum over the keyword's
frames would favour short keywords; ranking by it raised top-1 on the tuned split from 0.57 to 0.72 clean).
A query whose background is stationary noise is denoised first (:func:`stationary_noise`); measurements and
the choice of constants: docs/matching.md.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from harmonic._samples import as_mono_float64
from harmonic.errors import InvalidAudio
from harmonic.matching import Match

SR = 16_000
FRAME_S = 0.01
#: Keyphrase threshold of the search itself: permissive, so that every plausible detection is scored.
SEARCH_THRESHOLD = 1e-40
#: Least :func:`frame_score` of a match (-50 log units per frame). Chosen on the "tuned" split of
#: bench/eval_keywords.py: about 5 % false accepts clean and in white noise at 10 dB (docs/matching.md).
DEFAULT_MIN_SCORE = 0.5
#: PocketSphinx's own default keyphrase threshold (the "untuned" anchor).
UNTUNED_THRESHOLD = 1e-30
_NOISE_PHONES = {"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+", "+UM+", "+UH+", "+SMACK+"}
#: The en-us acoustic model's phones (cmudict's ARPAbet without stress marks): what a pronunciation may hold.
PHONES = frozenset(
    {
        *("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH"),
        *("IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V"),
        *("W", "Y", "Z", "ZH"),
    }
)
_ENGLISH_WORD = re.compile(r"^[a-z]+(?:'[a-z]+)*$")
#: Bounds of a keyword (an artifact or a request beyond them is refused, never searched).
MAX_WORDS = 8
MAX_PRONUNCIATIONS = 16
MAX_PHONES = 64
MAX_EMBEDDING_ROWS = 256  # an example's speech embeddings: one row per 80 ms, 20 s at most
MAX_SYNTHESIZED = 16  # synthesized examples a keyword keeps (harmonic.synthesis.VOICES: 8)
MAX_WHISPER_ROWS = 4 * MAX_EMBEDDING_ROWS  # an example's Whisper encoder rows: one per 20 ms, 20 s at most
#: Least voiced audio (seconds, by harmonic.f0) an example must hold to count as speech.
MIN_VOICED_S = 0.08
#: A held note (:func:`longest_note_seconds`): the pitch moves by less than this many cents from one 10 ms
#: frame to the next. Chosen with NOTE_MIN_S on the "tuned" material of bench/eval_speech_check.py (tuned
#: speech, also under mains hum and white noise; synth_music and the bench's instrument generator, seeds
#: 0-49): 2 refused the most music at no speech refused (1.5: 4 points less of synth_music; 3: a tuned
#: word under -20 dB hum held a 0.11 s "note").
NOTE_MAX_CENTS_PER_FRAME = 2.0
#: Frames of a held note are within this many dB of the example's loudest frame: a mains hum under the
#: pauses of a spoken word is steady but faint (60 Hz hum at -20 dB held 0.11 s "notes" without this gate,
#: 0.07 s with it; the music refused on "tuned" did not change).
NOTE_MAX_DB_BELOW_PEAK = 15.0
#: An example whose pitch holds one note this long (seconds) is music. The longest in tuned speech was
#: 0.05 s (0.07 s under -20 dB hum): twice that. 0.12 s would refuse about 4 points less of tuned
#: synth_music.
NOTE_MIN_S = 0.10


def available() -> bool:
    """Whether pocketsphinx (and its bundled model) can be imported here."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _model() -> dict[str, str]:
    from pocketsphinx import get_model_path

    return {
        "hmm": get_model_path("en-us/en-us"),
        "dict": get_model_path("en-us/cmudict-en-us.dict"),
        "phone_lm": get_model_path("en-us/en-us-phone.lm.bin"),
    }


@cache
def _dictionary() -> dict[str, str]:
    """cmudict as bundled: word → first pronunciation (variants ``word(2)`` are skipped)."""
    entries: dict[str, str] = {}
    with open(_model()["dict"], encoding="utf-8") as handle:
        for line in handle:
            word, _, phones = line.strip().partition(" ")
            if word and "(" not in word:
                entries[word] = phones.strip()
    return entries


def pronounce(text: str) -> str | None:
    """The cmudict pronunciation of a word or phrase (phones joined by spaces), as :func:`pronounce_text`
    gives it; None where that refuses the text (a word missing or not English, no word, too long)."""
    try:
        return pronounce_text(text)
    except UnknownWords:
        return None


class UnknownWords(ValueError):
    """Text that cannot be pronounced: ``words`` are the words the dictionary lacks (or that are not English
    words at all), in order."""

    def __init__(self, words: Sequence[str], message: str) -> None:
        super().__init__(message)
        self.words = list(words)


def keyword_words(text: str) -> list[str]:
    """The words of a keyword's spelling as :func:`pronounce_text` looks them up: split at spaces and
    hyphens ("check-in" is two), stripped of punctuation, lower case."""
    tokens = [token.strip('.,;:!?"()[]{}').lower() for token in re.split(r"[\s-]+", text)]
    return [token for token in tokens if token]


def pronounce_text(text: str) -> str:
    """The pronunciation of a keyword given by its spelling (one to ``MAX_WORDS`` English words).

    Raises :class:`UnknownWords` naming every word the bundled cmudict lacks, and every word that is not
    written in English letters (the only model bundled is en-us): such a keyword has to be registered from
    an example instead.
    """
    tokens = keyword_words(text)
    if not tokens:
        raise UnknownWords([], "text holds no word")
    if len(tokens) > MAX_WORDS:
        raise UnknownWords([], f"text has {len(tokens)} words; a keyword has at most {MAX_WORDS}")
    foreign = [token for token in tokens if not _ENGLISH_WORD.match(token)]
    if foreign:
        raise UnknownWords(
            foreign,
            f"{', '.join(repr(word) for word in foreign)} "
            f"{'is not an English word' if len(foreign) == 1 else 'are not English words'} (the only model "
            "here is en-us): register the keyword from an example (audio) instead",
        )
    missing = [token for token in tokens if token not in _dictionary()]
    if missing:
        raise UnknownWords(
            missing,
            f"the pronouncing dictionary (CMUdict) has no {', '.join(repr(word) for word in missing)}: "
            "register the keyword from an example (audio) instead",
        )
    phones = " ".join(_dictionary()[token] for token in tokens)
    if len(phones.split()) > MAX_PHONES:
        raise UnknownWords(
            [], f"text is {len(phones.split())} phones long; a keyword is at most {MAX_PHONES} phones"
        )
    return phones


def _pitch_track(y: np.ndarray, sr: int) -> tuple[np.ndarray, int, int]:
    """harmonic.f0 at 60-500 Hz on 10 ms hops; the track, the hop and the frame length (samples)."""
    from harmonic.pitch import f0

    hop = max(1, round(sr * FRAME_S))
    frame = 1 << int(np.ceil(np.log2(sr * 0.064)))  # 64 ms or more: two periods of 60 Hz and then some
    return f0(y, sr, fmin=60.0, fmax=500.0, frame_length=frame, hop_length=hop), hop, frame


def voiced_seconds(samples: np.ndarray, sr: int) -> float:
    """How many seconds of ``samples`` carry a pitch (harmonic.f0, 60-500 Hz): speech has some, silence
    and noise none."""
    track, hop, _ = _pitch_track(as_mono_float64(samples, name="voiced_seconds"), sr)
    return _voiced(track, hop, sr)


def _voiced(track: np.ndarray, hop: int, sr: int) -> float:
    return float(np.count_nonzero(~np.isnan(track)) * hop / sr)


def longest_note_seconds(samples: np.ndarray, sr: int) -> float:
    """The longest stretch (seconds) over which the pitch of ``samples`` holds one note: music has notes,
    speech glides.

    Speech/music discrimination by pitch stability, after Zhang & Kuo (2001, "Audio content analysis for
    online audiovisual data segmentation and classification", IEEE Trans. Speech Audio Process. 9(4)):
    an instrument holds each note at a fixed frequency, so its fundamental (and its spectral peak tracks)
    stay level for the length of the note, whereas the pitch of speech moves continuously within every
    syllable. Here: the f0 track of :func:`voiced_seconds` (harmonic.f0, 10 ms hops); a frame continues a
    note when it and the previous frame are voiced, within ``NOTE_MAX_DB_BELOW_PEAK`` of the loudest frame
    (energy over the f0 analysis frame), and the pitch moved by less than ``NOTE_MAX_CENTS_PER_FRAME``;
    the result is the longest run of such frames.

    Deviations from Zhang & Kuo: one feature instead of their rule set (energy, zero-crossing rate, f0,
    spectral peak tracks), because an example is a single short clip, not a stream to segment; only the
    f0 track, not the peak tracks of every partial (on the tuned material, spectral peaks of speech above
    400 Hz stayed in one 16 Hz bin for up to 0.45 s, so peak tracks did not separate short clips); no
    semitone grid and no vibrato model, so a note with vibrato (its pitch moving by more than 2 cents per
    10 ms) is not held, and a chord whose f0 is not found is unvoiced.
    """
    y = as_mono_float64(samples, name="longest_note_seconds")
    return _longest_note(y, sr, *_pitch_track(y, sr))


def _longest_note(y: np.ndarray, sr: int, track: np.ndarray, hop: int, frame: int) -> float:
    pad = frame // 2
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(np.pad(y, pad)))])
    starts = np.arange(track.size) * hop  # frame t covers padded samples [t·hop, t·hop + frame), as f0
    energy = cumulative[np.minimum(starts + frame, cumulative.size - 1)] - cumulative[starts]
    loud = energy >= energy.max() * 10.0 ** (-NOTE_MAX_DB_BELOW_PEAK / 10.0)
    cents = 1200.0 * np.log2(track)  # NaN where unvoiced, and NaN compares False below
    held = (np.abs(np.diff(cents)) < NOTE_MAX_CENTS_PER_FRAME) & loud[1:] & loud[:-1]
    edges = np.diff(held.astype(np.int8), prepend=0, append=0)
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return float(lengths.max(initial=0) * hop / sr)


def check_speech(samples: np.ndarray, sr: int) -> None:
    """Raise :class:`InvalidAudio` unless an example holds speech: at least ``MIN_VOICED_S`` of voiced
    audio, and no held note of ``NOTE_MIN_S`` or more (:func:`longest_note_seconds`). Digital silence and
    noise (white, pink, hiss) have no voiced audio; music holds notes, speech does not.

    Measured by bench/eval_speech_check.py on held-out material: no spoken example refused as music
    (synthetic voices of three engines, also under hum and noise; the ALSA human recordings); music refused:
    90 % of synth_music clips (0.5-10 s), every sox pluck and tremolo melody, 74 % of the bench's
    instrument clips. Missed: fast passages of notes shorter than 0.1 s and notes with vibrato. The voicing
    test misses a word whose pitch glides fast and low (tests/data/keywords/enrol_stop_2.wav)."""
    y = as_mono_float64(samples, name="check_speech")
    if not np.any(y):
        raise InvalidAudio("the example is digital silence: no speech was heard in it")
    track, hop, frame = _pitch_track(y, sr)  # once, for both tests
    voiced = _voiced(track, hop, sr)
    if voiced < MIN_VOICED_S:
        raise InvalidAudio(
            f"no speech was heard in the example ({voiced:.2f} s voiced; at least {MIN_VOICED_S} s is "
            "needed): is it silence or noise?"
        )
    note = _longest_note(y, sr, track, hop, frame)
    if note >= NOTE_MIN_S:
        raise InvalidAudio(
            f"the example sounds like music, not speech: its pitch holds one note for {note:.2f} s "
            f"(spoken pitch glides; {NOTE_MIN_S} s on one pitch is taken for a note)"
        )


@dataclass(frozen=True)
class Keyword:
    """A registered keyword: its spelling (if given), every pronunciation it is searched by, the speech
    embeddings of the example it was registered from (if one was), and those of its spelling spoken by
    synthetic voices (harmonic.synthesis; if it has a spelling and was registered since they are kept).

    Both kinds of example also keep Whisper's encoder rows (harmonic.whisper_encoder), since 2026-12-02.

    Serialized with :mod:`harmonic.serialization` (tag ``HKWD``; arrays ``embedding``, absent without an
    example and in those registered before examples' embeddings were kept, and ``synthesized`` with
    ``synthesized_rows``, the synthesized examples' rows end to end and each one's row count, absent in
    older artifacts; ``synthesized_level`` in its metadata, absent in artifacts from before it was
    measured; ``whisper`` and ``synthesized_whisper`` with ``synthesized_whisper_rows`` (float16), with
    ``whisper_rows`` in the metadata naming what made them (harmonic.whisper_encoder.ROWS: rows another
    encoder depth or centre made are read as none); :meth:`from_bytes` checks every bound and phone, so an
    artifact that is not one raises ValueError.
    """

    text: str | None
    pronunciations: tuple[str, ...]
    #: ``(n, 96)`` unit rows (harmonic.templates.example_embedding); not compared by ``==``
    embedding: np.ndarray | None = field(default=None, compare=False)
    #: ``(n, 96)`` unit rows per synthetic voice that spoke the spelling; not compared by ``==``
    synthesized: tuple[np.ndarray, ...] = field(default=(), compare=False)
    #: where the synthesized examples stand on background speech (harmonic.synthesis.background_level,
    #: 0..1); None without synthesized examples and in keywords registered before it was measured
    synthesized_level: float | None = field(default=None, compare=False)
    #: ``(n, 512)`` Whisper encoder rows of the recorded example (harmonic.templates.example_whisper_rows);
    #: None without an example or in keywords registered before they were kept; not compared by ``==``
    whisper: np.ndarray | None = field(default=None, compare=False)
    #: ``(n, 512)`` Whisper encoder rows per synthetic voice that spoke the spelling; not compared by ``==``
    synthesized_whisper: tuple[np.ndarray, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.pronunciations) <= MAX_PRONUNCIATIONS:
            raise ValueError(f"a keyword has 1 to {MAX_PRONUNCIATIONS} pronunciations")
        if max(len(self.synthesized), len(self.synthesized_whisper)) > MAX_SYNTHESIZED:
            raise ValueError(f"a keyword keeps at most {MAX_SYNTHESIZED} synthesized examples")
        level = self.synthesized_level
        if level is not None and (
            not self.synthesized
            or isinstance(level, bool)
            or not isinstance(level, (int, float))
            or not 0.0 <= level <= 1.0  # also refuses NaN
        ):
            raise ValueError(
                "keyword synthesized_level must be a number in 0..1, and only with synthesized examples"
            )
        for phones in self.pronunciations:
            units = phones.split()
            if not 1 <= len(units) <= MAX_PHONES or not set(units) <= PHONES:
                raise ValueError(f"not a pronunciation of at most {MAX_PHONES} en-us phones: {phones!r}")

    def to_bytes(self) -> bytes:
        from harmonic.serialization import pack

        meta: dict[str, Any] = {"text": self.text, "pronunciations": list(self.pronunciations)}
        if self.synthesized_level is not None:
            meta["synthesized_level"] = float(self.synthesized_level)
        arrays = {} if self.embedding is None else {"embedding": self.embedding.astype("<f4")}
        if self.synthesized:
            arrays["synthesized"] = np.concatenate(self.synthesized).astype("<f4")
            arrays["synthesized_rows"] = np.array([e.shape[0] for e in self.synthesized], dtype="<i4")
        if self.whisper is not None:
            arrays["whisper"] = self.whisper.astype("<f2")
        if self.synthesized_whisper:
            arrays["synthesized_whisper"] = np.concatenate(self.synthesized_whisper).astype("<f2")
            arrays["synthesized_whisper_rows"] = np.array(
                [rows.shape[0] for rows in self.synthesized_whisper], dtype="<i4"
            )
        if self.whisper is not None or self.synthesized_whisper:
            from harmonic.whisper_encoder import ROWS

            meta["whisper_rows"] = ROWS
        return pack(b"HKWD", meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Keyword:
        from harmonic import whisper_encoder
        from harmonic.serialization import unpack
        from harmonic.speech_embedding import checked

        meta, arrays = unpack(data, b"HKWD")
        text, pronunciations = meta.get("text"), meta.get("pronunciations")
        if text is not None and not isinstance(text, str):
            raise ValueError("keyword text is not a string")
        if not isinstance(pronunciations, list) or not all(isinstance(p, str) for p in pronunciations):
            raise ValueError("keyword pronunciations are not a list of strings")
        embedding = arrays.get("embedding")
        if embedding is not None:
            embedding = checked(embedding, "keyword embedding", MAX_EMBEDDING_ROWS)
        whisper = arrays.get("whisper")
        if whisper is not None:
            whisper = whisper_encoder.checked(whisper, "keyword whisper rows", MAX_WHISPER_ROWS)
        synthesized_whisper = _synthesized(
            arrays,
            "synthesized_whisper",
            "keyword synthesized whisper rows",
            MAX_WHISPER_ROWS,
            whisper_encoder.checked,
        )
        # rows another encoder depth or centre made are not comparable with a clip's: read as none
        if meta.get("whisper_rows") != whisper_encoder.ROWS:
            whisper, synthesized_whisper = None, ()
        return cls(
            text,
            tuple(pronunciations),
            embedding,
            _synthesized(arrays, "synthesized", "keyword synthesized examples", MAX_EMBEDDING_ROWS, checked),
            meta.get("synthesized_level"),
            whisper,
            synthesized_whisper,
        )


def _synthesized(
    arrays: dict[str, np.ndarray],
    name: str,
    what: str,
    max_rows: int,
    checked: Callable[[np.ndarray, str, int], np.ndarray],
) -> tuple[np.ndarray, ...]:
    """The synthesized examples' rows of a ``HKWD`` artifact's arrays (array ``name`` and its row counts
    ``{name}_rows``; none in older artifacts), every bound checked (``checked``: the rows' own check) and
    ``what`` named in the ValueError."""
    rows, joined = arrays.get(f"{name}_rows"), arrays.get(name)
    if rows is None and joined is None:
        return ()
    if rows is None or joined is None or rows.ndim != 1 or not 1 <= rows.size <= MAX_SYNTHESIZED:
        raise ValueError(f"{what}: 1 to {MAX_SYNTHESIZED} row counts and their rows")
    if rows.dtype.kind != "i" or rows.min() < 1 or rows.max() > max_rows:
        raise ValueError(f"{what}: row counts must be 1 to {max_rows}")
    joined = checked(joined, what, int(rows.sum()))
    if joined.shape[0] != int(rows.sum()):
        raise ValueError(f"{what}: the rows do not add up to their counts")
    return tuple(np.split(joined, np.cumsum(rows)[:-1]))


def _int16(samples: np.ndarray, sr: int, name: str) -> bytes:
    y = as_mono_float64(samples, name=name)
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)
    if y.size < SR // 40:
        raise InvalidAudio(f"the audio is {y.size / SR:.3f} s long; at least 0.025 s is needed")
    peak = float(np.max(np.abs(y)))
    if peak > 1.0:
        y = y / peak
    return np.round(y * 32767).astype("<i2").tobytes()


_PHONE_DECODER_LOCK = threading.Lock()


def _decode(decoder: Any, raw: bytes) -> None:
    """One utterance through ``decoder``, independent of the ones before it.

    PocketSphinx carries its feature state (the live cepstral-mean estimate among it) from one utterance to
    the next, so a query's detections depended on the queries before it (6 of 20 queries of the held-out
    subset scored differently in reverse order). ``reinit_feat`` (≈0.1 ms) starts every utterance from the
    model's initial state, as a fresh decoder would.
    """
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()


@cache
def _phone_decoder() -> Any:
    from pocketsphinx import Decoder

    model = _model()
    return Decoder(
        hmm=model["hmm"],
        allphone=model["phone_lm"],
        lm=None,
        dict=model["dict"],
        backtrace=True,
        beam=1e-20,
        pbeam=1e-20,
        lw=2.0,
        loglevel="FATAL",
    )


def phones_of_example(samples: np.ndarray, sr: int) -> str:
    """The phones PocketSphinx hears in a recording of a keyword (silence and noise units dropped).

    Raises :class:`InvalidAudio` when the example is digital silence, when no phone is heard, or when the
    samples are unusable.
    """
    raw = _int16(samples, sr, "phones_of_example")
    if not np.any(np.frombuffer(raw, dtype="<i2")):
        raise InvalidAudio("the keyword example is silent")
    decoder = _phone_decoder()
    with _PHONE_DECODER_LOCK:
        _decode(decoder, raw)
        segments = list(decoder.seg() or [])
    phones = [segment.word for segment in segments if segment.word not in _NOISE_PHONES]
    if not phones:
        raise InvalidAudio("no speech was heard in the keyword example")
    return " ".join(phones)


#: Spectral flatness of the quietest frames above which the background counts as stationary noise (white
#: noise measures 0.95-0.97, babble 0.1-0.4, music under 0.2, on the "tuned" split of bench/eval_keywords.py).
STATIONARY_FLATNESS = 0.8


def stationary_noise(samples: np.ndarray) -> bool:
    """Whether the background of a 16 kHz clip (the mean spectrum of its quietest 10 % of frames, 160-7000 Hz)
    is spectrally flat, like white noise, rather than speech-like babble or music."""
    from harmonic.spectral import stft_power

    power = np.asarray(stft_power(samples, n_fft=512, hop_length=160))
    energy = power.sum(axis=0)
    count = max(1, energy.size // 10)
    quiet = power[5:220, np.argsort(energy)[:count]].mean(axis=1)
    if not np.all(quiet > 1e-12):  # digital silence: nothing to remove
        return False
    flatness = float(np.exp(np.mean(np.log(quiet))) / np.mean(quiet))
    return flatness >= STATIONARY_FLATNESS


@dataclass(frozen=True)
class _Phrase:
    pattern_id: str
    word: str  # the dictionary entry the search reports
    phones: int


def frame_score(log_prob: float, frames: int) -> float:
    """A detection's score in 0..1: its log probability against the phone-loop background (PocketSphinx's
    integer log units) per 10 ms frame, mapped linearly so that 0 per frame is 1 and -100 per frame is 0."""
    return float(min(1.0, max(0.0, 1.0 + log_prob / max(frames, 1) / 100.0)))


class KeywordSpotter:
    """PocketSphinx keyphrase search over a set of keywords, each with one or more pronunciations.

    ``keywords`` maps a pattern id to its pronunciations (phone strings). Every keyphrase is searched with
    the permissive ``search_threshold``; each detection is then scored by :func:`frame_score` (its
    likelihood ratio against the background per frame, so that long and short keywords compare) and kept
    when the score is at least ``min_score``. ``normalized=False`` is PocketSphinx as it comes: detections
    at its default threshold, scored and ranked by their raw probability, all kept (the untuned anchor).
    ``denoise_stationary`` runs :func:`harmonic.denoise` on a query whose background is stationary noise
    (:func:`stationary_noise`) before the search; never on babble or music, which it would damage.
    """

    def __init__(
        self,
        keywords: Mapping[str, Sequence[str]],
        min_score: float | None = None,
        search_threshold: float = SEARCH_THRESHOLD,
        normalized: bool = True,
        denoise_stationary: bool = True,
    ) -> None:
        denoise_stationary = denoise_stationary and normalized
        from pocketsphinx import Decoder

        model = _model()
        self.normalized = normalized
        self.denoise_stationary = denoise_stationary
        self.min_score = (DEFAULT_MIN_SCORE if min_score is None else float(min_score)) if normalized else 0.0
        threshold = search_threshold if normalized else UNTUNED_THRESHOLD
        self._decoder = Decoder(hmm=model["hmm"], lm=None, dict=model["dict"], loglevel="FATAL")
        self._phrases: dict[str, _Phrase] = {}
        lines = []
        for index, (pattern_id, pronunciations) in enumerate(keywords.items()):
            for variant, phones in enumerate(dict.fromkeys(pronunciations)):
                word = f"kw{index}_{variant}"
                self._decoder.add_word(word, phones, update=False)
                self._phrases[word] = _Phrase(pattern_id, word, len(phones.split()))
                lines.append(f"{word} /{threshold:.3g}/")
        if not lines:
            raise ValueError("no keyword to search for")
        self._decoder.add_word("<dummy>", "SIL", update=True)  # applies the words added above
        with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as handle:
            handle.write("\n".join(lines) + "\n")
        try:
            self._decoder.add_kws("keywords", handle.name)
        finally:
            os.unlink(handle.name)
        self._decoder.activate_search("keywords")
        self._lock = threading.Lock()  # one utterance at a time: a decoder is not thread-safe

    def detections(self, samples: np.ndarray, sr: int) -> list[tuple[str, float, float, float]]:
        """Every detection ``(pattern_id, score, start_s, end_s)`` of the search, in time order, whatever
        its score."""
        decoder = self._decoder
        raw = _int16(samples, sr, "KeywordSpotter.match")
        if self.denoise_stationary:
            y = np.frombuffer(raw, dtype="<i2") / 32768.0
            if stationary_noise(y):
                from harmonic.denoise import denoise

                raw = _int16(denoise(y, SR), SR, "KeywordSpotter.match")
        with self._lock:
            _decode(decoder, raw)
            logmath = decoder.logmath
            segments = list(decoder.seg() or [])
        found = []
        for segment in segments:
            phrase = self._phrases.get(segment.word.strip())
            if phrase is None:
                continue
            frames = segment.end_frame - segment.start_frame + 1
            if self.normalized:
                score = frame_score(logmath.log(segment.prob) if segment.prob > 0 else -1e9, frames)
            else:
                score = float(segment.prob)
            found.append(
                (phrase.pattern_id, score, segment.start_frame * FRAME_S, (segment.end_frame + 1) * FRAME_S)
            )
        return found

    def match(self, samples: np.ndarray, sr: int, min_score: float | None = None) -> list[Match]:
        """The keywords detected in the query with a score of at least ``min_score`` (default: the
        spotter's), best first (one match per pattern id: its best detection)."""
        least = self.min_score if min_score is None else min_score
        best: dict[str, tuple[float, float, float]] = {}
        for pattern_id, score, start, end in self.detections(samples, sr):
            if pattern_id not in best or score > best[pattern_id][0]:
                best[pattern_id] = (score, start, end)
        matches = [
            Match(pattern_id, round(score, 4), round(start, 3), round(end, 3))
            for pattern_id, (score, start, end) in best.items()
            if score >= least
        ]
        return sorted(matches, key=lambda match: match.score, reverse=True)
