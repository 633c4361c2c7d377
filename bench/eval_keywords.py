"""`make eval`: cross-speaker keyword spotting (issue 14, item 4) for every keyword matcher, side by side.

Material: scripts/make_xspeaker_testdata.py (espeak-ng, flite, festival; ALSA's recorded human voice),
generated into build/xspeaker on first use. Enrolment and query voices are disjoint in every split:

- tuned: 12 keywords, 60 queries, 30 negatives (the only split any constant was chosen on);
- held_out: 10 other keywords, 40 queries in speakers used nowhere in "tuned", 20 negatives;
- human: ALSA's "front left" ... "side right" (one recorded person), keywords front/rear/side/left/right/
  center enrolled by the held-out enrolment voices; each clip is a query for its first word (registry: front,
  rear, side + the 10 held-out keywords as distractors) and for its second word (left, right, center + the
  same distractors). No negatives.

Conditions: clean; white noise at 20 and 10 dB SNR; babble at 10 dB (sums of four other espeak-ng speakers);
music at 10 dB (synthetic: harmonic notes with envelopes, chords, drum hits; bench/eval_matching.synth_music).
The SNR is relative to the clip's mean power. Enrolment: one example per keyword (keyword k uses the
enrolment voice k mod 3, so every engine enrols some keywords) or all three. Every split gets the same noise
per clip, so the service's matcher (fused, and service) is measured once more on held_out and human under
noise drawn anew ("unseen noise": babble of other voices and texts, other music pieces, other white-noise
streams). "service" is fused after the chain's denoise (DeepFilterNet3 on a clip whose SNR estimate is under
30 dB) and normalize stages: what the match stage gets in the service. "fused" matches the noisy clip itself.

Metrics per (method, split, condition, examples):

- top1: the right keyword ranks first among those registered (a method that only reports detections above
  its threshold ranks nothing it did not detect);
- hit: top1 and its score is at or above the operating threshold (it is returned);
- located: hit and both ends within ±0.25 s of the truth;
- false_accept: share of negatives (no keyword) for which anything is returned.

Speed: one 5 s clip (babble at 10 dB) against 100 registered keywords, 20 runs, p50/p95, one core.

Usage: .venv/bin/python bench/eval_keywords.py [--methods a,b] [--splits tuned,held_out,human] [--quick]
Writes bench/results/eval_keywords.json (merging the methods run into what is there).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))

from harmonic import make_template, match_templates  # noqa: E402
from harmonic.matching import Match  # noqa: E402
from harmonic.templates import DEFAULT_THRESHOLD  # noqa: E402

DATA = ROOT / "build" / "xspeaker"
RESULTS = ROOT / "bench" / "results" / "eval_keywords.json"
SR = 16_000
CONDITIONS = ["clean", "white 20 dB", "white 10 dB", "babble 10 dB", "music 10 dB"]
SPLITS = ["tuned", "held_out", "human"]
UNSEEN = ", unseen noise"  # appended to a split's name in the rows measured under Conditions(unseen=True)
TOLERANCE_S = 0.25


def _script(name: str, path: Path) -> Any:
    """The module of a script that is not on the import path (bench/, scripts/), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _synth_music() -> Callable[[int, float], np.ndarray]:
    return _script("eval_matching", ROOT / "bench" / "eval_matching.py").synth_music


def read(path: Path) -> np.ndarray:
    sr, data = wavfile.read(path)
    y = data.astype(np.float64) / 32768.0
    return resample_poly(y, SR, sr) if sr != SR else y


# --- matchers -------------------------------------------------------------------------------------------
# A method: name, threshold, enrol(keyword -> examples, spellings) -> registry, search(registry, y) -> ranked
# matches (pattern_id, score, start_s, end_s), best first, ALL registered keywords when the method scores
# them all (the template matcher), only detections otherwise.


class TemplateMethod:
    """The numpy/scipy template matcher as the service uses it (harmonic.templates)."""

    name = "template"
    threshold = DEFAULT_THRESHOLD

    def enrol(self, examples: dict[str, list[np.ndarray]]) -> Any:
        return {word: [make_template(y, SR) for y in ys] for word, ys in examples.items()}

    def search(self, registry: Any, y: np.ndarray) -> list[Match]:
        return match_templates(y, SR, registry, threshold=0.0)


class SpellingMethod:
    """PocketSphinx keyphrase search with the keywords' cmudict pronunciations: no example used. The
    search returns every detection (min_score 0); the eval applies the spotter's operating threshold."""

    def __init__(self, name: str, denoised: bool = False, **options: Any) -> None:
        from harmonic.phonetic import DEFAULT_MIN_SCORE

        self.name = name
        self.denoised = denoised
        self.options = {**options, "min_score": 0.0}
        self.threshold = DEFAULT_MIN_SCORE if options.get("normalized", True) else 0.0

    def pronunciations(self, examples: dict[str, list[np.ndarray]]) -> dict[str, list[str]]:
        from harmonic.phonetic import pronounce

        return {word: [pronounce(word.split("#")[0])] for word in examples}

    def enrol(self, examples: dict[str, list[np.ndarray]]) -> Any:
        from harmonic.phonetic import KeywordSpotter

        return KeywordSpotter(self.pronunciations(examples), **self.options)

    def search(self, registry: Any, y: np.ndarray) -> list[Match]:
        if self.denoised:
            from harmonic import denoise

            y = denoise(y, SR)
        return registry.match(y, SR)


class ExampleMethod(SpellingMethod):
    """PocketSphinx keyphrase search with the phones decoded from the enrolment examples (no spelling)."""

    def pronunciations(self, examples: dict[str, list[np.ndarray]]) -> dict[str, list[str]]:
        from harmonic.phonetic import phones_of_example

        return {word: [phones_of_example(y, SR) for y in ys] for word, ys in examples.items()}


class CombinedMethod(SpellingMethod):
    """Both: the cmudict pronunciation and the phones decoded from each example."""

    def pronunciations(self, examples: dict[str, list[np.ndarray]]) -> dict[str, list[str]]:
        spelled = SpellingMethod.pronunciations(self, examples)
        decoded = ExampleMethod.pronunciations(self, examples)  # type: ignore[arg-type]
        return {word: spelled[word] + decoded[word] for word in examples}


class FusedMethod:
    """The service's matcher as a user gets it by registering both: under each keyword's name, a ``keyword``
    pattern by its spelling and a ``template`` per example, matched by the service's own PatternSet, which
    speaks per name for the detection furthest above its kind's threshold (0.575 template, 0.5 keyword), that
    margin moved by the templates' speech-embedding and Whisper evidence (logic.patterns.EMBEDDING_WEIGHT,
    WHISPER_WEIGHT). Like the template row, every keyword is scored (``min_margin=-1``: evidence below the
    thresholds too) and ranked by that margin (reported as margin + 0.5, so the operating threshold is 0.5: a
    hit is what the service returns)."""

    name = "fused"
    threshold = 0.5

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT / "functions"))

    def enrol(self, examples: dict[str, list[np.ndarray]]) -> Any:
        from harmonic_service.logic.patterns import Pattern, PatternSet, build_keyword

        patterns = []
        for word, ys in examples.items():
            patterns.append(Pattern(f"{word}/k", word, "keyword", build_keyword(word.split("#")[0], None)[0]))
            patterns += [
                Pattern(f"{word}/t{i}", word, "template", make_template(y, SR).to_bytes())
                for i, y in enumerate(ys)
            ]
        return PatternSet.from_patterns(patterns)

    def search(
        self, registry: Any, y: np.ndarray, enhanced: bool = False, before: np.ndarray | None = None
    ) -> list[Match]:
        """``before``: the clip before the chain, which the match stage fetches from ingest's output when
        the enhancer ran (for the fingerprints and Whisper's encoder; PatternSet.match)."""
        from harmonic_service.logic.patterns import margin

        # the service's order (best margin first), every keyword's evidence included (min_margin=-1)
        return [
            Match(m["name"], margin(m) + 0.5, m["start_s"], m["end_s"])
            for m in registry.match(
                y,
                SR,
                min_margin=-1.0,
                enhanced=enhanced,
                audio_before_enhancer=None if before is None else (lambda: before),
            )
        ]


class ServiceMethod(FusedMethod):
    """What the match stage gets in the service, matched as ``fused``: the chain before it runs first. The
    denoise stage (DeepFilterNet3 where its runtime is installed, spectral gating otherwise:
    stages/denoise.py) unless ingest's SNR estimate calls the clip clean (``Options.clean_snr_db``), then
    the normalize stage (-23 LUFS); an enhanced clip's scores are lowered by ENHANCED_MARGIN, as the match
    stage does. The ``fused`` rows give the matcher the noisy clip itself."""

    name = "service"

    def search(self, registry: Any, y: np.ndarray) -> list[Match]:
        import harmonic
        from harmonic_service.logic.options import Options
        from harmonic_service.stages.denoise import denoise
        from harmonic_service.stages.normalize import normalize

        options = Options()
        audio, method = np.asarray(y, dtype=np.float32), None
        if harmonic.estimate_snr_db(audio, SR) < options.clean_snr_db:
            denoised = denoise(audio, SR)
            audio, method = denoised.audio, denoised.summary["method"]
        audio = normalize(audio, SR, options.target_lufs, options.peak_dbfs).audio
        before = np.asarray(y, dtype=np.float32)  # ingest's audio: what audio_of("ingest") gives the stage
        return super().search(registry, audio, enhanced=method == "deepfilternet3", before=before)


class ServiceSpellingMethod(ServiceMethod):
    """A keyword registered by its spelling alone (``POST /v1/patterns {"kind": "keyword", "text"}``) as the
    match stage gets it: PocketSphinx searches the pronunciation, and the examples synthesized from the
    spelling (harmonic.synthesis) raise the margin; after the chain, as ``service``. Uses no example: its
    one- and three-example rows are the same registry."""

    name = "service-spelling"

    def enrol(self, examples: dict[str, list[np.ndarray]]) -> Any:
        from harmonic_service.logic.patterns import Pattern, PatternSet, build_keyword

        spelled = {word: build_keyword(word.split("#")[0], None)[0] for word in examples}
        return PatternSet.from_patterns(
            [Pattern(f"{word}/k", word, "keyword", artifact) for word, artifact in spelled.items()]
        )


class EmbeddingMethod:
    """The speech embeddings alone (harmonic.speech_embedding): each example's embeddings, as its template
    keeps them, found in the query's by subsequence DTW; every keyword scored by its best example. Returned
    at ``EMBEDDING_NEUTRAL``, where in the fused matcher they neither raise nor lower a margin. They place a
    word only to within a window (0.775 s), so no location is reported (located is 0 by construction)."""

    name = "embedding"

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT / "functions"))
        from harmonic_service.logic.patterns import EMBEDDING_NEUTRAL

        self.threshold = EMBEDDING_NEUTRAL

    def enrol(self, examples: dict[str, list[np.ndarray]]) -> Any:
        from harmonic.templates import example_embedding

        return {word: [example_embedding(y, SR) for y in ys] for word, ys in examples.items()}

    def search(self, registry: Any, y: np.ndarray) -> list[Match]:
        from harmonic.speech_embedding import best_scores, embed

        owners = [word for word, examples in registry.items() for _ in examples]
        every = [example for examples in registry.values() for example in examples]
        scores = best_scores(embed(y, SR), every)  # in one call, as the service's PatternSet does
        best: dict[str, float] = {}
        for word, score in zip(owners, scores, strict=True):
            best[word] = max(best.get(word, 0.0), float(score))
        found = [Match(word, score, float("nan"), float("nan")) for word, score in best.items()]
        return sorted(found, key=lambda match: match.score, reverse=True)


class KeywordExampleMethod(FusedMethod):
    """The service's ``keyword`` kind registered from the spelling and an example (``POST /v1/patterns``
    with ``text`` and a clip; one pattern per example under the keyword's name): PocketSphinx searches the
    spelling and the example's decoded phones, and the example's speech embeddings move the margin."""

    name = "keyword+example"

    def enrol(self, examples: dict[str, list[np.ndarray]]) -> Any:
        from harmonic import encode_wav
        from harmonic_service.logic.patterns import Pattern, PatternSet, build_keyword

        def artifact(word: str, y: np.ndarray) -> bytes:
            return build_keyword(word.split("#")[0], encode_wav(y, SR))[0]

        return PatternSet.from_patterns(
            [
                Pattern(f"{word}/k{i}", word, "keyword", artifact(word, y))
                for word, ys in examples.items()
                for i, y in enumerate(ys)
            ]
        )


METHODS = [
    "template",
    "embedding",
    "ps-spelling-untuned",
    "ps-spelling",
    "ps-spelling-denoised",
    "ps-spelling-adaptive",
    "ps-example",
    "ps-combined",
    "fused",
    "service",
    "service-spelling",
    "keyword+example",
]


def methods() -> dict[str, Any]:
    """Every method by name; only the template matcher when pocketsphinx is not installed."""
    from harmonic import phonetic

    if not phonetic.available():
        print("pocketsphinx is not installed: only the template matcher is measured", flush=True)
        return {"template": TemplateMethod(), "embedding": EmbeddingMethod()}
    return {
        "template": TemplateMethod(),
        "embedding": EmbeddingMethod(),
        "ps-spelling-untuned": SpellingMethod(
            "ps-spelling-untuned", normalized=False, denoise_stationary=False
        ),
        "ps-spelling": SpellingMethod("ps-spelling", denoise_stationary=False),
        "ps-example": ExampleMethod("ps-example", denoise_stationary=False),
        "ps-combined": CombinedMethod("ps-combined", denoise_stationary=False),
        "ps-spelling-denoised": SpellingMethod(
            "ps-spelling-denoised", denoised=True, denoise_stationary=False
        ),
        "ps-spelling-adaptive": SpellingMethod("ps-spelling-adaptive", denoise_stationary=True),
        "fused": FusedMethod(),
        "service": ServiceMethod(),
        "service-spelling": ServiceSpellingMethod(),
        "keyword+example": KeywordExampleMethod(),
    }


# --- material -------------------------------------------------------------------------------------------


def ensure_data() -> dict[str, Any]:
    if not (DATA / "manifest.json").exists():
        print(f"generating {DATA.relative_to(ROOT)} (scripts/make_xspeaker_testdata.py) ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_xspeaker_testdata.py")], check=True)
    return json.loads((DATA / "manifest.json").read_text())


def mix(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = noise[: y.size]
    scale = np.sqrt(np.mean(y**2) / (np.mean(noise**2) * 10 ** (snr_db / 10) + 1e-30))
    return y + scale * noise


class Conditions:
    """Noisy versions of a clip, reproducible per (condition, clip index).

    Every split gets the same noise per clip index: the same six babble beds, the same music pieces. So the
    noise under the held-out queries is noise the constants were chosen with. ``unseen=True`` draws it anew
    (other random streams, babble beds of other voices and texts: make_xspeaker_testdata.unseen_babble,
    music pieces of other seeds) for the "unseen noise" rows, which check that the held-out figures do not
    rest on having tuned on the very noise."""

    def __init__(self, babble: list[np.ndarray], unseen: bool = False) -> None:
        self.babble = babble
        self.synth_music = _synth_music()
        self.stream = 1 if unseen else 0
        self.music_seed = 70_000 if unseen else 5000

    def apply(self, condition: str, y: np.ndarray, index: int) -> np.ndarray:
        seed = [CONDITIONS.index(condition), index] + ([self.stream] if self.stream else [])
        rng = np.random.default_rng(seed)
        if condition == "clean":
            return y
        if condition.startswith("white"):
            return mix(y, rng.standard_normal(y.size), float(condition.split()[1]))
        if condition.startswith("babble"):
            bed = self.babble[index % len(self.babble)]
            offset = int(rng.integers(bed.size))
            return mix(y, np.resize(np.roll(bed, -offset), y.size), 10.0)
        if condition.startswith("music"):
            return mix(y, self.synth_music(self.music_seed + index, y.size / SR + 0.1), 10.0)
        raise ValueError(condition)


def unseen_conditions() -> Conditions:
    """Conditions(unseen=True), its babble beds synthesized into build/xspeaker on first use."""
    data_script = _script("xspeaker_data", ROOT / "scripts" / "make_xspeaker_testdata.py")
    return Conditions([read(path) for path in data_script.unseen_babble(DATA)], unseen=True)


def split_material(manifest: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """Registries of one split: [{keywords: {word: [3 examples]}, queries: [...], negatives: [...]}]."""

    def enrolled(kind: str) -> dict[str, list[np.ndarray]]:
        words: dict[str, list[np.ndarray]] = {}
        for entry in manifest["enrol"]:
            if entry["split"] == kind:
                words.setdefault(entry["keyword"], []).append(read(DATA / entry["file"]))
        return words

    def clips(kind: str, entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], np.ndarray]]:
        return [(entry, read(DATA / entry["file"])) for entry in entries if entry["split"] == kind]

    if split != "human":
        return [
            {
                "keywords": enrolled(split),
                "queries": clips(split, manifest["queries"]),
                "negatives": clips(split, manifest["negatives"]),
            }
        ]
    if not manifest["human"]:
        return []
    distractors, human = enrolled("held_out"), enrolled("human")
    registries = []
    for group in (("front", "rear", "side"), ("left", "right", "center")):
        registries.append(
            {
                "keywords": {**{w: human[w] for w in group}, **distractors},
                "queries": [(e, read(Path(e["file"]))) for e in manifest["human"] if e["keyword"] in group],
                "negatives": [],
            }
        )
    return registries


def one_example(keywords: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    return {word: [ys[k % len(ys)]] for k, (word, ys) in enumerate(keywords.items())}


def evaluate(
    method: Any,
    manifest: dict[str, Any],
    splits: list[str],
    conditions: Conditions,
    names: list[str] = CONDITIONS,
    label: str = "",
) -> list[dict]:
    """One row per split, example count and condition (of ``names``); ``label`` is appended to the split's
    name in the rows."""
    rows = []
    for split in splits:
        registries = split_material(manifest, split)
        if not registries:
            print(f"  {split}: no material (alsa-utils not installed?)", flush=True)
            continue
        for examples in (1, 3):
            built = []
            for material in registries:
                chosen = material["keywords"] if examples == 3 else one_example(material["keywords"])
                built.append((method.enrol(chosen), material))
            for condition in names:
                top1, hit, located, false, seconds = [], [], [], [], []
                by_engine: dict[str, list[bool]] = {}
                for registry, material in built:
                    for index, (entry, y) in enumerate(material["queries"]):
                        started = time.perf_counter()
                        ranked = method.search(registry, conditions.apply(condition, y, index))
                        seconds.append(time.perf_counter() - started)
                        right = bool(ranked) and ranked[0].pattern_id == entry["keyword"]
                        returned = right and ranked[0].score >= method.threshold and ranked[0].score > 0
                        top1.append(right)
                        by_engine.setdefault(entry.get("engine", "human"), []).append(right)
                        hit.append(returned)
                        located.append(
                            returned
                            and abs(ranked[0].start_s - entry["start_s"]) <= TOLERANCE_S
                            and abs(ranked[0].end_s - entry["end_s"]) <= TOLERANCE_S
                        )
                    for index, (_, y) in enumerate(material["negatives"]):
                        ranked = method.search(registry, conditions.apply(condition, y, 1000 + index))
                        false.append(any(m.score >= method.threshold and m.score > 0 for m in ranked))
                rows.append(
                    {
                        "method": method.name,
                        "split": split + label,
                        "condition": condition,
                        "examples": examples,
                        "queries": len(top1),
                        "top1": float(np.mean(top1)),
                        "hit": float(np.mean(hit)),
                        "located": float(np.mean(located)),
                        "negatives": len(false),
                        "false_accept": float(np.mean(false)) if false else float("nan"),
                        "ms_per_query": 1000 * float(np.mean(seconds)),
                        "top1_by_engine": {
                            k: round(float(np.mean(v)), 3) for k, v in sorted(by_engine.items())
                        },
                    }
                )
                print(table(rows[-1:], header=False), flush=True)
    return rows


def speed(method: Any, manifest: dict[str, Any], conditions: Conditions) -> dict[str, Any]:
    """One 5 s clip against 100 keywords: enrol 100 (the tuned and held-out keywords' examples, cycled,
    as distinct pattern ids), time 20 searches."""
    examples = [(e["keyword"], read(DATA / e["file"])) for e in manifest["enrol"] if e["split"] != "human"]
    registry_examples = {
        f"{examples[k % len(examples)][0]}#{k}": [examples[k % len(examples)][1]] for k in range(100)
    }
    started = time.perf_counter()
    registry = method.enrol(registry_examples)
    enrol_s = time.perf_counter() - started
    queries = [read(DATA / e["file"]) for e in manifest["queries"][:3]]
    clip = np.concatenate(queries)[: 5 * SR]
    clip = conditions.apply("babble 10 dB", np.pad(clip, (0, max(0, 5 * SR - clip.size))), 0)
    times = []
    for _ in range(20):
        started = time.perf_counter()
        method.search(registry, clip)
        times.append(1000 * (time.perf_counter() - started))
    return {
        "method": method.name,
        "keywords": 100,
        "clip_s": 5.0,
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "enrol_100_s": enrol_s,
    }


def cold_start() -> dict[str, float]:
    """Fresh-interpreter import and first-search costs of the PocketSphinx path."""
    code = (
        "import time,sys;sys.path.insert(0,{!r});t=time.perf_counter();import numpy;"
        "from harmonic import phonetic;import pocketsphinx;a=time.perf_counter()-t;"
        "t=time.perf_counter();s=phonetic.KeywordSpotter({{'w':[phonetic.pronounce('weather')]}});"
        "b=time.perf_counter()-t;t=time.perf_counter();s.match(numpy.zeros(16000)+1e-3,16000);"
        "c=time.perf_counter()-t;print(a,b,c)"
    ).format(str(ROOT / "layers" / "harmonic" / "python"))
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return {"import_s": float(out[0]), "first_spotter_s": float(out[1]), "first_search_s": float(out[2])}


def package_size_mb() -> dict[str, float]:
    try:
        import pocketsphinx
    except ImportError:
        return {}
    base = Path(pocketsphinx.__file__).parent
    total = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
    word_lm = base / "model" / "en-us" / "en-us.lm.bin"
    return {
        "pocketsphinx_mb": round(total / 1e6, 1),
        "without_word_lm_mb": round((total - (word_lm.stat().st_size if word_lm.exists() else 0)) / 1e6, 1),
    }


COLUMNS = [
    "method",
    "split",
    "condition",
    "examples",
    "queries",
    "top1",
    "hit",
    "located",
    "negatives",
    "false_accept",
    "ms_per_query",
]


def table(rows: list[dict[str, Any]], header: bool = True, columns: list[str] = COLUMNS) -> str:
    widths = {"method": 20, "split": 8, "condition": 12}

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if value != value else (f"{value:.3f}" if value < 10 else f"{value:.0f}")
        return str(value)

    lines = []
    if header:
        lines.append("  ".join(c.rjust(max(len(c), widths.get(c, 0))) for c in columns))
    for row in rows:
        lines.append("  ".join(cell(row.get(c, "")).rjust(max(len(c), widths.get(c, 0))) for c in columns))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    manifest = ensure_data()
    babble = [read(DATA / entry["file"]) for entry in manifest["babble"]]
    conditions = Conditions(babble)
    every = methods() if args.methods != "template" else {"template": TemplateMethod()}
    chosen = [every[name] for name in args.methods.split(",") if name in every]
    names = [method.name for method in chosen]
    splits = args.splits.split(",")
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    accuracy = [
        r for r in results.get("accuracy", []) if r["method"] not in names or r["split"] not in splits
    ]
    timing = [r for r in results.get("speed", []) if args.no_speed or r["method"] not in names]
    print("cross-speaker keyword spotting (bench/eval_keywords.py; material build/xspeaker)")
    print(table([]))
    for method in chosen:
        rows = evaluate(method, manifest, splits, conditions)
        accuracy += rows
        if not args.no_speed:
            timing.append(speed(method, manifest, conditions))
    # the service's matcher, alone and after the chain, under noise nothing was tuned on
    for name in [name for name in ("fused", "service") if name in names and "held_out" in splits]:
        print(f"\n{name} under noise drawn anew", flush=True)
        accuracy = [r for r in accuracy if not (r["method"] == name and r["split"].endswith(UNSEEN))]
        held = [split for split in ("held_out", "human") if split in splits]
        accuracy += evaluate(every[name], manifest, held, unseen_conditions(), CONDITIONS[1:], UNSEEN)
    print("\ntop-1 by engine of the query voice, clean, 3 examples (spelling methods: no example)")
    for row in accuracy:
        if row["condition"] == "clean" and row["examples"] == 3:
            engines = ", ".join(f"{k} {v:.2f}" for k, v in row.get("top1_by_engine", {}).items())
            print(f"  {row['method']:>20}  {row['split']:>8}  {engines}")
    if timing:
        print("\nspeed: a 5 s clip (babble at 10 dB) against 100 keywords, one core, 20 runs")
        print(table(timing, columns=["method", "keywords", "clip_s", "p50_ms", "p95_ms", "enrol_100_s"]))
    extra: dict[str, Any] = {}
    if any(not isinstance(m, TemplateMethod) for m in chosen):
        extra = {"pocketsphinx_cold_start": cold_start(), "pocketsphinx_size": package_size_mb()}
        print(f"\npocketsphinx: {extra}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                **results,
                **extra,
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version},
                "accuracy": accuracy,
                "speed": timing,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\neval_keywords: {time.perf_counter() - started:.0f} s (figures in {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
