"""`make eval`: keyword templates and audio fingerprints measured against the targets of the matching issue.

**Keywords** — tests/data/keywords (espeak-ng; regenerate with scripts/make_keyword_testdata.py): 10 keywords,
each enrolled from 3 examples (3 voices); 80 queries in 8 other voices and speaking rates (125–200 wpm),
each a carrier phrase around the keyword ("please say X right now"); 50 utterances without any keyword.
White noise is added over the whole utterance at each SNR (seeded). At the default threshold:

- top-1: the best match is the right keyword (and is returned at all);
- located: top-1 and its start and end both within 0.25 s of the truth;
- false accept: an utterance without a keyword returns any match.

Split "tuned" is the material the matcher's constants and threshold were chosen on; "held_out" (2 voices,
10 negatives) was generated after that choice. The targets apply to "all".

**Fingerprints** — three materials generated here from seeds, each its own registry of 60 recordings of
30 s; two 5 s excerpts of each at random offsets, white noise at each SNR; 100 excerpts of unregistered
pieces of the same material. Top-1 = the best match is the excerpt's recording; located = its start within
0.1 s of the offset.

- **music**: melodies of harmonic notes with decaying envelopes in a per-piece key and mode, a chord bed,
  percussive noise bursts (:func:`synth_music`);
- **sparse tonal**: a melody of single tones (a fundamental and a weak octave), notes of irregular length
  with rests, nothing else: 3–4 spectral peaks per second (:func:`synth_sparse_tonal`);
- **grid**: a tune on a strict 0.25 s grid (a struck note of random pitch on every beat, clicks), whose
  chance coincidences pile onto multiples of the beat (:func:`synth_grid_tune`).

The fingerprint constants of format 3 (the 2 s target zone, the Δt neighbours, the cohort ratio) were chosen
on registries seeded 100–159 of these generators (the sparse one drawing its notes in another order) with
unregistered pieces seeded 20,000 up; the registries here are seeded 0–59 (music), 5000–5059 (sparse
tonal) and 6000–6059 (grid), with unregistered pieces from seed 10,000 up, none of them seen then.

**Speed** — fingerprint query latency against 1, 10, 100 and 1,000 registered recordings (the 1,000 are
10 s pieces, to keep the evaluation to minutes; the index holds their ~1.7 M hashes), with the 5 s excerpt's
fingerprinting timed apart; keyword matching time per template per second of query for 1 … 1,000
templates. BLAS runs single-threaded, like a 1-vCPU Lambda.

Writes bench/results/eval_matching.json and exits non-zero when a target is missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: tiny matmuls, as on a 1-vCPU Lambda
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))

from harmonic import FingerprintIndex, Template, fingerprint, make_template, match_templates  # noqa: E402
from harmonic.templates import DEFAULT_THRESHOLD  # noqa: E402

KEYWORDS = ROOT / "tests" / "data" / "keywords"
RESULTS = ROOT / "bench" / "results" / "eval_matching.json"
SR = 16_000
KEYWORD_SNRS: list[float | None] = [None, 20.0, 10.0]
FINGERPRINT_SNRS = [10.0, 0.0, -5.0]
REGISTERED, RECORDING_S, EXCERPT_S, EXCERPTS_EACH, UNREGISTERED = 60, 30.0, 5.0, 2, 100
SPEED_SIZES = (1, 10, 100, 1000)
SPEED_RECORDING_S = 10.0


def read(path: Path) -> np.ndarray:
    sr, data = wavfile.read(path)
    if sr != SR:
        raise SystemExit(f"{path}: expected {SR} Hz, got {sr}")
    return data.astype(np.float64) / 32768.0


def add_noise(y: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    """``y`` plus white Gaussian noise at ``snr_db`` relative to y's mean power (None: unchanged)."""
    if snr_db is None:
        return y
    noise = rng.standard_normal(y.size)
    scale = np.sqrt(np.mean(y**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return y + scale * noise


def snr_label(snr_db: float | None) -> str:
    return "clean" if snr_db is None else f"{snr_db:g} dB"


# --- keywords -------------------------------------------------------------------------------------------


def enrolled_templates(manifest: dict[str, Any]) -> dict[str, list[Template]]:
    templates: dict[str, list[Template]] = {}
    for entry in manifest["enrol"]:
        templates.setdefault(entry["keyword"], []).append(make_template(read(KEYWORDS / entry["file"]), SR))
    return templates


def evaluate_keywords(manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    templates = enrolled_templates(manifest)
    queries = [(entry, read(KEYWORDS / entry["file"])) for entry in manifest["queries"]]
    negatives = [(entry, read(KEYWORDS / entry["file"])) for entry in manifest["negatives"]]
    rows, ok = [], True
    for snr in KEYWORD_SNRS:
        rng = np.random.default_rng(2024)
        outcomes: dict[str, dict[str, list[bool]]] = {}
        for entry, y in queries:
            matches = match_templates(add_noise(y, snr, rng), SR, templates)
            top1 = bool(matches) and matches[0].pattern_id == entry["keyword"]
            located = top1 and (
                abs(matches[0].start_s - entry["start_s"]) <= 0.25
                and abs(matches[0].end_s - entry["end_s"]) <= 0.25
            )
            for split in (entry["split"], "all"):
                outcome = outcomes.setdefault(split, {"top1": [], "located": [], "false": []})
                outcome["top1"].append(top1)
                outcome["located"].append(located)
        for entry, y in negatives:
            accepted = bool(match_templates(add_noise(y, snr, rng), SR, templates))
            for split in (entry["split"], "all"):
                outcomes.setdefault(split, {"top1": [], "located": [], "false": []})["false"].append(accepted)
        for split in ("tuned", "held_out", "all"):
            outcome = outcomes[split]
            row: dict[str, Any] = {
                "snr": snr_label(snr),
                "split": split,
                "queries": len(outcome["top1"]),
                "top1": float(np.mean(outcome["top1"])),
                "located": float(np.mean(outcome["located"])),
                "negatives": len(outcome["false"]),
                "false_accept": float(np.mean(outcome["false"])),
            }
            if split == "all":
                wanted = 0.90 if snr is not None and snr <= 10 else 0.95
                passed = row["top1"] >= wanted and row["false_accept"] <= 0.10
                if snr == 20:
                    passed = passed and row["located"] >= 0.90
                row["target"] = f"top1≥{wanted:.2f}, FA≤0.10" + (", loc≥0.90" if snr == 20 else "")
                row["pass"] = passed
                ok &= passed
            rows.append(row)
    return rows, ok


# --- synthetic music --------------------------------------------------------------------------------------


def synth_music(seed: int, seconds: float, sr: int = SR) -> np.ndarray:
    """A reproducible piece: a melody of harmonic notes with decaying envelopes in its own key and mode,
    a chord bed, and percussive noise bursts. Peak-normalized to 0.8."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    tempo = rng.uniform(0.15, 0.45)  # seconds per note
    modes = [[0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10], [0, 2, 4, 7, 9], [0, 3, 5, 6, 7, 10]]
    steps = np.array(modes[rng.integers(len(modes))])
    steps = np.concatenate([steps, steps + 12])
    scale = rng.uniform(150.0, 330.0) * 2 ** (steps / 12)
    t0 = 0.0
    while t0 < seconds:
        length = tempo * rng.choice([1, 1, 2, 0.5])
        f = scale[rng.integers(scale.size)] * rng.choice([0.5, 1, 2])
        start, stop = int(t0 * sr), min(n, int((t0 + length) * sr))
        t = np.arange(stop - start) / sr
        envelope = np.exp(-t * rng.uniform(2, 8)) * np.minimum(1, t * 200)
        note = sum(
            rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * k * f * t + rng.uniform(0, 6)) for k in range(1, 6)
        )
        y[start:stop] += envelope * note
        if rng.random() < 0.3:  # a drum hit
            hit = min(stop - start, 800)
            y[start : start + hit] += 0.5 * rng.standard_normal(hit) * np.exp(-np.arange(hit) / 150)
        t0 += length
    chord_period = tempo * 8
    for k in range(int(seconds / chord_period) + 1):
        start, stop = int(k * chord_period * sr), min(n, int((k + 1) * chord_period * sr))
        t = np.arange(stop - start) / sr
        root = scale[rng.integers(5)] / 2
        y[start:stop] += 0.2 * sum(np.sin(2 * np.pi * root * r * t) for r in (1, 1.26, 1.5))
    return y / (np.max(np.abs(y)) + 1e-9) * 0.8


def synth_sparse_tonal(seed: int, seconds: float, sr: int = SR) -> np.ndarray:
    """A reproducible sparse melody: one tone at a time (fundamental and an octave at -12 dB), 0.2-1.2 s
    notes with a decaying envelope and rests between some, on a major scale over a random tonic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    steps = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    tonic = rng.uniform(180.0, 330.0)
    t0 = 0.0
    while t0 < seconds:
        length = rng.choice([0.25, 0.5, 0.5, 0.75, 1.0]) * rng.uniform(0.8, 1.2)
        f = tonic * 2 ** (steps[rng.integers(steps.size)] / 12)
        start, stop = int(t0 * sr), min(n, int((t0 + length) * sr))
        t = np.arange(stop - start) / sr
        envelope = np.exp(-3.0 * t) * np.minimum(1, t * 100) * np.minimum(1, (length - t) * 50)
        y[start:stop] += envelope * (np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t))
        t0 += length + rng.choice([0.0, 0.0, 0.1, 0.25])
    return y / (np.max(np.abs(y)) + 1e-9) * 0.8


def synth_grid_tune(seed: int, seconds: float, sr: int = SR) -> np.ndarray:
    """A reproducible tune on a strict grid: every 0.25 s a struck note of random pitch (150-900 Hz, four
    partials, decaying), and a click on about a third of the beats."""
    rng = np.random.default_rng(seed)
    beat = sr // 4
    y = np.zeros(int(seconds * sr))
    t = np.arange(beat) / sr
    for start in range(0, y.size - beat, beat):
        f = rng.uniform(150, 900)
        y[start : start + beat] += np.exp(-t * 6) * sum(
            np.sin(2 * np.pi * k * f * t) / k for k in range(1, 5)
        )
        if rng.random() < 0.3:
            y[start : start + 400] += 0.5 * rng.standard_normal(400) * np.exp(-np.arange(400) / 80)
    return y / (np.max(np.abs(y)) + 1e-9) * 0.8


#: material -> (generator, first seed of the registered recordings)
FINGERPRINT_MATERIALS = {
    "music": (synth_music, 0),
    "sparse tonal": (synth_sparse_tonal, 5000),
    "grid": (synth_grid_tune, 6000),
}


def evaluate_fingerprints() -> tuple[list[dict[str, Any]], bool]:
    rows, ok = [], True
    for material, (generate, first_seed) in FINGERPRINT_MATERIALS.items():
        material_rows, material_ok = _evaluate_fingerprints(material, generate, first_seed)
        rows += material_rows
        ok &= material_ok
    return rows, ok


def _evaluate_fingerprints(
    material: str, generate: Any, first_seed: int
) -> tuple[list[dict[str, Any]], bool]:
    index = FingerprintIndex()
    recordings = {f"track-{k:03d}": generate(first_seed + k, RECORDING_S) for k in range(REGISTERED)}
    for pattern_id, y in recordings.items():
        index.add(pattern_id, fingerprint(y, SR))
    unregistered = [generate(10_000 + first_seed + k, EXCERPT_S) for k in range(UNREGISTERED)]
    rows, ok = [], True
    for snr in FINGERPRINT_SNRS:
        rng = np.random.default_rng(77)
        correct = located = tested = 0
        for pattern_id, y in recordings.items():
            for _ in range(EXCERPTS_EACH):
                offset = rng.uniform(0, RECORDING_S - EXCERPT_S)
                start = int(offset * SR)
                excerpt = add_noise(y[start : start + int(EXCERPT_S * SR)], snr, rng)
                matches = index.query(fingerprint(excerpt, SR))
                tested += 1
                if matches and matches[0].pattern_id == pattern_id:
                    correct += 1
                    located += abs(matches[0].start_s - start / SR) <= 0.1
        false_matches = sum(bool(index.query(fingerprint(add_noise(y, snr, rng), SR))) for y in unregistered)
        row: dict[str, Any] = {
            "material": material,
            "snr": snr_label(snr),
            "registered": REGISTERED,
            "excerpts": tested,
            "top1": correct / tested,
            "located": located / tested,
            "unregistered": UNREGISTERED,
            "false_match": false_matches / UNREGISTERED,
        }
        if snr >= 0:  # the targets are at 0 dB (and anything cleaner); -5 dB is reported only
            passed = row["top1"] >= 0.95 and false_matches * 20 <= UNREGISTERED
            row["target"] = "top1≥0.95, false≤1/20"
            row["pass"] = passed
            ok &= passed
        else:
            row["target"] = "(reported)"
            row["pass"] = false_matches * 20 <= UNREGISTERED
            ok &= row["pass"]
        rows.append(row)
    return rows, ok


# --- speed --------------------------------------------------------------------------------------------------


def _median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def speed(manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    recordings = [synth_music(20_000 + k, SPEED_RECORDING_S) for k in range(max(SPEED_SIZES))]
    fingerprints = [fingerprint(y, SR) for y in recordings]
    rng = np.random.default_rng(5)
    excerpt = add_noise(recordings[0][2 * SR : 7 * SR], 0.0, rng)  # 5 s of a registered piece at 0 dB
    fingerprint_ms = _median_ms(lambda: fingerprint(excerpt, SR), 9)
    query = fingerprint(excerpt, SR)
    enrolled = [t for ts in enrolled_templates(manifest).values() for t in ts]
    keyword_entry = max(manifest["queries"], key=lambda entry: entry["end_s"])
    keyword_query = read(KEYWORDS / keyword_entry["file"])
    query_s = keyword_query.size / SR
    rows, ok = [], True
    for size in SPEED_SIZES:
        index = FingerprintIndex()
        for k in range(size):
            index.add(f"r{k}", fingerprints[k])
        started = time.perf_counter()
        found = index.query(query)  # the first query after a change builds the lookup arrays
        build_ms = (time.perf_counter() - started) * 1000
        query_ms = _median_ms(lambda index=index: index.query(query), 21)
        templates = {f"k{k}": enrolled[k % len(enrolled)] for k in range(size)}
        template_ms = _median_ms(
            lambda templates=templates: match_templates(keyword_query, SR, templates), 3 if size < 1000 else 1
        )
        row = {
            "registered": size,
            "hashes": int(sum(len(fp) for fp in fingerprints[:size])),
            "fp_build_ms": build_ms,
            "fp_query_ms": query_ms,
            "fp_query_with_fingerprinting_ms": query_ms + fingerprint_ms,
            "fp_found": bool(found) and found[0].pattern_id == "r0",
            "templates_ms": template_ms,
            "ms_per_template_per_query_s": template_ms / size / query_s,
            "query_s": query_s,
        }
        if size == 1000:
            row["pass"] = row["fp_query_ms"] <= 50.0 and row["fp_found"]
            ok &= row["pass"]
        rows.append(row)
    return rows, ok


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, float):
            return f"{value:.3f}" if value < 10 else f"{value:.1f}"
        return str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[k]) for line in cells)) for k, column in enumerate(columns)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True))]
    for line in cells:
        lines.append("  ".join(value.rjust(width) for value, width in zip(line, widths, strict=True)))
    return "\n".join(lines)


def main() -> int:
    started = time.perf_counter()
    manifest = json.loads((KEYWORDS / "manifest.json").read_text())
    keyword_rows, keywords_ok = evaluate_keywords(manifest)
    keywords = sorted({entry["keyword"] for entry in manifest["enrol"]})
    print(
        f"keywords: {len(keywords)} keywords x {len(manifest['enrol']) // len(keywords)} enrolment examples; "
        f"{len(manifest['queries'])} queries in unseen voices; {len(manifest['negatives'])} utterances "
        f"without a keyword; default threshold {DEFAULT_THRESHOLD}"
    )
    print(
        table(
            keyword_rows,
            ["snr", "split", "queries", "top1", "located", "negatives", "false_accept", "target", "pass"],
        )
    )
    fp_rows, fp_ok = evaluate_fingerprints()
    print(
        f"\nfingerprints: {REGISTERED} registered recordings of {RECORDING_S:g} s per material; "
        f"{EXCERPTS_EACH} excerpts of {EXCERPT_S:g} s each per SNR; {UNREGISTERED} unregistered excerpts"
    )
    print(
        table(
            fp_rows,
            [
                "material",
                "snr",
                "registered",
                "excerpts",
                "top1",
                "located",
                "unregistered",
                "false_match",
                "target",
                "pass",
            ],
        )
    )
    speed_rows, speed_ok = speed(manifest)
    print(
        f"\nspeed (median ms): fingerprint registry of {SPEED_RECORDING_S:g} s pieces; fp_build = the first "
        "query after a change (lookup arrays rebuilt); fp_query = a 5 s excerpt at 0 dB already "
        "fingerprinted, +fingerprinting = with its fingerprint computed; templates: a "
        f"{speed_rows[0]['query_s']:.2f} s query against N templates (5 warps each)"
    )
    print(
        table(
            speed_rows,
            [
                "registered",
                "hashes",
                "fp_build_ms",
                "fp_query_ms",
                "fp_query_with_fingerprinting_ms",
                "fp_found",
                "templates_ms",
                "ms_per_template_per_query_s",
            ],
        )
    )
    elapsed = time.perf_counter() - started
    ok = keywords_ok and fp_ok and speed_ok
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version},
                "default_threshold": DEFAULT_THRESHOLD,
                "keywords": keyword_rows,
                "fingerprints": fp_rows,
                "speed": speed_rows,
                "pass": ok,
                "seconds": round(elapsed, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\neval: {'PASS' if ok else 'FAIL'} in {elapsed:.0f} s (figures in {RESULTS.relative_to(ROOT)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
