"""Patterns as the service uses them: building a registered artifact, and matching a clip against a set.

Pure (no AWS): the registry (dal/registry.py) stores what `build_artifact` returns, and the match
stage calls `PatternSet.match`. Templates that share a name are examples of one keyword: a clip's match
for that keyword is the best of them, reported once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import harmonic
from harmonic import FingerprintIndex, Template, WavLimits
from harmonic_service.tenancy import ANONYMOUS, Viewer

KINDS = ("template", "fingerprint")
SAMPLE_RATE = 16_000
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class Pattern:
    """A registered pattern with its serialized artifact (a Template or a Fingerprint)."""

    pattern_id: str
    name: str
    kind: str  # "template" or "fingerprint"
    data: bytes
    owner: str = ANONYMOUS  # who registered it (tenancy.py)


def build_artifact(kind: str, wav: bytes, limits: WavLimits | None = None) -> tuple[bytes, float]:
    """The serialized template or fingerprint of a WAV clip, and the seconds of audio it covers.

    Raises InvalidAudio for unusable audio and ValueError for an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    clip = harmonic.decode_audio(wav, limits)
    samples = harmonic.resample(clip.samples, clip.sample_rate, SAMPLE_RATE)
    if kind == "template":
        template = harmonic.make_template(samples, SAMPLE_RATE)
        return template.to_bytes(), template.duration_s
    fingerprint = harmonic.fingerprint(samples, SAMPLE_RATE)
    if fingerprint.hashes.size == 0:
        raise harmonic.InvalidAudio("the recording has no spectral peaks to fingerprint (silence?)")
    return fingerprint.to_bytes(), clip.duration_s


@dataclass
class PatternSet:
    """Parsed patterns ready to match: templates by id and one fingerprint index."""

    names: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    index: FingerprintIndex = field(default_factory=FingerprintIndex)

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
        else:
            self.index.add(pattern.pattern_id, harmonic.Fingerprint.from_bytes(pattern.data))
        self.names[pattern.pattern_id] = pattern.name
        self.kinds[pattern.pattern_id] = pattern.kind
        self.owners[pattern.pattern_id] = pattern.owner

    def remove(self, pattern_id: str) -> None:
        self.names.pop(pattern_id, None)
        self.kinds.pop(pattern_id, None)
        self.owners.pop(pattern_id, None)
        self.templates.pop(pattern_id, None)
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

    def match(
        self,
        audio: np.ndarray,
        sr: int,
        selectors: Iterable[str] | None = None,
        viewer: Viewer | None = None,
    ) -> list[dict[str, Any]]:
        """Matches best first: `{"pattern_id", "name", "kind", "score", "start_s", "end_s"}`.

        `selectors` (pattern ids or names) restricts the patterns considered; None considers all that
        `viewer` sees (None: every one).
        """
        chosen = self.selected(selectors, viewer)
        found: list[harmonic.Match] = []
        templates = {pattern_id: t for pattern_id, t in self.templates.items() if pattern_id in chosen}
        fingerprints_chosen = any(self.kinds[pattern_id] == "fingerprint" for pattern_id in chosen)
        if templates:
            best_by_name: dict[str, harmonic.Match] = {}
            for match in harmonic.match_templates(audio, sr, templates):
                name = self.names[match.pattern_id]
                if name not in best_by_name or match.score > best_by_name[name].score:
                    best_by_name[name] = match
            found.extend(best_by_name.values())
        # a clip shorter than one fingerprint frame cannot hold a registered recording: no query
        if fingerprints_chosen and harmonic.can_fingerprint(audio.size, sr):
            # one query of the whole index, so that its significance test counts every registered recording
            hits = self.index.query(harmonic.fingerprint(audio, sr), max_results=len(self.index))
            found.extend(match for match in hits if match.pattern_id in chosen)
        found.sort(key=lambda match: match.score, reverse=True)
        return [
            {
                "pattern_id": match.pattern_id,
                "name": self.names[match.pattern_id],
                "kind": self.kinds[match.pattern_id],
                "score": float(match.score),
                "start_s": float(match.start_s),
                "end_s": float(match.end_s),
            }
            for match in found
        ]
