"""Request options and steps: validation (the skip rules are each optional stage's own)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harmonic_service.stages import STAGE_NAMES, STAGES

MAX_PATTERN_SELECTORS = 100
MAX_SELECTOR_LENGTH = 64


@dataclass(frozen=True)
class Options:
    """Per-request tuning of the chain.

    target_lufs: integrated loudness the normalize stage aims at (EBU R 128 broadcast: -23 LUFS).
    peak_dbfs: sample-peak ceiling after normalization.
    clean_snr_db: ingest calls a clip clean (and denoise is skipped) at or above this estimated SNR.
    denoiser: how the denoise stage removes noise: "deepfilternet3" (a network trained on real noisy speech;
        spectral gating where it cannot run) or "spectral_gating" (stationary noise only, ~50x less time).
    patterns: the registered patterns the match stage considers, by pattern id or name (None: all of them).
    near_duplicates: fingerprints also match other renditions of a recording's notes (a re-orchestration, a
        cover), which the match stage otherwise leaves out (harmonic.fingerprint.is_other_rendition).
    """

    target_lufs: float = -23.0
    peak_dbfs: float = -1.0
    clean_snr_db: float = 30.0
    denoiser: str = "deepfilternet3"
    patterns: tuple[str, ...] | None = None
    near_duplicates: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The options as stored with an invocation. `denoiser` and `near_duplicates` only when they are not
        the default, so that what a default request stores reads the same to stage functions deployed
        before the option."""
        values: dict[str, Any] = asdict(self)
        if self.denoiser == Options.denoiser:
            del values["denoiser"]
        if not self.near_duplicates:
            del values["near_duplicates"]
        if self.patterns is None:
            del values["patterns"]
        else:
            values["patterns"] = list(self.patterns)
        return values


_RANGES: dict[str, tuple[float, float]] = {
    "target_lufs": (-70.0, -5.0),
    "peak_dbfs": (-30.0, 0.0),
    "clean_snr_db": (0.0, 200.0),
}
DENOISERS = ("deepfilternet3", "spectral_gating")
KNOWN_OPTIONS = (*_RANGES, "denoiser", "patterns", "near_duplicates")


def _parse_selectors(value: Any) -> tuple[str, ...]:
    """options.patterns: a non-empty list of pattern ids or names, duplicates dropped, order kept."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError("option patterns must be a list of pattern ids or names")
    if not value:
        raise ValueError(
            "option patterns is empty: omit it to match every registered pattern, or leave match out of steps"
        )
    if len(value) > MAX_PATTERN_SELECTORS:
        raise ValueError(f"option patterns names {len(value)} patterns; at most {MAX_PATTERN_SELECTORS}")
    for selector in value:
        if not isinstance(selector, str) or not 0 < len(selector.strip()) <= MAX_SELECTOR_LENGTH:
            raise ValueError(
                f"option patterns: every entry must be a pattern id or name of 1 to {MAX_SELECTOR_LENGTH} "
                f"characters, got {selector!r}"
            )
    return tuple(dict.fromkeys(selector.strip() for selector in value))


def parse_options(raw: Mapping[str, Any] | Options | None) -> Options:
    """Validated Options from a request's `options` object; ValueError with a clear message otherwise."""
    if raw is None:
        return Options()
    if isinstance(raw, Options):
        return raw
    if not isinstance(raw, Mapping):
        raise ValueError("options must be an object")
    unknown = sorted(set(raw) - set(KNOWN_OPTIONS))
    if unknown:
        raise ValueError(f"unknown options {', '.join(unknown)}; known: {', '.join(KNOWN_OPTIONS)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "patterns":
            values[name] = _parse_selectors(value)
            continue
        if name == "near_duplicates":
            if not isinstance(value, bool):
                raise ValueError(f"option near_duplicates must be true or false, got {value!r}")
            values[name] = value
            continue
        if name == "denoiser":
            if value not in DENOISERS:
                raise ValueError(f"option denoiser must be one of {', '.join(DENOISERS)}, got {value!r}")
            values[name] = value
            continue
        low, high = _RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"option {name} must be a number")
        if not low <= value <= high:
            raise ValueError(f"option {name} must be between {low:g} and {high:g}, got {value:g}")
        values[name] = float(value)
    return Options(**values)


def resolve_steps(steps: Sequence[str] | None) -> list[str]:
    """The stages to run, in order: every required stage plus the optional ones named in `steps`.

    `steps=None` runs everything. Unknown names are a ValueError.
    """
    if steps is None:
        return list(STAGE_NAMES)
    if isinstance(steps, str) or not all(isinstance(s, str) for s in steps):
        raise ValueError("steps must be a list of stage names")
    unknown = [s for s in steps if s not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown steps {', '.join(unknown)}; stages are {', '.join(STAGE_NAMES)}")
    return [stage.name for stage in STAGES if not stage.optional or stage.name in steps]
