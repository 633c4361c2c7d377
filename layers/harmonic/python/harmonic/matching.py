"""What the match stage returns, shared by keyword templates and audio fingerprints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Match:
    """A registered pattern found in the query.

    ``score`` is in 0..1 (higher is better). For a keyword template, ``start_s``/``end_s`` say where in the
    query the keyword is; for a fingerprint, where in the registered recording the query is.
    """

    pattern_id: str
    score: float
    start_s: float
    end_s: float

    def to_dict(self) -> dict[str, object]:
        return {
            "pattern_id": self.pattern_id,
            "score": self.score,
            "start_s": self.start_s,
            "end_s": self.end_s,
        }
