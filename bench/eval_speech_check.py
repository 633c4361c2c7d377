"""Speech or music? How phonetic.check_speech treats keyword examples: spoken words must pass, music must not.

Material (SR 16 kHz):

**Speech** — build/xspeaker (scripts/make_xspeaker_testdata.py generates it when absent): the enrolment
examples of each split, the keyword of every query sentence cut out at its span (``start_s``/``end_s``, and
once more with 0.15 s of context either side), and the negative sentences; the enrolment examples, words
and sentences once more under mains hum (50/60 Hz, 5 harmonics) 30 and 20 dB below the speech's peak and
in white noise at 10 dB SNR. Held out besides: the ALSA human
recordings (/usr/share/sounds/alsa: each whole file and each word of it), and the committed examples of
tests/data/xspeaker and tests/data/keywords.

**Music** — "tuned": bench/eval_matching.py's ``synth_music`` seeds 0–49 and this file's ``instrument``
generator (sustained notes with vibrato, sine melodies, piano-like decaying harmonic notes, chords) seeds
0–49; "held_out": ``synth_music`` and ``instrument`` seeds 1000–1049, and two generators used in no tuning:
sox ``pluck`` melodies and sox square/sawtooth melodies with tremolo. Each piece at 0.5, 1.0, 1.5 and 5 s
(``synth_music`` also 10 s).

Every constant of check_speech was chosen on "tuned" only; "held_out" was measured once afterwards.
Refusals are counted by reason: "as music" (the music test) and "as no speech" (the older voicing test,
MIN_VOICED_S: it refuses a few very short words, e.g. "stop" cut tightly out of a sentence).
Usage: .venv/bin/python bench/eval_speech_check.py [tuned] [held_out]  (default: both)
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))

from eval_matching import synth_music  # noqa: E402

from harmonic import InvalidAudio, phonetic  # noqa: E402

SR = 16_000
XSPEAKER = ROOT / "build" / "xspeaker"
ALSA = Path("/usr/share/sounds/alsa")
LENGTHS_S = (0.5, 1.0, 1.5, 5.0)
CONTEXT_S = 0.15


def read(path: Path) -> np.ndarray:
    sr, data = wavfile.read(path)
    y = data.astype(np.float64)
    if data.dtype == np.int16:
        y /= 32768.0
    if y.ndim > 1:
        y = y.mean(axis=1)
    if sr != SR:
        y = resample_poly(y, SR, sr)
    return y


def crop(y: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return y[max(0, int(start_s * SR)) : int(end_s * SR)]


# --- speech ------------------------------------------------------------------------------------------------


def speech_sets(split: str) -> dict[str, list[tuple[str, np.ndarray]]]:
    """name → [(label, samples)] of speech for split "tuned" or "held_out" (held_out includes human)."""
    if not (XSPEAKER / "manifest.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_xspeaker_testdata.py")], check=True)
    manifest = json.loads((XSPEAKER / "manifest.json").read_text())
    splits = {"tuned": ("tuned",), "held_out": ("held_out", "human")}[split]
    sets: dict[str, list[tuple[str, np.ndarray]]] = {}
    sets["enrol"] = [
        (e["file"], read(XSPEAKER / e["file"])) for e in manifest["enrol"] if e["split"] in splits
    ]
    words, padded = [], []
    for q in manifest["queries"]:
        if q["split"] in splits:
            y = read(XSPEAKER / q["file"])
            words.append((q["file"], crop(y, q["start_s"], q["end_s"])))
            padded.append((q["file"], crop(y, q["start_s"] - CONTEXT_S, q["end_s"] + CONTEXT_S)))
    sets["query word"] = words
    sets["query word+context"] = padded
    sets["sentence"] = [
        (n["file"], read(XSPEAKER / n["file"])) for n in manifest["negatives"] if n["split"] in splits
    ]
    every = [clip for name in ("enrol", "query word", "sentence") for clip in sets[name]]
    rng = np.random.default_rng(0 if split == "tuned" else 1)
    for db in (-30, -20):  # mains hum (50 or 60 Hz, 5 harmonics) db below the speech's peak
        sets[f"+ hum {db} dB"] = [
            (label, with_hum(y, db, (50.0, 60.0)[k % 2])) for k, (label, y) in enumerate(every)
        ]
    sets["+ white noise 10 dB SNR"] = [
        (label, y + np.std(y) * 10 ** (-10 / 20) * rng.standard_normal(y.size)) for label, y in every
    ]
    if split == "held_out":
        alsa = sorted(p for p in ALSA.glob("*.wav") if p.name != "Noise.wav")
        sets["ALSA human file"] = [(p.name, read(p)) for p in alsa]
        sets["ALSA human word"] = [
            (f"{Path(h['file']).name}:{h['keyword']}", crop(read(Path(h["file"])), h["start_s"], h["end_s"]))
            for h in manifest["human"]
        ]
        for name in ("xspeaker", "keywords"):
            folder = ROOT / "tests" / "data" / name
            sets[f"tests/data/{name}"] = [(p.name, read(p)) for p in sorted(folder.glob("*.wav"))]
    return sets


def with_hum(y: np.ndarray, db: float, hz: float) -> np.ndarray:
    t = np.arange(y.size) / SR
    hum = sum(np.sin(2 * np.pi * k * hz * t + k) / k for k in range(1, 6))
    return y + hum / np.max(np.abs(hum)) * np.max(np.abs(y)) * 10 ** (db / 20)


# --- music -------------------------------------------------------------------------------------------------


def _adsr(n: int, attack_s: float, decay_per_s: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(1.0, t / max(attack_s, 1e-3)) * np.exp(-t * decay_per_s)


def _harmonic_tone(f: np.ndarray | float, n: int, partials: np.ndarray, phase0: np.ndarray) -> np.ndarray:
    """Sum of partials k·f (f may vary per sample) with amplitudes ``partials``."""
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SR
    out = np.zeros(n)
    for k, (a, p0) in enumerate(zip(partials, phase0, strict=True), start=1):
        if k * f.max() < SR / 2 - 200:
            out += a * np.sin(k * phase + p0)
    return out


def instrument(seed: int, seconds: float) -> np.ndarray:
    """One of four kinds of music-like clip (seed % 4): a sustained note (or two) with vibrato; a sine melody;
    a piano-like melody of decaying harmonic notes; a held or repeated chord. Peak-normalized to 0.8."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    y = np.zeros(n)
    kind = seed % 4
    base = 440.0 * 2 ** (rng.integers(-17, 8) / 12)  # A#2 .. E5
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    if kind == 0:  # sustained note(s) with vibrato (bowed string, flute, voice-like synth)
        parts = 1 + rng.integers(2)
        bounds = np.linspace(0, n, parts + 1).astype(int)
        for start, stop in itertools.pairwise(bounds):
            m = stop - start
            t = np.arange(m) / SR
            f0 = base * 2 ** (scale[rng.integers(scale.size)] / 12)
            depth = rng.uniform(0.15, 0.6) / 12  # octaves: ±15–60 cents
            rate = rng.uniform(4.5, 7.0)
            onset = np.minimum(1.0, t / rng.uniform(0.1, 0.4))  # vibrato fades in
            f = f0 * 2 ** (depth * onset * np.sin(2 * np.pi * rate * t))
            partials = rng.uniform(0.1, 1.0, 8) / np.arange(1, 9) ** rng.uniform(0.5, 1.5)
            env = np.minimum(1.0, t / rng.uniform(0.02, 0.15)) * np.minimum(
                1.0, (m - np.arange(m)) / (0.05 * SR)
            )
            y[start:stop] += env * _harmonic_tone(f, m, partials, rng.uniform(0, 6, 8))
        y += 0.003 * rng.standard_normal(n)  # breath
    elif kind in (1, 2):  # melody: sine (1) or piano-like decaying harmonic notes (2)
        t0 = 0
        note_s = rng.uniform(0.12, 0.5)
        while t0 < n:
            m = min(n - t0, int(note_s * rng.choice([0.5, 1, 1, 2]) * SR))
            f0 = base * 2 ** (scale[rng.integers(scale.size)] / 12)
            if kind == 1:
                partials, decay = np.array([1.0]), rng.uniform(0.5, 3)
            else:
                partials, decay = 1.0 / np.arange(1, 11) ** rng.uniform(0.7, 1.5), rng.uniform(2, 6)
            tail = min(n - t0, m + int(0.3 * SR))  # notes ring into the next (sustain pedal)
            y[t0 : t0 + tail] += _adsr(tail, 0.005, decay) * _harmonic_tone(
                f0 * (1 + 0.0005 * rng.standard_normal()), tail, partials, rng.uniform(0, 6, partials.size)
            )
            t0 += m
    else:  # chord, held or struck repeatedly
        root = base * 2 ** (rng.integers(-5, 3) / 12)
        intervals = [(0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 5, 7)][rng.integers(5)]
        period = int(rng.choice([seconds, rng.uniform(0.25, 0.7)]) * SR)
        for t0 in range(0, n, max(period, 1)):
            m = n - t0
            env = _adsr(m, 0.01, rng.uniform(0.3, 3))
            for iv in intervals:
                partials = 1.0 / np.arange(1, 7) ** rng.uniform(0.8, 1.6)
                y[t0:] += env * _harmonic_tone(root * 2 ** (iv / 12), m, partials, rng.uniform(0, 6, 6))
    return y / (np.max(np.abs(y)) + 1e-9) * 0.8


def _sox(args: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run(
            ["sox", "-V1", "-n", "-r", str(SR), "-b", "16", "-c", "1", str(out), *args], check=True
        )
        return read(out)


def sox_pluck(seed: int, seconds: float) -> np.ndarray:
    """A plucked-string melody (sox synth pluck): notes of a major or minor scale, 0.15–0.5 s each."""
    rng = np.random.default_rng(seed)
    steps = [[0, 2, 4, 5, 7, 9, 11, 12], [0, 2, 3, 5, 7, 8, 10, 12]][rng.integers(2)]
    root = int(rng.integers(-14, 4))
    note_s = rng.uniform(0.15, 0.5)
    notes, total = [], 0.0
    while total < seconds:
        notes.append(f"%{root + steps[rng.integers(len(steps))]}")
        total += note_s
    # one sox call per note (each its own pluck), concatenated, then cut to length
    clip = np.concatenate([_sox(["synth", f"{note_s:.3f}", "pluck", n]) for n in notes])
    return clip[: int(seconds * SR)]


def sox_tremolo(seed: int, seconds: float) -> np.ndarray:
    """A square- or sawtooth-wave melody with tremolo (sox synth … tremolo), low-passed like a synth pad."""
    rng = np.random.default_rng(seed)
    wave = ["square", "sawtooth", "triangle"][rng.integers(3)]
    steps = [0, 2, 4, 7, 9, 12]
    root = int(rng.integers(-17, 0))
    note_s = rng.uniform(0.2, 0.6)
    parts, total = [], 0.0
    while total < seconds:
        note = f"%{root + steps[rng.integers(len(steps))]}"
        args = ["synth", f"{note_s:.3f}", wave, note, "vol", "0.5", "lowpass", "3000"]
        args += ["tremolo", f"{rng.uniform(3, 7):.1f}", "40", "fade", "0.01", f"{note_s:.3f}", "0.05"]
        parts.append(_sox(args))
        total += note_s
    return np.concatenate(parts)[: int(seconds * SR)]


def music_sets(split: str) -> dict[str, list[tuple[str, np.ndarray]]]:
    seeds = range(50) if split == "tuned" else range(1000, 1050)
    generators: dict[str, Callable[[int, float], np.ndarray]] = {
        "synth_music": lambda s, sec: synth_music(s, sec, SR),
        "instrument": instrument,
    }
    if split == "held_out":
        generators |= {"sox pluck": sox_pluck, "sox tremolo": sox_tremolo}
    sets: dict[str, list[tuple[str, np.ndarray]]] = {}
    for name, make in generators.items():
        lengths = (*LENGTHS_S, 10.0) if name == "synth_music" else LENGTHS_S
        sets[name] = [(f"{seed}@{sec}s", make(seed, sec)) for seed in seeds for sec in lengths]
    return sets


# --- measurement -------------------------------------------------------------------------------------------


def refused(y: np.ndarray) -> str | None:
    try:
        phonetic.check_speech(y, SR)
    except InvalidAudio as error:
        return str(error)
    return None


def table(title: str, sets: dict[str, list[tuple[str, np.ndarray]]], show: bool) -> Iterator[str]:
    """Per set: refused / total, and how many of those as music and as no speech (silence or noise)."""
    yield f"{title:<30} refused / total     as music   as no speech"
    for name, clips in sets.items():
        reasons = [(label, refused(y)) for label, y in clips]
        bad = [(label, r) for label, r in reasons if r]
        music = sum("music" in r for _, r in bad)
        yield (
            f"  {name:<28} {len(bad):>4} / {len(clips):<4} ({len(bad) / len(clips):>4.0%})"
            f"  {music:>6}   {len(bad) - music:>6}"
        )
        if show:
            yield from (f"      {label}: {r}" for label, r in bad[:10])


def timing() -> Iterator[str]:
    for seconds in (1.0, 10.0):
        y = synth_music(7, seconds, SR)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            refused(y)
            runs.append(time.perf_counter() - start)
        yield f"check_speech on {seconds:.0f} s of music: {1000 * min(runs):.1f} ms (best of 5)"


def main() -> None:
    splits = sys.argv[1:] or ["tuned", "held_out"]
    for split in splits:
        print(f"== {split} ==")
        for line in table("speech", speech_sets(split), show=True):
            print(line)
        for line in table("music", music_sets(split), show=False):
            print(line)
    rng = np.random.default_rng(3)
    for name, y in (("silence", np.zeros(SR)), ("white noise", 0.3 * rng.standard_normal(SR))):
        print(f"{name}: {refused(y)}")
    for line in timing():
        print(line)


if __name__ == "__main__":
    main()
