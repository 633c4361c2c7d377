"""Patterns as the service uses them: building a registered artifact, and matching a clip against a set.

Pure (no AWS): the registry (dal/registry.py) stores what `build_artifact` / `build_keyword` return, and
the match stage calls `PatternSet.match`. Three kinds:

- ``template``: a keyword example matched by mel cepstra and DTW (harmonic.templates; no model, fast,
  speaker-dependent);
- ``keyword``: a keyword searched by its pronunciations with PocketSphinx's acoustic model
  (harmonic.phonetic): from its spelling (cmudict), from an example decoded into phones, or both;
- ``fingerprint``: a recording found by landmark hashes (harmonic.fingerprint).

Templates and keywords that share a name are one keyword: a clip's match for it is the best of them (by the
margin over each kind's threshold), that margin moved by the speech embeddings its examples keep
(harmonic.speech_embedding: templates, and keywords registered from an example) and by Whisper's encoder rows
its examples keep (harmonic.whisper_encoder), reported once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import harmonic
from harmonic import FingerprintIndex, Template, WavLimits
from harmonic.phonetic import Keyword
from harmonic_service.tenancy import ANONYMOUS, Viewer

KINDS = ("template", "fingerprint", "keyword")
SAMPLE_RATE = 16_000
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class Pattern:
    """A registered pattern with its serialized artifact (a Template, a Fingerprint or a Keyword)."""

    pattern_id: str
    name: str
    kind: str  # one of KINDS
    data: bytes
    owner: str = ANONYMOUS  # who registered it (tenancy.py)


def build_artifact(kind: str, wav: bytes, limits: WavLimits | None = None) -> tuple[bytes, float]:
    """The serialized template or fingerprint of a WAV clip, and the seconds of audio it covers.

    Raises InvalidAudio for unusable audio and ValueError for an unknown kind.
    """
    if kind not in ("template", "fingerprint"):
        raise ValueError(f"kind must be template or fingerprint (keyword: build_keyword); got {kind!r}")
    clip = harmonic.decode_audio(wav, limits)
    samples = harmonic.resample(clip.samples, clip.sample_rate, SAMPLE_RATE)
    if kind == "template":
        from harmonic.phonetic import check_speech

        check_speech(samples, SAMPLE_RATE)
        template = harmonic.make_template(samples, SAMPLE_RATE)
        return template.to_bytes(), template.duration_s
    fingerprint = harmonic.fingerprint(samples, SAMPLE_RATE)
    if fingerprint.hashes.size == 0:
        raise harmonic.InvalidAudio("the recording has no spectral peaks to fingerprint (silence?)")
    return fingerprint.to_bytes(), clip.duration_s


def build_keyword(
    text: str | None, wav: bytes | None, limits: WavLimits | None = None
) -> tuple[bytes, float]:
    """The serialized Keyword of a spelling, an example, or both, and the seconds of audio of the example (0
    without one).

    The spelling is pronounced by cmudict (phonetic.UnknownWords naming a word it lacks); the example is
    checked for speech and decoded into phones by PocketSphinx's phone loop (InvalidAudio when it holds no
    speech), and its speech embeddings are kept (joined to the keyword's margin as a template's are). Both
    together search the keyword by every pronunciation. The spelling is also spoken by synthetic voices
    (harmonic.synthesis), whose speech embeddings are kept as further examples (none where eSpeak NG is not
    installed). ValueError when neither is given.
    """
    from harmonic import phonetic
    from harmonic.templates import example_embedding, example_whisper_rows

    if not text and wav is None:
        raise ValueError("a keyword needs its text, an example, or both")
    pronunciations: list[str] = []
    synthesized: tuple[np.ndarray, ...] = ()
    synthesized_whisper: tuple[np.ndarray, ...] = ()
    level = None
    if text:
        pronunciations.append(phonetic.pronounce_text(text))
        synthesized, synthesized_whisper, level = _synthesized_examples(phonetic.keyword_words(text))
    duration_s = 0.0
    embedding = whisper = None
    if wav is not None:
        clip = harmonic.decode_audio(wav, limits)
        samples = harmonic.resample(clip.samples, clip.sample_rate, SAMPLE_RATE)
        phonetic.check_speech(samples, SAMPLE_RATE)
        phones = phonetic.phones_of_example(samples, SAMPLE_RATE)
        if len(phones.split()) > phonetic.MAX_PHONES:
            raise harmonic.InvalidAudio(
                f"the example is {len(phones.split())} phones long; a keyword example is a word or a short "
                f"phrase of at most {phonetic.MAX_PHONES} phones"
            )
        pronunciations.append(phones)
        duration_s = clip.duration_s
        embedding = example_embedding(samples, SAMPLE_RATE)
        whisper = example_whisper_rows(samples, SAMPLE_RATE)
        if whisper is not None and whisper.shape[0] > phonetic.MAX_WHISPER_ROWS:
            whisper = None  # over 20 s of speech in a word's example: kept without the rows, never unreadable
    keyword = Keyword(
        text.strip() if text else None,
        tuple(dict.fromkeys(pronunciations)),
        embedding,
        synthesized,
        level,
        whisper,
        synthesized_whisper,
    )
    return keyword.to_bytes(), duration_s


def _synthesized_examples(
    words: list[str],
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], float | None]:
    """The speech embeddings and Whisper encoder rows of ``words`` spoken by harmonic.synthesis.VOICES
    (harmonic.synthesis.spoken_examples), and where the embeddings stand on background speech
    (harmonic.synthesis.background_level: what their evidence is measured from). None of them where the
    eSpeak NG library is not installed (it rides in the speech layer with PocketSphinx, so a deployment that
    can register keywords has it) or a child process failed: the keyword is registered
    without them, as an older one, which the pattern cache notes and a rebuild completes, rather than not at
    all."""
    from harmonic import synthesis

    try:
        examples, rows = synthesis.spoken_examples(" ".join(words))
    except RuntimeError:  # SynthesisUnavailable is one
        return (), (), None
    try:
        return examples, rows, synthesis.background_level(examples, words)
    except ValueError:  # no examples, or a keyword every background sentence says: the fixed neutral point
        return examples, rows, None


#: Where a fingerprint's score stands at its significance threshold (harmonic.fingerprint: s / (s + 4)).
FINGERPRINT_THRESHOLD = 0.5

#: How a keyword's speech-embedding evidence (harmonic.speech_embedding: its examples' best score ``e``
#: against the clip, 0..1) joins its best detection's margin: ``margin + EMBEDDING_WEIGHT · (e −
#: EMBEDDING_NEUTRAL)``. Chosen on the tuned split of ``make eval`` (bench/eval_keywords.py) alone: of the
#: weights 0.5–3, 2 returned the most keywords clean, under music and under white noise together; the neutral
#: point then puts 5 % of that split's sentences without a keyword over the threshold (0.8125 with plain
#: cosine scores; 0.476 since they are normalized against average speech, speech_embedding.BACKGROUND_WEIGHT).
#: docs/matching.md, "Speech embeddings".
EMBEDDING_WEIGHT = 2.0
EMBEDDING_NEUTRAL = 0.476

#: How the examples synthesized from a keyword's spelling (harmonic.synthesis: their best score ``s`` against
#: the clip) join the margin: ``+ SYNTHESIZED_WEIGHT · max(0, s − n)``, evidence for the keyword only, where
#: the neutral point ``n`` is the keyword's own: its examples' level on background speech (``Keyword.
#: synthesized_level``, harmonic.synthesis.background_level) plus SYNTHESIZED_OFFSET, or SYNTHESIZED_NEUTRAL
#: for a keyword registered before that level was measured. One-sided because eight synthetic voices that do
#: not sound like the speaker say little against the keyword (a recorded example's evidence, above, is
#: two-sided); two-sided, they lowered every keyword said by a voice unlike eSpeak NG's (held out, flite and
#: festival hits fell, e.g. 0.90 -> 0.60 at 20 dB). Chosen on the tuned split alone (docs/matching.md,
#: "Synthesized examples", "Calibrated synthesized evidence"): 10 returned the most keywords averaged over
#: the five conditions with one and with three examples, of the weights 4, 6, 8, 10, 12 and 16 with the fixed
#: point and of 6, 10 and 16 with the keyword's own (its level: the mean plus one standard deviation of its
#: background scores beat their median, 90th percentile, maximum and mean plus two); each point then puts 5 %
#: of that split's sentences without a keyword over the threshold (pooled over the conditions and both
#: example counts; the offset rounded up to 0.001).
SYNTHESIZED_WEIGHT = 10.0
SYNTHESIZED_OFFSET = 0.034
SYNTHESIZED_NEUTRAL = 0.515

#: How the evidence of Whisper's encoder (harmonic.whisper_encoder: the best score ``w`` against the clip's
#: rows of a name's recorded examples' encoder rows and, with them, of its keywords' synthesized examples',
#: 0..1) joins its margin: ``+ WHISPER_WEIGHT · (w − WHISPER_NEUTRAL)``, two-sided like a recorded example's
#: speech embeddings. Chosen on the tuned split of ``make eval`` alone: of the weights 1–3 (each with the
#: neutral point that keeps 5 % of that split's sentences without a keyword over the threshold, pooled over
#: the five conditions and both example counts), with the fifth layer's rows and the synthesized examples'
#: among them, 2 ranked the right keyword first most often (0.970 of the queries, averaged over the ten
#: cells, against 0.952 with the sixth layer's rows of the recorded examples alone, at 1.5 and 0.34).
#: docs/matching.md, "The encoder's fifth layer, and the synthesized examples' rows".
WHISPER_WEIGHT = 2.0
WHISPER_NEUTRAL = 0.38


def synthesized_neutral(keyword: Keyword) -> float:
    """The score above which a keyword's synthesized examples raise its margin (SYNTHESIZED_WEIGHT)."""
    if keyword.synthesized_level is None:
        return SYNTHESIZED_NEUTRAL
    return keyword.synthesized_level + SYNTHESIZED_OFFSET


#: How much further above its kind's threshold a template or keyword must score in a clip whose noise the
#: denoise stage removed with DeepFilterNet3 (``PatternSet.match(enhanced=True)``): its scores are reported
#: this much lower, so "returned" still means "score >= threshold" and a score means the same with and
#: without the enhancer. Enhanced noisy clips score higher on sentences without a keyword as well (false
#: accepts on the tuned split of ``make eval`` 0.03-0.17 at no offset). Chosen on that split alone, as the
#: smallest step of 0.01 at which its false accepts under the four noises averaged no more than those of
#: the matcher on the noisy clips themselves (0.04 against 0.0425). docs/matching.md, "A neural enhancer".
ENHANCED_MARGIN = 0.05


def _placed_by_synthesized(
    match: harmonic.Match, query: np.ndarray, keyword: Keyword, duration_s: float
) -> harmonic.Match:
    """The match with its span taken from where the keyword's best synthesized example lies in the clip
    (harmonic.speech_embedding.best_span), for a name its synthesized evidence raised: the detection that
    spoke for the name may lie elsewhere (PocketSphinx's, on a voice it hears poorly). Chosen on the tuned
    split of ``make eval`` (docs/matching.md, "Calibrated synthesized evidence": returned hits located within
    ±0.25 s, one example, 238 -> 245 of 245; taking it whenever the raise is positive tied with taking it
    only when the name would not be returned without it, and is the simpler rule). The match as it is when
    no span can be had."""
    from harmonic.speech_embedding import best_span

    try:
        _, start_s, end_s = best_span(query, list(keyword.synthesized))
    except ValueError:
        return match
    start_s = min(max(0.0, start_s), duration_s)
    return dataclasses.replace(
        match, start_s=round(start_s, 3), end_s=round(min(max(start_s, end_s), duration_s), 3)
    )


def threshold_of(kind: str) -> float:
    """The least score at which the service returns a match of ``kind``: each kind's score has its own
    scale (docs/design.md, "Pattern registry"), so matches of different kinds compare by their margin over
    it (:func:`margin`)."""
    if kind == "template":
        from harmonic.templates import DEFAULT_THRESHOLD

        return DEFAULT_THRESHOLD
    if kind == "keyword":
        from harmonic.phonetic import DEFAULT_MIN_SCORE

        return DEFAULT_MIN_SCORE
    if kind == "fingerprint":
        return FINGERPRINT_THRESHOLD
    raise ValueError(f"unknown pattern kind {kind!r}")


def margin(match: dict[str, Any]) -> float:
    """How far a match entry (``PatternSet.match``) scores above its kind's threshold: what orders them."""
    return float(match["score"]) - threshold_of(match["kind"])


def rebuild_artifact(
    kind: str, text: str | None, example: bytes | None, limits: WavLimits | None = None
) -> bytes:
    """A registered pattern's artifact computed again from what was registered (its stored example, and a
    keyword's text): what an artifact of an older format, or one this code cannot read, is replaced by.

    Raises ValueError when nothing to rebuild from was kept (a template or fingerprint without its
    example, from before examples were kept), and whatever registering it would raise now (InvalidAudio,
    phonetic.UnknownWords).
    """
    if kind == "keyword":
        return build_keyword(text, example, limits)[0]
    if example is None:
        raise ValueError(f"no example of this {kind} was kept to compute it again from")
    return build_artifact(kind, example, limits)[0]


@dataclass
class PatternSet:
    """Parsed patterns ready to match: templates and keywords by id, and one fingerprint index.

    The keywords' PocketSphinx search (phonetic.KeywordSpotter, ~0.2 s to build) is built on the first
    match that needs it and kept until a keyword is added or removed.
    """

    names: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    keywords: dict[str, Keyword] = field(default_factory=dict)
    index: FingerprintIndex = field(default_factory=FingerprintIndex)
    _spotter: Any = field(default=None, repr=False)

    @classmethod
    def from_patterns(cls, patterns: Sequence[Pattern]) -> PatternSet:
        result = cls()
        for pattern in patterns:
            result.add(pattern)
        return result

    def add(self, pattern: Pattern) -> None:
        """Parse and add one pattern; ValueError (and the set unchanged) when its artifact is unreadable."""
        if pattern.kind == "template":
            self.templates[pattern.pattern_id] = Template.from_bytes(pattern.data)
        elif pattern.kind == "keyword":
            from harmonic.phonetic import available

            if not available():
                raise ValueError("keyword patterns need PocketSphinx, which this runtime lacks (python 3.13)")
            self.keywords[pattern.pattern_id] = Keyword.from_bytes(pattern.data)
            self._spotter = None
        elif pattern.kind == "fingerprint":
            self.index.add(pattern.pattern_id, harmonic.Fingerprint.from_bytes(pattern.data))
        else:
            raise ValueError(f"unknown pattern kind {pattern.kind!r}")
        self.names[pattern.pattern_id] = pattern.name
        self.kinds[pattern.pattern_id] = pattern.kind
        self.owners[pattern.pattern_id] = pattern.owner

    def remove(self, pattern_id: str) -> None:
        self.names.pop(pattern_id, None)
        self.kinds.pop(pattern_id, None)
        self.owners.pop(pattern_id, None)
        self.templates.pop(pattern_id, None)
        if self.keywords.pop(pattern_id, None) is not None:
            self._spotter = None
        self.index.remove(pattern_id)

    def __len__(self) -> int:
        return len(self.names)

    def selected(self, selectors: Iterable[str] | None, viewer: Viewer | None = None) -> set[str]:
        """The ids of the patterns named by `selectors` (pattern ids or names; every one for None) among
        those `viewer` sees (its own and the publishers'; None: all)."""
        visible = {
            pattern_id: name
            for pattern_id, name in self.names.items()
            if viewer is None or viewer.sees(self.owners.get(pattern_id))
        }
        if selectors is None:
            return set(visible)
        wanted = set(selectors)
        return {pattern_id for pattern_id, name in visible.items() if pattern_id in wanted or name in wanted}

    def spotter(self) -> Any:
        """The PocketSphinx search over every keyword of the set (built once per set of keywords)."""
        if self._spotter is None:
            from harmonic.phonetic import KeywordSpotter

            self._spotter = KeywordSpotter(
                {pattern_id: keyword.pronunciations for pattern_id, keyword in self.keywords.items()}
            )
        return self._spotter

    def _by_name(
        self,
        candidates: Iterable[tuple[float, harmonic.Match]],
        audio: np.ndarray,
        sr: int,
        chosen: set[str],
        clip_before_enhancer: Callable[[], np.ndarray],
    ) -> list[tuple[float, harmonic.Match]]:
        """One (margin, match) per name: the detection furthest above its kind's threshold, its margin joined
        by the speech-embedding evidence of the name's examples (templates, keywords registered from one, and
        the examples synthesized from a keyword's spelling).

        Templates and keywords that share a name are one keyword heard two ways (by sound, by phones); their
        scores are on different scales, so the detection that clears its own threshold by the widest margin
        speaks for the name and says where it is (measured in docs/matching.md, "fused": it keeps the
        template matcher's strength on voices like the examples and PocketSphinx's on every other voice).
        When the name's examples carry speech embeddings, their best score ``e`` against the clip's moves
        that margin by ``EMBEDDING_WEIGHT · (e − EMBEDDING_NEUTRAL)`` (docs/matching.md, "Speech
        embeddings"), and the best score ``s`` of the examples synthesized from a keyword's spelling raises
        it by ``SYNTHESIZED_WEIGHT · max(0, s − n)``, ``n`` the keyword's :func:`synthesized_neutral` (with
        several keywords by spelling under the name, the largest raise; "Synthesized examples"). When its
        recorded examples keep Whisper's encoder rows, their best score ``w`` (theirs and its synthesized
        examples': :meth:`_whisper_evidence`) against the rows of the clip as it was
        before the enhancer (``clip_before_enhancer``; the encoder was trained on noisy speech, and the
        enhancer's artefacts are not what it learned) moves the margin by ``WHISPER_WEIGHT · (w −
        WHISPER_NEUTRAL)``; not for a clip over harmonic.whisper_encoder.MAX_SECONDS. The match's score is
        then its kind's threshold plus the joined margin (within 0..1), so that it is returned exactly when
        that margin is at least 0.
        """
        best: dict[str, tuple[float, harmonic.Match]] = {}
        for margin, match in candidates:
            name = self.names[match.pattern_id]
            if name not in best or margin > best[name][0]:
                best[name] = (margin, match)
        # (name, None) -> the recorded examples' embeddings; (name, keyword id) -> that keyword's synthesized
        # examples, whose neutral point is the keyword's own
        examples: dict[tuple[str, str | None], list[np.ndarray]] = {}
        for pattern_id, artifact in (*self.templates.items(), *self.keywords.items()):
            name = self.names[pattern_id]
            if pattern_id in chosen and name in best:
                if artifact.embedding is not None:
                    examples.setdefault((name, None), []).append(artifact.embedding)
                if isinstance(artifact, Keyword) and artifact.synthesized:
                    examples.setdefault((name, pattern_id), []).extend(artifact.synthesized)
        whisper_of = self._whisper_evidence(best, chosen, clip_before_enhancer, sr)
        if not examples and not whisper_of:
            return list(best.values())
        from harmonic.speech_embedding import best_scores, embed

        evidence: dict[tuple[str, str | None], float] = {}
        query = None  # the clip's speech embeddings, when some example has embeddings
        if examples:
            owners = [owner for owner, embeddings in examples.items() for _ in embeddings]
            query = embed(audio, sr)
            scores = best_scores(query, [e for embeddings in examples.values() for e in embeddings])
            for owner, score in zip(owners, scores, strict=True):
                evidence[owner] = max(evidence.get(owner, 0.0), float(score))
        recorded_of: dict[str, float] = {}
        lift_of: dict[str, tuple[float, str]] = {}  # the synthesized evidence's raise (the name's largest)
        for (name, keyword_id), score in evidence.items():
            if keyword_id is None:
                recorded_of[name] = score
            else:
                lift = SYNTHESIZED_WEIGHT * max(0.0, score - synthesized_neutral(self.keywords[keyword_id]))
                if name not in lift_of or lift > lift_of[name][0]:
                    lift_of[name] = (lift, keyword_id)
        joined = []
        for name, (margin, match) in best.items():
            recorded = recorded_of.get(name)
            whisper = whisper_of.get(name)
            lift, lifted_by = lift_of.get(name, (None, None))
            if lift is not None and lift > 0:  # a lift comes from examples, so the clip was embedded
                match = _placed_by_synthesized(match, query, self.keywords[lifted_by], audio.size / sr)
            if recorded is not None or lift is not None or whisper is not None:
                threshold = threshold_of(self.kinds[match.pattern_id])
                joined_margin = margin
                if recorded is not None:
                    joined_margin += EMBEDDING_WEIGHT * (recorded - EMBEDDING_NEUTRAL)
                if whisper is not None:
                    joined_margin += WHISPER_WEIGHT * (whisper - WHISPER_NEUTRAL)
                if lift is not None:
                    joined_margin += lift
                match = dataclasses.replace(
                    match, score=round(min(1.0, max(0.0, threshold + joined_margin)), 4)
                )
                margin = match.score - threshold  # what margin() reads back from the entry
            joined.append((margin, match))
        return joined

    def _whisper_evidence(
        self,
        best: dict[str, tuple[float, harmonic.Match]],
        chosen: set[str],
        clip_before_enhancer: Callable[[], np.ndarray],
        sr: int,
    ) -> dict[str, float]:
        """Per name among ``best`` with a recorded example that keeps Whisper's encoder rows (a template's, or
        a keyword's registered from an example): the best score against the clip's rows
        (harmonic.whisper_encoder.best_scores) of those rows and of the rows its chosen keywords'
        synthesized examples keep. Empty when no name has such an example or the clip is too long.

        A keyword by spelling alone gets none: the encoder (~150 ms for a 5 s clip) would run for every
        registry of keywords by spelling, whose match stage is held to p95 ≤ 300 ms (docs/matching.md)."""
        rows: dict[str, list[np.ndarray]] = {}
        for pattern_id, artifact in (*self.templates.items(), *self.keywords.items()):
            name = self.names[pattern_id]
            if pattern_id in chosen and name in best and artifact.whisper is not None:
                rows.setdefault(name, []).append(artifact.whisper)
        if not rows:
            return {}
        for pattern_id, keyword in self.keywords.items():
            name = self.names[pattern_id]
            if pattern_id in chosen and name in rows:
                rows[name].extend(keyword.synthesized_whisper)
        from harmonic import whisper_encoder

        clip = clip_before_enhancer()
        if not whisper_encoder.reads(clip.size, sr):
            return {}
        query = whisper_encoder.encode(clip, sr)
        every_row = [name_row for name_rows in rows.values() for name_row in name_rows]
        scores = iter(whisper_encoder.best_scores(query, every_row))
        return {name: max(float(next(scores)) for _ in name_rows) for name, name_rows in rows.items()}

    def match(
        self,
        audio: np.ndarray,
        sr: int,
        selectors: Iterable[str] | None = None,
        viewer: Viewer | None = None,
        min_margin: float = 0.0,
        enhanced: bool = False,
        near_duplicates: bool = False,
        audio_before_enhancer: Callable[[], np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """Matches best first (by :func:`margin`: the score's margin over its kind's threshold, since each
        kind's score has its own scale): `{"pattern_id", "name", "kind", "score", "start_s", "end_s"}`.

        `selectors` (pattern ids or names) restricts the patterns considered; None considers all that
        `viewer` sees (None: every one). `min_margin`: how far above its kind's threshold a template or
        keyword match must score, its speech-embedding evidence joined (0, the service's; a negative margin
        admits weaker evidence, which the eval uses to rank every keyword). `enhanced`: the clip is the
        denoise stage's DeepFilterNet3 output; template and keyword scores are lowered by ENHANCED_MARGIN.
        `near_duplicates`: a fingerprint also matches another rendition of its recording's notes (a
        re-orchestration), which the index otherwise leaves out (harmonic.fingerprint.is_other_rendition).
        `audio_before_enhancer`: when `enhanced`, fetches the clip as it was before DeepFilterNet3 (at `sr`),
        which fingerprints are matched on (a speech enhancer keeps the speech over a recording and takes the
        music out: docs/design.md, "Matching accuracy") and Whisper's encoder reads (:meth:`_by_name`). Called
        at most once, only when a fingerprint or an example with encoder rows (a template, a keyword
        registered from one) is selected.
        """
        chosen = self.selected(selectors, viewer)
        templates = {pattern_id: t for pattern_id, t in self.templates.items() if pattern_id in chosen}
        fingerprints_chosen = any(self.kinds[pattern_id] == "fingerprint" for pattern_id in chosen)
        # every detection however weak (its margin may be negative): the embedding evidence can lift it
        spoken: list[tuple[float, harmonic.Match]] = []  # (margin over its kind's threshold, match)
        if templates:
            threshold = threshold_of("template")
            spoken += [
                (m.score - threshold, m)
                for m in harmonic.match_templates(audio, sr, templates, threshold=0.0)
            ]
        if any(pattern_id in self.keywords for pattern_id in chosen):
            threshold = threshold_of("keyword")
            spoken += [
                (m.score - threshold, m)
                for m in self.spotter().match(audio, sr, min_score=0.0)
                if m.pattern_id in chosen
            ]
        fetched: list[np.ndarray] = []

        def clip_before_enhancer() -> np.ndarray:
            if not (enhanced and audio_before_enhancer is not None):
                return audio
            if not fetched:
                fetched.append(audio_before_enhancer())
            return fetched[0]

        joined = self._by_name(spoken, audio, sr, chosen, clip_before_enhancer)
        if enhanced:
            joined = [
                (
                    m - ENHANCED_MARGIN,
                    dataclasses.replace(match, score=round(match.score - ENHANCED_MARGIN, 4)),
                )
                for m, match in joined
            ]
        found = [(m, match) for m, match in joined if m >= min_margin]
        # a clip shorter than one fingerprint frame cannot hold a registered recording: no query
        if fingerprints_chosen and harmonic.can_fingerprint(audio.size, sr):
            # one query of the whole index, so that its significance test counts every registered recording
            clip, denoised = audio, enhanced
            if enhanced and audio_before_enhancer is not None:
                clip, denoised = clip_before_enhancer(), False
            hits = self.index.query(
                harmonic.fingerprint(clip, sr),
                max_results=len(self.index),
                near_duplicates=near_duplicates,
                denoised=denoised,  # DeepFilterNet3 takes a recording's partials out: they are not missing
            )
            found.extend((m.score - FINGERPRINT_THRESHOLD, m) for m in hits if m.pattern_id in chosen)
        found.sort(key=lambda entry: entry[0], reverse=True)
        return [
            {
                "pattern_id": match.pattern_id,
                "name": self.names[match.pattern_id],
                "kind": self.kinds[match.pattern_id],
                "score": float(match.score),
                "start_s": float(match.start_s),
                "end_s": float(match.end_s),
            }
            for _, match in found
        ]
