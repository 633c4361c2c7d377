"""Fingerprint matches verified against the recording's sketch: another rendition of the same notes (a
re-orchestration) is not the recording, unless the caller asks for near-duplicates; the recording itself
stays found through noise, a telephone band, reverb and speech over it. (Rates: `make eval`, "renditions".)"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import butter, sosfilt

from harmonic import Fingerprint, FingerprintIndex, fingerprint, resample
from harmonic.fingerprint import is_other_rendition, rendition_measures

SR = 16_000
SPEECH = Path(__file__).resolve().parents[1] / "data" / "keywords"

#: partial amplitudes and decay rate (1/s) of each instrument; "recorded" is the registered recordings'
ORIGINAL = ((1.0, 0.25), 3.0)
RICHER = ((1.0, 0.5, 0.33, 0.25, 0.2, 0.17), 2.0)  # a sawtooth-like instrument
HOLLOW = ((1.0, 0.05, 0.5, 0.03, 0.3), 1.0)  # odd partials: a clarinet-like one
PURE = ((1.0,), 0.8)  # no octave, slower decay


@cache
def _notes(seed: int) -> tuple[tuple[float, float, float], ...]:
    """A melody of single notes (start s, length s, frequency Hz) on a major scale, rests between some."""
    rng = np.random.default_rng(seed)
    tonic = rng.uniform(180.0, 330.0)
    steps = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    notes, t0 = [], 0.0
    while t0 < 30.0:
        length = rng.choice([0.25, 0.5, 0.75, 1.0]) * rng.uniform(0.8, 1.2)
        notes.append((t0, length, tonic * 2 ** (steps[rng.integers(steps.size)] / 12)))
        t0 += length + rng.choice([0.0, 0.0, 0.1, 0.25])
    return tuple(notes)


@cache
def _render(seed: int, instrument: tuple = ORIGINAL, chords: float = 0.0) -> np.ndarray:
    """30 s of the melody `seed` played by `instrument`, chords under it at `chords` × its level."""
    partials, decay = instrument
    y = np.zeros(30 * SR)
    notes = _notes(seed)
    for t0, length, f in notes:
        start, stop = int(t0 * SR), min(y.size, int((t0 + length) * SR))
        t = np.arange(stop - start) / SR
        envelope = np.exp(-decay * t) * np.minimum(1, t * 100) * np.minimum(1, (length - t) * 50)
        y[start:stop] += envelope * sum(
            a * np.sin(2 * np.pi * (k + 1) * f * t) for k, a in enumerate(partials)
        )
    y /= np.max(np.abs(y))
    if chords:
        root = notes[0][2] / 2
        t = np.arange(2 * SR) / SR
        for bar, offsets in enumerate([(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)] * 4):
            chord = sum(np.sin(2 * np.pi * root * 2 ** (s / 12) * t) for s in offsets) / 3
            y[bar * 2 * SR : (bar + 1) * 2 * SR] += chords * chord[: y.size - bar * 2 * SR]
    return 0.8 * y / np.max(np.abs(y))


def _excerpt(y: np.ndarray, start_s: float) -> np.ndarray:
    return y[int(start_s * SR) : int((start_s + 5) * SR)]


def _noisy(y: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(y.size)
    return y + noise * np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10))


def _telephone(y: np.ndarray) -> np.ndarray:
    return sosfilt(butter(4, (300, 3400), btype="bandpass", fs=SR, output="sos"), y)


def _reverb(y: np.ndarray, rt60_s: float = 0.6, seed: int = 0) -> np.ndarray:
    """A synthetic room: exponentially decaying noise, its energy equal to the direct sound's."""
    t = np.arange(int(1.5 * rt60_s * SR)) / SR
    response = np.random.default_rng(seed).standard_normal(t.size) * np.exp(-6.9 * t / rt60_s)
    wet = np.convolve(y, response)[: y.size]
    return y + wet * np.sqrt(np.sum(y**2) / np.sum(wet**2))


def _mu_law(y: np.ndarray) -> np.ndarray:
    """G.711 μ-law (8 bits: a sign and 127 logarithmic levels), decoded back."""
    compressed = np.round(np.sign(y) * np.log1p(255 * np.abs(y)) / np.log(256) * 127) / 127
    return np.sign(compressed) * (256 ** np.abs(compressed) - 1) / 255


def _speech_over(y: np.ndarray, snr_db: float) -> np.ndarray:
    """Someone talking over the music at `snr_db` (music to speech): committed eSpeak NG sentences."""
    parts = []
    for path in sorted(SPEECH.glob("query_*.wav"))[:6]:
        rate, samples = wavfile.read(path)
        parts.append(resample(samples.astype(np.float64) / 32768.0, rate, SR))
    speech = np.concatenate(parts)[: y.size]
    speech = np.pad(speech, (0, y.size - speech.size))
    return y + speech * np.sqrt(np.mean(y**2) / np.mean(speech**2)) * 10 ** (-snr_db / 20)


@pytest.fixture(scope="module")
def registry() -> FingerprintIndex:
    index = FingerprintIndex()
    for seed in range(8):
        index.add(f"theme-{seed}", fingerprint(_render(seed), SR))
    return index


@pytest.mark.parametrize(
    ("seed", "instrument", "chords", "start_s"),
    [
        (1, RICHER, 0.0, 4.0),
        (2, HOLLOW, 0.0, 12.5),
        (3, RICHER, 0.5, 20.0),
        (4, HOLLOW, 0.5, 7.25),
        (5, PURE, 0.0, 15.0),
        (6, PURE, 0.5, 2.0),
    ],
)
def test_a_re_orchestration_is_not_the_recording_unless_near_duplicates_are_asked_for(
    registry, seed, instrument, chords, start_s
) -> None:
    query = fingerprint(_excerpt(_render(seed, instrument, chords), start_s), SR)
    near = registry.query(query, near_duplicates=True)
    assert near[0].pattern_id == f"theme-{seed}"  # the landmarks alone take it for the recording...
    assert near[0].start_s == pytest.approx(start_s, abs=0.05)
    assert registry.query(query) == []  # ...the verification does not


@pytest.mark.parametrize(
    ("seed", "degrade"),
    [
        (0, lambda y: y),
        (1, lambda y: _noisy(y, 0.0)),
        (2, _telephone),
        (3, lambda y: _noisy(_telephone(y), 10.0)),
        (4, _mu_law),
        (5, lambda y: _speech_over(y, 10.0)),
        (6, _reverb),
        (7, lambda y: _speech_over(y, 0.0)),
        (0, lambda y: np.tanh(2 * y)),  # a saturating amplifier
    ],
)
def test_the_recording_itself_stays_found(registry, seed, degrade) -> None:
    """(Landmarks alone lose a few sparse excerpts under reverb: `make eval`. These are ones they find.)"""
    start_s = 3.0 + 2.5 * seed
    matches = registry.query(fingerprint(degrade(_excerpt(_render(seed), start_s)), SR))
    assert matches[0].pattern_id == f"theme-{seed}"
    assert matches[0].start_s == pytest.approx(start_s, abs=0.05)


def test_the_measures_say_what_differs() -> None:
    """More partials: overtones the recording lacks; fewer: the recording's peaks missing; itself: neither."""
    recording = fingerprint(_render(2), SR)
    offset = round(10.0 * 62.5)  # the excerpt starts 10 s in: 625 frames of 16 ms
    richer = rendition_measures(recording, fingerprint(_excerpt(_render(2, RICHER), 10.0), SR), offset)
    pure = rendition_measures(recording, fingerprint(_excerpt(_render(2, PURE), 10.0), SR), offset)
    itself = rendition_measures(recording, fingerprint(_noisy(_excerpt(_render(2), 10.0), 0.0), SR), offset)
    assert richer["foreign_overtones"] > 0.4
    assert richer["missing_peaks"] < 0.05
    assert pure["missing_peaks"] > 0.4
    assert pure["foreign_overtones"] < 0.05
    assert itself["foreign_overtones"] < 0.05
    assert itself["missing_peaks"] < 0.05
    assert min(richer["compared"], pure["compared"], itself["compared"]) >= 30


def test_without_a_sketch_there_is_no_verdict() -> None:
    """A fingerprint built without its sketch (empty) is matched as before: nothing to compare."""
    recording = fingerprint(_render(1), SR)
    bare = Fingerprint(recording.hashes, recording.times, recording.frame_rate, recording.duration_s)
    query = fingerprint(_excerpt(_render(1, RICHER), 4.0), SR)
    assert rendition_measures(bare, query, 250)["compared"] == 0
    assert not is_other_rendition(bare, query, 250)
    index = FingerprintIndex()
    index.add("bare", bare)
    assert index.query(query)[0].pattern_id == "bare"


def test_after_a_speech_enhancer_only_foreign_overtones_count(registry) -> None:
    """A denoiser takes partials out and adds none: with ``denoised`` a rendition that lacks the recording's
    octave is kept (the enhancer could have removed it), one with another instrument's overtones is not."""
    pure = fingerprint(_excerpt(_render(5, PURE), 15.0), SR)
    assert registry.query(pure) == []
    assert registry.query(pure, denoised=True)[0].pattern_id == "theme-5"
    richer = fingerprint(_excerpt(_render(1, RICHER), 4.0), SR)
    assert registry.query(richer, denoised=True) == []
    assert registry.query(richer, denoised=True, near_duplicates=True)[0].pattern_id == "theme-1"


def test_a_recording_cut_off_partway_is_not_missing_its_peaks() -> None:
    """Where the query stops playing the recording (silence after 3 s of a 5 s query), the recording's peaks
    are not looked for: only where the query plays its notes."""
    recording = fingerprint(_render(3), SR)
    query = _excerpt(_render(3), 6.0).copy()
    query[3 * SR :] = 0.0
    measures = rendition_measures(recording, fingerprint(query, SR), round(6.0 * 62.5))
    assert measures["missing_peaks"] < 0.1  # 2 of 5 s are silent: counted, that would be about 0.4
    assert measures["compared"] >= 30
