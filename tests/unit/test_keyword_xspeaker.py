"""Cross-speaker keyword spotting gate (issue 14): the committed held-out subset of bench/eval_keywords.py.

tests/data/xspeaker (scripts/make_xspeaker_testdata.py --subset): 10 held-out keywords enrolled by espeak-ng
en-gb-x-rp+f3, flite kal16 and festival kal_diphone; 20 queries by espeak-ng en-us-nyc+f4 and festival slt
(speakers that enrolled nothing); 10 sentences without a keyword. No constant of either matcher was chosen
on this material.

The floors are the figures measured on this subset (on 2026-11-30; the fused matcher's on 2026-12-01, with
the speech embeddings; docs/matching.md), rounded down by one query (0.05) or one negative (0.1) so that a
regression of two or more fails; most are below the issue's goal, which no matcher meets yet in noise.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from harmonic import make_template, match_templates, phonetic
from harmonic.templates import DEFAULT_THRESHOLD

DATA = Path(__file__).resolve().parents[1] / "data" / "xspeaker"
SR = 16_000


@cache
def _read(name: str) -> np.ndarray:
    sr, data = wavfile.read(DATA / name)
    assert sr == SR
    return data.astype(np.float64) / 32768.0


@cache
def _manifest() -> dict:
    return json.loads((DATA / "manifest.json").read_text())


def _noisy(y: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    if snr_db is None:
        return y
    noise = np.random.default_rng(seed).standard_normal(y.size)
    return y + noise * np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10))


def _examples(count: int) -> dict[str, list[np.ndarray]]:
    words: dict[str, list[np.ndarray]] = {}
    for entry in _manifest()["enrol"]:
        words.setdefault(entry["keyword"], []).append(_read(entry["file"]))
    # one example: keyword k keeps the example of enrolment voice k mod 3 (as bench/eval_keywords.py)
    return {w: ys if count == 3 else [ys[k % len(ys)]] for k, (w, ys) in enumerate(words.items())}


def _measure(search, threshold: float, snr_db: float | None) -> dict[str, float]:
    """top1, hit (top1 at or above threshold), located (hit, both ends ±0.25 s), false accepts."""
    top1, hit, located, false = [], [], [], []
    for index, entry in enumerate(_manifest()["queries"]):
        ranked = search(_noisy(_read(entry["file"]), snr_db, index))
        right = bool(ranked) and ranked[0].pattern_id == entry["keyword"]
        returned = right and ranked[0].score >= threshold
        top1.append(right)
        hit.append(returned)
        located.append(
            returned
            and abs(ranked[0].start_s - entry["start_s"]) <= 0.25
            and abs(ranked[0].end_s - entry["end_s"]) <= 0.25
        )
    for index, entry in enumerate(_manifest()["negatives"]):
        ranked = search(_noisy(_read(entry["file"]), snr_db, 1000 + index))
        false.append(any(match.score >= threshold for match in ranked))
    return {
        name: float(np.mean(v))
        for name, v in zip(("top1", "hit", "located", "fa"), (top1, hit, located, false), strict=True)
    }


def test_the_subset_is_cross_speaker_and_small() -> None:
    manifest = _manifest()
    enrol = {(e["engine"], e["voice"]) for e in manifest["enrol"]}
    query = {(e["engine"], e["voice"]) for e in manifest["queries"] + manifest["negatives"]}
    assert enrol.isdisjoint(query)
    assert len({e["keyword"] for e in manifest["enrol"]}) == 10
    assert len(manifest["queries"]) == 20
    assert len(manifest["negatives"]) == 10
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 4_000_000


# (examples, SNR) -> floors of top1, hit, located and ceiling of false accepts. Measured 2026-11-30
# (top1 / hit / located / false accepts): 1 example clean 0.40 / 0.20 / 0.20 / 0.0; 3 examples clean
# 0.75 / 0.40 / 0.40 / 0.0; 3 examples at 10 dB 0.70 / 0.30 / 0.30 / 0.2.
TEMPLATE_FLOORS = {
    (1, None): (0.35, 0.15, 0.15, 0.1),
    (3, None): (0.70, 0.35, 0.35, 0.1),
    (3, 10.0): (0.65, 0.25, 0.25, 0.3),
}
# (denoise stationary noise first, SNR) -> the same, for PocketSphinx by spelling (no example). Measured
# 2026-11-30 with every query decoded from the model's initial feature state (phonetic._decode): plain clean
# 0.50 / 0.50 / 0.50 / 0.0, at 10 dB 0.45 / 0.40 / 0.25 / 0.2; with the stationary-noise denoising clean
# 0.50 / 0.50 / 0.50 / 0.0, at 10 dB 0.45 / 0.30 / 0.20 / 0.1. (Plain at 10 dB measured 0.55 / 0.50 / 0.35
# while each query inherited the cepstral mean of the noisy queries before it, which no service query may.)
SPELLING_FLOORS = {
    (False, None): (0.45, 0.45, 0.45, 0.1),
    (False, 10.0): (0.40, 0.35, 0.20, 0.3),
    (True, None): (0.45, 0.45, 0.45, 0.1),
    (True, 10.0): (0.40, 0.25, 0.15, 0.2),
}


@pytest.mark.parametrize(("examples", "snr_db"), list(TEMPLATE_FLOORS))
def test_template_matcher_on_held_out_speakers(examples: int, snr_db: float | None) -> None:
    templates = {w: [make_template(y, SR) for y in ys] for w, ys in _examples(examples).items()}
    measured = _measure(lambda y: match_templates(y, SR, templates, threshold=0.0), DEFAULT_THRESHOLD, snr_db)
    top1, hit, located, fa = TEMPLATE_FLOORS[(examples, snr_db)]
    assert measured["top1"] >= top1, measured
    assert measured["hit"] >= hit, measured
    assert measured["located"] >= located, measured
    assert measured["fa"] <= fa, measured


@pytest.mark.parametrize(("denoise", "snr_db"), list(SPELLING_FLOORS))
def test_pocketsphinx_spelling_on_held_out_speakers(denoise: bool, snr_db: float | None) -> None:
    spotter = phonetic.KeywordSpotter(
        {w: [phonetic.pronounce(w)] for w in _examples(1)}, min_score=0.0, denoise_stationary=denoise
    )
    measured = _measure(lambda y: spotter.match(y, SR), phonetic.DEFAULT_MIN_SCORE, snr_db)
    top1, hit, located, fa = SPELLING_FLOORS[(denoise, snr_db)]
    assert measured["top1"] >= top1, measured
    assert measured["hit"] >= hit, measured
    assert measured["located"] >= located, measured
    assert measured["fa"] <= fa, measured


def test_a_query_is_decoded_the_same_whatever_was_decoded_before() -> None:
    """PocketSphinx keeps feature state (the live cepstral mean) across utterances; the spotter starts every
    query afresh, so one client's clip never moves the next client's scores."""
    spotter = phonetic.KeywordSpotter({w: [phonetic.pronounce(w)] for w in _examples(1)}, min_score=0.0)
    entries = _manifest()["queries"]
    queries = [_noisy(_read(entry["file"]), 10.0, index) for index, entry in enumerate(entries)]
    forward = [spotter.detections(y, SR) for y in queries]
    backward = [spotter.detections(y, SR) for y in reversed(queries)][::-1]
    assert forward == backward


def _fused_registry(examples: int):
    """The service's PatternSet when a user registers each keyword both ways: by its spelling (a ``keyword``
    pattern) and one ``template`` per example, all under the keyword's name."""
    from harmonic_service.logic.patterns import Pattern, PatternSet, build_keyword

    patterns = []
    for word, ys in _examples(examples).items():
        patterns.append(Pattern(f"{word}/k", word, "keyword", build_keyword(word, None)[0]))
        patterns += [
            Pattern(f"{word}/t{i}", word, "template", make_template(y, SR).to_bytes())
            for i, y in enumerate(ys)
        ]
    return PatternSet.from_patterns(patterns)


# (examples, SNR) -> the same, for the service's fused matcher: under each keyword's name a keyword pattern by
# its spelling and a template per example, matched by PatternSet (per name, the detection furthest above its
# kind's threshold, moved by the templates' speech-embedding and Whisper evidence), ranked by that margin;
# only what the service returns counts. Measured 2026-12-01 with the speech embeddings (before them,
# 2026-11-30: 0.60 / 0.60 / 0.60 / 0.0; 0.70 / 0.70 / 0.70 / 0.0; 0.40 / 0.40 / 0.35 / 0.3): 1 example clean
# 0.65 / 0.65 / 0.65 / 0.0; 3 examples clean 0.85 / 0.85 / 0.85 / 0.0; 3 examples at 10 dB 0.45 / 0.45 / 0.40
# / 0.1; the same since the embeddings are scored against average speech (speech_embedding.BACKGROUND_WEIGHT),
# but at 10 dB with no false accept (0.0). Since keywords keep examples synthesized from their spelling
# (harmonic.synthesis; docs/matching.md, "Synthesized examples"), measured 2026-12-01: 1 example clean 0.85 /
# 0.85 / 0.75 / 0.0; 3 examples clean 1.00 / 1.00 / 1.00 / 0.1; 3 examples at 10 dB 0.50 / 0.50 / 0.45 / 0.0.
# Since their evidence is measured from each keyword's level on background speech, and a name they raise is
# placed where they lie ("Calibrated synthesized evidence"), measured 2026-12-01: 1 example clean 0.95 / 0.95
# / 0.95 / 0.0; 3 examples clean the same as before; 3 examples at 10 dB 0.55 / 0.55 / 0.55 / 0.0 (without the
# placing, located 0.80 and 0.50). Since templates keep Whisper's encoder rows ("Whisper's encoder as
# evidence"), measured 2026-12-02: 1 example clean and 3 examples clean as before; 3 examples at 10 dB 0.65 /
# 0.65 / 0.60 / 0.0; 1 example at 10 dB 0.55 / 0.55 / 0.50 / 0.0. Each floor is one query (0.05) under its
# measurement. With the fifth layer's rows and the synthesized examples' ("The encoder's fifth layer, and the
# synthesized examples' rows"), measured 2026-12-02: clean as before (1 example 0.95 / 0.95 / 0.95 / 0.0, 3
# examples 1.00 / 1.00 / 1.00 / 0.1); 3 examples at 10 dB 0.60 / 0.60 / 0.55 / 0.0 (one query fewer, at its
# floor); 1 example at 10 dB 0.65 / 0.65 / 0.60 / 0.0 (floor raised).
FUSED_FLOORS = {
    (1, None): (0.90, 0.90, 0.90, 0.1),
    (3, None): (0.95, 0.95, 0.95, 0.2),
    (3, 10.0): (0.60, 0.60, 0.55, 0.1),
    (1, 10.0): (0.60, 0.60, 0.55, 0.1),
}


@pytest.mark.parametrize(("examples", "snr_db"), list(FUSED_FLOORS))
def test_the_services_fused_matcher_on_held_out_speakers(examples: int, snr_db: float | None) -> None:
    from harmonic import Match
    from harmonic_service.logic.patterns import margin

    pattern_set = _fused_registry(examples)

    def search(y: np.ndarray) -> list[Match]:
        found = pattern_set.match(y, SR)  # what the service returns, in its order
        assert len({m["name"] for m in found}) == len(found)  # one match per name
        ranked = [Match(m["name"], margin(m) + 0.5, m["start_s"], m["end_s"]) for m in found]
        assert ranked == sorted(ranked, key=lambda match: match.score, reverse=True)  # best margin first
        return ranked

    measured = _measure(search, 0.5, snr_db)
    top1, hit, located, fa = FUSED_FLOORS[(examples, snr_db)]
    assert measured["top1"] >= top1, measured
    assert measured["hit"] >= hit, measured
    assert measured["located"] >= located, measured
    assert measured["fa"] <= fa, measured


# (SNR) -> the same, for a keyword registered by its spelling alone as the service matches it (PatternSet:
# PocketSphinx's detection, raised by the examples synthesized from the spelling; bench/eval_keywords.py's
# "service-spelling" without the chain). Measured 2026-12-01: clean 0.55 / 0.55 / 0.50 / 0.0, at 10 dB 0.35 /
# 0.35 / 0.20 / 0.1 (PocketSphinx alone, SPELLING_FLOORS' measurements: 0.50 / 0.50 / 0.50 / 0.0 and 0.45 /
# 0.40 / 0.25 / 0.2); with the calibrated evidence and the placing, clean 0.55 / 0.55 / 0.55 / 0.0, at 10 dB
# 0.40 / 0.40 / 0.40 / 0.1 (without the placing, located 0.50 and 0.20).
SPELLED_FLOORS = {
    None: (0.50, 0.50, 0.50, 0.1),
    10.0: (0.35, 0.35, 0.35, 0.2),
}


@pytest.mark.parametrize("snr_db", list(SPELLED_FLOORS))
def test_a_keyword_by_spelling_as_the_service_matches_it(snr_db: float | None) -> None:
    from harmonic import Match
    from harmonic_service.logic.patterns import Pattern, PatternSet, build_keyword, margin

    spelled = {word: build_keyword(word, None)[0] for word in _examples(1)}
    assert all(len(phonetic.Keyword.from_bytes(a).synthesized) == 8 for a in spelled.values())
    pattern_set = PatternSet.from_patterns([Pattern(f"{w}/k", w, "keyword", a) for w, a in spelled.items()])

    def search(y: np.ndarray) -> list[Match]:
        return [Match(m["name"], margin(m) + 0.5, m["start_s"], m["end_s"]) for m in pattern_set.match(y, SR)]

    measured = _measure(search, 0.5, snr_db)
    top1, hit, located, fa = SPELLED_FLOORS[snr_db]
    assert measured["top1"] >= top1, measured
    assert measured["hit"] >= hit, measured
    assert measured["located"] >= located, measured
    assert measured["fa"] <= fa, measured


# The speech embeddings alone (bench/eval_keywords.py's "embedding" method): every keyword ranked by its best
# example's score, returned from the fused neutral point (logic.patterns.EMBEDDING_NEUTRAL); top-1 / hit /
# false accepts (no location: a window is 0.775 s). Measured 2026-12-01: 1 example 0.50 / 0.45 / 0.0, 3
# examples 0.80 / 0.70 / 0.2; scored by plain cosine (background weight 0), 3 examples reach top-1 0.65.
EMBEDDING_FLOORS = {
    1: (0.45, 0.40, 0.1),
    3: (0.75, 0.65, 0.3),
}


@pytest.mark.parametrize("examples", list(EMBEDDING_FLOORS))
def test_the_speech_embeddings_alone_on_held_out_speakers(examples: int) -> None:
    from harmonic import Match, speech_embedding
    from harmonic.templates import example_embedding
    from harmonic_service.logic.patterns import EMBEDDING_NEUTRAL

    registry = {word: [example_embedding(y, SR) for y in ys] for word, ys in _examples(examples).items()}

    def search(y: np.ndarray) -> list[Match]:
        query = speech_embedding.embed(y, SR)
        scored = [
            Match(word, float(speech_embedding.best_scores(query, embeddings).max()), 0.0, 0.0)
            for word, embeddings in registry.items()
        ]
        return sorted(scored, key=lambda match: match.score, reverse=True)

    measured = _measure(search, EMBEDDING_NEUTRAL, None)
    top1, hit, fa = EMBEDDING_FLOORS[examples]
    assert measured["top1"] >= top1, measured
    assert measured["hit"] >= hit, measured
    assert measured["fa"] <= fa, measured


# The service's chain before the match stage: the denoise stage (DeepFilterNet3, stages/denoise.py) on a clip
# whose SNR estimate is under 30 dB, then normalize, then the fused matcher as above (three examples plus the
# spelling; bench/eval_keywords.py's "service" method; scores lowered by ENHANCED_MARGIN, as the match stage
# does), at 10 dB white noise. Measured 2026-12-01: 0.60 / 0.60 / 0.55 / 0.0, against 0.45 / 0.45 / 0.40 /
# 0.0 for the fused matcher on the noisy clip itself (FUSED_FLOORS), so the floors (one query lower) fail if
# the chain loses the enhancer. Under babble the gain is as large but
# depends on the bed far more than 20 queries can average out (bench/eval_keywords.py measures it).
SERVICE_FLOORS = (0.55, 0.55, 0.50, 0.1)


def test_the_services_chain_before_the_fused_matcher() -> None:
    import harmonic
    from harmonic import Match
    from harmonic_service.logic.options import Options
    from harmonic_service.logic.patterns import margin
    from harmonic_service.stages.denoise import denoise
    from harmonic_service.stages.normalize import normalize

    pattern_set = _fused_registry(3)
    options = Options()

    def search(y: np.ndarray) -> list[Match]:
        audio = np.asarray(y, dtype=np.float32)
        assert harmonic.estimate_snr_db(audio, SR) < options.clean_snr_db  # so the stage runs
        denoised = denoise(audio, SR)
        assert denoised.summary["method"] == "deepfilternet3"
        audio = normalize(denoised.audio, SR, options.target_lufs, options.peak_dbfs).audio
        found = pattern_set.match(audio, SR, enhanced=True)  # as the match stage after DeepFilterNet3
        return [Match(m["name"], margin(m) + 0.5, m["start_s"], m["end_s"]) for m in found]

    measured = _measure(search, 0.5, 10.0)
    top1, hit, located, fa = SERVICE_FLOORS
    assert measured["top1"] >= top1, measured
    assert measured["hit"] >= hit, measured
    assert measured["located"] >= located, measured
    assert measured["fa"] <= fa, measured
