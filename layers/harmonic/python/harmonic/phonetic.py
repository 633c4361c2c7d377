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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
_WORD = re.compile(r"[a-z0-9']+")


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
    """The cmudict pronunciation of a word or phrase (phones joined by spaces); None if a word is missing."""
    words = _WORD.findall(text.lower())
    if not words:
        return None
    phones = [_dictionary().get(word) for word in words]
    return None if any(p is None for p in phones) else " ".join(phones)  # type: ignore[misc]


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
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()
    phones = [segment.word for segment in decoder.seg() or [] if segment.word not in _NOISE_PHONES]
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
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        logmath = decoder.logmath
        found = []
        for segment in decoder.seg() or []:
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

    def match(self, samples: np.ndarray, sr: int) -> list[Match]:
        """The keywords detected in the query with a score of at least ``min_score``, best first (one match
        per pattern id: its best detection)."""
        best: dict[str, tuple[float, float, float]] = {}
        for pattern_id, score, start, end in self.detections(samples, sr):
            if pattern_id not in best or score > best[pattern_id][0]:
                best[pattern_id] = (score, start, end)
        matches = [
            Match(pattern_id, round(score, 4), round(start, 3), round(end, 3))
            for pattern_id, (score, start, end) in best.items()
            if score >= self.min_score
        ]
        return sorted(matches, key=lambda match: match.score, reverse=True)
