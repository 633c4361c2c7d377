"""`make eval`: fingerprint matches verified against the registered recording (``harmonic.fingerprint``,
"renditions"): is a re-orchestration of a registered theme refused, and is the recording itself still
found through noise, codecs, a telephone band, reverb and speech over it?

**Material** (generated here from seeds). Per split, a registry of 40 sparse themes (single tones: a
fundamental and an octave at a quarter of its amplitude, decaying, with rests: :func:`render` with
:data:`RECORDED`; the same melodies as ``bench/eval_matching.py``'s "sparse tonal") and 40 dense pieces
(``synth_music``), 30 s each.

- **The recording itself**: one 5 s excerpt per recording and condition at a random offset: clean; white
  noise at 0 and −5 dB; a telephone band (sox ``sinc 300-3400``); low-bitrate codecs (Ogg Vorbis ``-C -1``,
  GSM 06.10, AMR-NB 4.75 kbit/s, all through sox); reverb (a synthetic room: exponentially decaying
  noise, RT60 0.6 s, reverberant energy equal to the direct sound's); eSpeak NG speech over it (the
  committed keyword sentences) at 10 and 0 dB music-to-speech. Held out adds a telephone band at 0 dB, a
  longer room (RT60 1 s, +5 dB reverberant energy), Ogg after reverb, and hard clipping 6 dB over full
  scale (reported, not in the target: see docs/design.md).
- **Re-orchestrations**: each theme's melody played by other instruments (5 per theme), with and without a
  chord accompaniment, at the original's tempo or 0.98–1.02 of it; one clean 5 s excerpt each. "Tuned"
  uses five fixed instruments (a sawtooth-like one, a clarinet-like one with odd partials, a pure tone
  with a slow decay, a bright one, an organ-like one); "held_out" draws five instruments per theme at
  random (1–8 partials of random amplitudes, a random decay) and the accompaniment's level.

Only excerpts that the landmarks match to their theme (``near_duplicates=True``) are counted: the
verification can only refuse what was found. The thresholds (``MAX_FOREIGN_OVERTONES``,
``MAX_MISSING_PEAKS``) were chosen on "tuned" (seeds 5000–5039 and 0–39, the fixed instruments, speech
over at 10 and 0 dB); "held_out" (seeds 7000–7039 and 300–339, random instruments) was run once after.

**Service** (:func:`evaluate_service`): 20 held-out themes and 20 pieces through the chain the match stage
follows (DeepFilterNet3 on most music: its SNR estimate is under 30 dB) and ``PatternSet.match``, which
matches fingerprints on the clip before the enhancer.

Targets (held out): at most 1 % of the recording's own excerpts refused in the issue's conditions, and at
least 80 % of re-orchestrations refused; after the chain, at most 1 % of the recording's excerpts refused
(re-orchestrations reported).

Writes bench/results/eval_renditions.json; exits non-zero when a target is missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))
sys.path.insert(0, str(ROOT / "bench"))

from eval_matching import add_noise, synth_music, table  # noqa: E402

from harmonic import FingerprintIndex, fingerprint, resample  # noqa: E402
from harmonic.fingerprint import HOP, is_other_rendition, rendition_measures  # noqa: E402
from harmonic.fingerprint import SR as FP_SR  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "eval_renditions.json"
SR = 8_000
THEMES, RECORDING_S, EXCERPT_S = 40, 30.0, 5.0
SPLITS = {"tuned": (5000, 0, 7), "held_out": (7000, 300, 8)}  # theme seeds, music seeds, excerpt rng
RECORDED = ((1.0, 0.25), 3.0)  # partial amplitudes, decay 1/s: the registered themes' instrument
TUNED_INSTRUMENTS = {
    "saw": (tuple(1 / k for k in range(1, 7)), 2.0),
    "clarinet": ((1, 0.05, 0.5, 0.03, 0.3, 0.02, 0.15), 1.0),
    "pure_slow": ((1.0,), 0.8),
    "bright": ((0.4, 1, 0.7, 0.5, 0.3), 4.0),
    "organ": ((1, 0.6, 0.0, 0.4, 0.0, 0.0, 0.0, 0.3), 0.3),
}
CONDITIONS = ["clean", "0dB", "-5dB", "telephone", "ogg", "gsm", "amr", "reverb", "speech_10dB", "speech_0dB"]
HELD_OUT_CONDITIONS = ["telephone_0dB", "reverb_1s", "ogg_after_reverb", "clipped_6dB"]
REPORTED_ONLY = {"clipped_6dB"}


def theme(seed: int) -> tuple[float, list[tuple[float, float, float]]]:
    """The tonic and notes (start s, length s, Hz) of ``eval_matching.synth_sparse_tonal(seed)``."""
    rng = np.random.default_rng(seed)
    steps = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    tonic = rng.uniform(180.0, 330.0)
    notes, t0 = [], 0.0
    while t0 < RECORDING_S:
        length = rng.choice([0.25, 0.5, 0.5, 0.75, 1.0]) * rng.uniform(0.8, 1.2)
        notes.append((t0, length, tonic * 2 ** (steps[rng.integers(steps.size)] / 12)))
        t0 += length + rng.choice([0.0, 0.0, 0.1, 0.25])
    return tonic, notes


def render(
    notes: list[tuple[float, float, float]],
    instrument: tuple[tuple[float, ...], float],
    tempo: float = 1.0,
    chords: float = 0.0,
    tonic: float = 220.0,
    seed: int = 0,
) -> np.ndarray:
    """The notes played by ``instrument`` (partial amplitudes, decay rate), ``tempo`` × as fast, with a
    chord accompaniment (a triad on the tonic an octave down, every 2 s) at ``chords`` × the melody's peak."""
    partials, decay = instrument
    y = np.zeros(int(RECORDING_S * SR))
    for t0, length, f in notes:
        start, stop = int(t0 / tempo * SR), min(y.size, int((t0 + length) / tempo * SR))
        if start >= y.size:
            break
        t = np.arange(stop - start) / SR
        span = length / tempo
        envelope = np.exp(-decay * t) * np.minimum(1, t * 100) * np.minimum(1, (span - t) * 50)
        y[start:stop] += envelope * sum(
            a * np.sin(2 * np.pi * (k + 1) * f * t) for k, a in enumerate(partials)
        )
    y /= np.max(np.abs(y)) + 1e-9
    if chords:
        rng = np.random.default_rng(seed)
        period = 2.0 / tempo
        triads = [[0, 4, 7], [5, 9, 12], [7, 11, 14], [-3, 0, 4]]
        for bar in range(int(RECORDING_S / period) + 1):
            start, stop = int(bar * period * SR), min(y.size, int((bar + 1) * period * SR))
            if start >= y.size:
                break
            t = np.arange(stop - start) / SR
            envelope = np.minimum(1, t * 20) * np.minimum(1, (period - t) * 20)
            root = tonic / 2
            triad = triads[rng.integers(len(triads))]
            y[start:stop] += (
                chords
                * envelope
                * sum(
                    np.sin(2 * np.pi * root * 2 ** (s / 12) * t)
                    + 0.3 * np.sin(4 * np.pi * root * 2 ** (s / 12) * t)
                    for s in triad
                )
                / 3
            )
    return y / (np.max(np.abs(y)) + 1e-9) * 0.8


def _sox(y: np.ndarray, output: list[str], effects: tuple[str, ...] = ()) -> np.ndarray:
    """``y`` through sox: written as 16-bit WAV, converted to ``output`` (a file type and its options) with
    ``effects``, read back at 8 kHz (same length)."""
    with tempfile.TemporaryDirectory() as folder:
        source, coded, back = f"{folder}/a.wav", f"{folder}/b.{output[0]}", f"{folder}/c.wav"
        wavfile.write(source, SR, (np.clip(y, -1, 1) * 32767).astype(np.int16))
        # -D: no dither (sox dithers by default when it writes 16 bits, which would make a run unrepeatable)
        subprocess.run(["sox", "-D", source, *output[1:], coded, *effects], check=True, capture_output=True)
        subprocess.run(
            ["sox", "-D", coded, "-r", str(SR), "-c", "1", "-b", "16", back], check=True, capture_output=True
        )
        _, samples = wavfile.read(back)
    out = np.zeros_like(y)
    decoded = samples.astype(np.float64) / 32768.0
    out[: min(y.size, decoded.size)] = decoded[: y.size]
    return out


def _reverb(y: np.ndarray, rng: np.random.Generator, rt60_s: float = 0.6, wet_db: float = 0.0) -> np.ndarray:
    t = np.arange(int(1.5 * rt60_s * SR)) / SR
    response = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60_s)
    wet = np.convolve(y, response)[: y.size]
    return y + wet * np.sqrt(np.sum(y**2) / (np.sum(wet**2) + 1e-12)) * 10 ** (wet_db / 20)


def _speech() -> np.ndarray:
    parts = []
    for path in sorted((ROOT / "tests" / "data" / "keywords").glob("query_*.wav")):
        rate, samples = wavfile.read(path)
        parts.append(resample(samples.astype(np.float64) / 32768.0, rate, SR))
    return np.concatenate(parts)


def degrade(y: np.ndarray, condition: str, rng: np.random.Generator, speech: np.ndarray) -> np.ndarray:
    """``y`` in one of the listening conditions (the module docstring)."""
    if condition == "clean":
        return y
    if condition.endswith("dB") and condition[:-2].lstrip("-").isdigit():  # white noise at that SNR
        return add_noise(y, float(condition[:-2]), rng)
    if condition == "telephone":
        return _sox(y, ["wav"], ("sinc", "300-3400"))
    if condition == "telephone_0dB":
        return add_noise(_sox(y, ["wav"], ("sinc", "300-3400")), 0.0, rng)
    if condition == "ogg":
        return _sox(y, ["ogg", "-C", "-1"])
    if condition == "gsm":
        return _sox(y, ["gsm"])
    if condition == "amr":
        return _sox(y, ["amr-nb", "-C", "0"])
    if condition == "reverb":
        return _reverb(y, rng)
    if condition == "reverb_1s":
        return _reverb(y, rng, 1.0, 5.0)
    if condition == "ogg_after_reverb":
        return _sox(_reverb(y, rng), ["ogg", "-C", "-1"])
    if condition == "clipped_6dB":
        return np.clip(2.0 * y, -0.8, 0.8)
    if condition.startswith("speech_"):
        start = int(rng.integers(0, speech.size - y.size))
        voice = speech[start : start + y.size]
        return y + voice * np.sqrt(np.mean(y**2) / np.mean(voice**2)) * 10 ** (-float(condition[7:-2]) / 20)
    raise ValueError(f"unknown condition {condition!r}")


def _random_instruments(rng: np.random.Generator) -> dict[str, tuple[tuple[float, ...], float]]:
    instruments = {}
    for k in range(5):
        count = int(rng.integers(1, 9))
        partials = rng.uniform(0, 1, count) * (1 / np.arange(1, count + 1)) ** rng.uniform(0, 1.5)
        partials[0] = max(partials[0], 0.3)
        instruments[f"random-{k}"] = (tuple(float(a) for a in partials), float(rng.uniform(0.2, 5.0)))
    return instruments


def _group(partials: tuple[float, ...]) -> str:
    """Held-out re-orchestrations by how their instrument differs from the recorded one (1 and 0.25)."""
    return {1: "1 partial", 2: "2 partials"}.get(len(partials), "3-8 partials")


Probe = Callable[[str, np.ndarray, str, str], None]


def _material(split: str, count: int) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, list]]]:
    """The split's registered recordings (``theme-NN``, ``music-NN``) and each theme's tonic and notes."""
    theme_seed, music_seed, _ = SPLITS[split]
    recordings, themes = {}, {}
    for k in range(count):
        tonic, notes = theme(theme_seed + k)
        themes[f"theme-{k:02d}"] = (tonic, notes)
        recordings[f"theme-{k:02d}"] = render(notes, RECORDED)
        recordings[f"music-{k:02d}"] = synth_music(music_seed + k, RECORDING_S, sr=SR)
    return recordings, themes


def _probe_recordings(
    k: int,
    recordings: dict[str, np.ndarray],
    conditions: list[str],
    rng: np.random.Generator,
    speech: np.ndarray,
    probe: Probe,
) -> None:
    """One excerpt of theme ``k`` and of music ``k`` (random offsets) in each condition, probed."""
    for material in ("theme", "music"):
        pattern_id = f"{material}-{k:02d}"
        for condition in conditions:
            start = int(rng.uniform(0, RECORDING_S - EXCERPT_S) * SR)
            excerpt = recordings[pattern_id][start : start + int(EXCERPT_S * SR)]
            probe(pattern_id, degrade(excerpt, condition, rng, speech), f"recording ({material})", condition)


def evaluate(split: str, speech: np.ndarray) -> dict[str, Any]:
    _, _, rng_seed = SPLITS[split]
    index = FingerprintIndex()
    recordings, themes = _material(split, THEMES)
    for pattern_id, y in recordings.items():
        index.add(pattern_id, fingerprint(y, SR))
    rng = np.random.default_rng(rng_seed)
    conditions = CONDITIONS + (HELD_OUT_CONDITIONS if split == "held_out" else [])
    excerpt_n = int(EXCERPT_S * SR)
    outcomes: list[dict[str, Any]] = []

    def probe(pattern_id: str, excerpt: np.ndarray, kind: str, label: str) -> None:
        query = fingerprint(excerpt, SR)
        found = index.query(query, near_duplicates=True)
        outcome = {"kind": kind, "label": label, "found": bool(found) and found[0].pattern_id == pattern_id}
        if outcome["found"]:
            offset_frames = round(found[0].start_s * FP_SR / HOP)
            registered = index.get(pattern_id)
            outcome["refused"] = is_other_rendition(registered, query, offset_frames)
            outcome["refused_by_query"] = not any(m.pattern_id == pattern_id for m in index.query(query))
            outcome.update(rendition_measures(registered, query, offset_frames))
        outcomes.append(outcome)

    for k in range(THEMES):
        _probe_recordings(k, recordings, conditions, rng, speech, probe)
        pattern_id = f"theme-{k:02d}"
        tonic, notes = themes[pattern_id]
        instruments = TUNED_INSTRUMENTS if split == "tuned" else _random_instruments(rng)
        for name, instrument in instruments.items():
            for accompanied in (False, True):
                tempo = 1.0 if rng.random() < 0.5 else float(rng.uniform(0.98, 1.02))
                chords = (0.5 if split == "tuned" else float(rng.uniform(0.2, 0.7))) if accompanied else 0.0
                played = render(notes, instrument, tempo, chords, tonic, seed=k)
                start = int(rng.uniform(0, RECORDING_S - EXCERPT_S - 1) * SR)
                group = name if split == "tuned" else _group(instrument[0])
                probe(
                    pattern_id,
                    played[start : start + excerpt_n],
                    "re-orchestration",
                    group + (" + chords" if accompanied else ""),
                )
    return _summarize(split, outcomes)


def _summarize(split: str, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for outcome in outcomes:
        groups[(outcome["kind"], outcome["label"])].append(outcome)
    for (kind, label), members in sorted(groups.items()):
        found = [m for m in members if m["found"]]
        row = {
            "split": split,
            "kind": kind,
            "condition": label,
            "excerpts": len(members),
            "found": len(found),
            "refused": sum(m["refused"] for m in found),
            "refused_share": sum(m["refused"] for m in found) / len(found) if found else 0.0,
        }
        measured = [m for m in found if "foreign_overtones" in m]  # the service rows see matches only
        if measured:
            row["foreign_p90"] = float(np.percentile([m["foreign_overtones"] for m in measured], 90))
            row["missing_p90"] = float(np.percentile([m["missing_peaks"] for m in measured], 90))
        rows.append(row)
    own = [
        m
        for m in outcomes
        if m["kind"].startswith("recording") and m["found"] and m["label"] not in REPORTED_ONLY
    ]
    others = [m for m in outcomes if m["kind"] == "re-orchestration" and m["found"]]
    # the library's verdict (is_other_rendition) against what query() returned, where both were taken
    consistent = all(m["refused"] == m["refused_by_query"] for m in outcomes if "refused_by_query" in m)
    summary = {
        "split": split,
        "recording_found": len(own),
        "recording_refused": sum(m["refused"] for m in own),
        "reorchestrations_found": len(others),
        "reorchestrations_refused": sum(m["refused"] for m in others),
        "query_agrees": consistent,
    }
    summary["recording_refused_share"] = summary["recording_refused"] / max(1, len(own))
    summary["reorchestrations_refused_share"] = summary["reorchestrations_refused"] / max(1, len(others))
    return {"summary": summary, "rows": rows}


SERVICE_THEMES = 20
SERVICE_CONDITIONS = ["clean", "20dB", "0dB", "speech_10dB"]


def evaluate_service(speech: np.ndarray) -> dict[str, Any]:
    """Held-out material (20 themes, 20 pieces of music) as the match stage gets it: each excerpt through
    the chain before it (ingest's SNR estimate; the denoise stage, DeepFilterNet3 where installed, when it
    is under ``clean_snr_db``, as it is for most music; normalize to -23 LUFS) at the service's 16 kHz, then
    ``PatternSet.match`` with ``enhanced`` and ingest's audio as the match stage passes them (fingerprints
    are matched on the clip before the enhancer)."""
    sys.path.insert(0, str(ROOT / "functions"))
    import harmonic
    from harmonic_service.logic.options import Options
    from harmonic_service.logic.patterns import Pattern, PatternSet
    from harmonic_service.stages.denoise import NEURAL, denoise
    from harmonic_service.stages.normalize import normalize

    service_sr = 16_000
    options = Options()
    rng = np.random.default_rng(9)
    recordings, themes = _material("held_out", SERVICE_THEMES)
    patterns = PatternSet.from_patterns(
        [
            Pattern(
                pattern_id,
                pattern_id,
                "fingerprint",
                fingerprint(resample(y, SR, service_sr), service_sr).to_bytes(),
            )
            for pattern_id, y in recordings.items()
        ]
    )
    outcomes: list[dict[str, Any]] = []

    def probe(pattern_id: str, excerpt: np.ndarray, kind: str, label: str) -> None:
        audio, method = resample(excerpt, SR, service_sr).astype(np.float32), "none"
        ingested = audio  # what the match stage fingerprints after the enhancer (audio_before_enhancer)
        if harmonic.estimate_snr_db(audio, service_sr) < options.clean_snr_db:
            denoised = denoise(audio, service_sr)
            audio, method = denoised.audio, denoised.summary["method"]
        audio = normalize(audio, service_sr, options.target_lufs, options.peak_dbfs).audio
        enhanced = method == NEURAL

        def found(near_duplicates: bool) -> bool:
            matches = patterns.match(
                audio,
                service_sr,
                enhanced=enhanced,
                near_duplicates=near_duplicates,
                audio_before_enhancer=lambda: ingested,
            )
            return any(m["pattern_id"] == pattern_id for m in matches if m["kind"] == "fingerprint")

        outcome = {"kind": kind, "label": f"{label} ({method})", "found": found(True)}
        if outcome["found"]:
            outcome["refused"] = not found(False)
        outcomes.append(outcome)

    excerpt_n = int(EXCERPT_S * SR)
    for k in range(SERVICE_THEMES):
        _probe_recordings(k, recordings, SERVICE_CONDITIONS, rng, speech, probe)
        pattern_id = f"theme-{k:02d}"
        tonic, notes = themes[pattern_id]
        for instrument in _random_instruments(rng).values():
            chords = float(rng.uniform(0.2, 0.7)) if rng.random() < 0.5 else 0.0
            played = render(notes, instrument, 1.0, chords, tonic, seed=k)
            start = int(rng.uniform(0, RECORDING_S - EXCERPT_S - 1) * SR)
            probe(pattern_id, played[start : start + excerpt_n], "re-orchestration", _group(instrument[0]))
    return _summarize("service", outcomes)


def main() -> int:
    if shutil.which("sox") is None:
        print("eval_renditions: sox is needed for the codec and telephone conditions (make xspeaker-tools)")
        return 1
    started = time.perf_counter()
    speech = _speech()
    results = {split: evaluate(split, speech) for split in SPLITS}
    results["service"] = evaluate_service(speech)
    columns = [
        "split",
        "kind",
        "condition",
        "excerpts",
        "found",
        "refused",
        "refused_share",
        "foreign_p90",
        "missing_p90",
    ]
    for split, result in results.items():
        print(f"\nrenditions, {split}: refused = left out by default (near_duplicates=false)")
        print(table(result["rows"], columns))
        print(json.dumps(result["summary"]))
    held, service = results["held_out"]["summary"], results["service"]["summary"]
    ok = (
        held["recording_refused_share"] <= 0.01
        and held["reorchestrations_refused_share"] >= 0.80
        and service["recording_refused_share"] <= 0.01
        and all(result["summary"]["query_agrees"] for result in results.values())
    )
    elapsed = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "targets": "held out: recording refused <= 1 %, re-orchestrations refused >= 80 %; "
                "service: recording refused <= 1 %",
                **results,
                "pass": ok,
                "seconds": round(elapsed, 1),
            },
            indent=2,
        )
        + "\n"
    )
    verdict = "PASS" if ok else "FAIL"
    print(f"\neval_renditions: {verdict} in {elapsed:.0f} s (figures in {RESULTS.relative_to(ROOT)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
