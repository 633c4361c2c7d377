"""The six stages as pure functions: arrays and dicts in, arrays and JSON-safe dicts out.

Each returns a StageOutput: the audio the next stage works on (None for stages that only describe it) and
the stage's summary, which becomes its part of the result. Summaries hold plain JSON types only: NaN and
infinities (silence has a loudness of -inf LUFS) become None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import harmonic
from harmonic import InvalidAudio, WavLimits
from harmonic_service.logic.patterns import Pattern, PatternSet

# Every stage after ingest works at 16 kHz: the band of speech, and what features and templates assume.
ANALYSIS_SAMPLE_RATE = 16_000
# Shorter clips have no 400 ms loudness block and too few frames for f0 statistics.
MIN_DURATION_S = 0.1
# A sample this close to full scale counts as clipped (int16 full scale is 32767/32768 = 0.99997).
CLIP_LEVEL = 0.999
# Above this fraction of clipped samples, the clip is rejected; above CLIP_WARNING it is flagged.
MAX_CLIPPED_FRACTION = 0.2
CLIP_WARNING = 0.001


@dataclass(frozen=True)
class StageOutput:
    """What a stage produced: audio for the next stage (or None) and its JSON-safe summary."""

    audio: np.ndarray | None
    summary: dict[str, Any]


def json_safe(value: Any) -> Any:
    """`value` with numpy scalars/arrays turned into Python types and NaN/±inf into None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return round(number, 4) if math.isfinite(number) else None
    return value


def _dbfs(amplitude: float) -> float | None:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else None


def ingest(wav: bytes, limits: WavLimits | None = None, clean_snr_db: float = 30.0) -> StageOutput:
    """Decode and validate a WAV clip and resample it to 16 kHz mono float32.

    Raises InvalidAudio (permanent) for anything that is not a usable clip: a malformed or unsupported
    WAV, limits exceeded, NaN/Inf samples, a clip shorter than MIN_DURATION_S, or one so clipped
    (> MAX_CLIPPED_FRACTION of samples at full scale) that its analysis would be meaningless.
    """
    clip = harmonic.decode_wav(wav, limits)
    samples = np.asarray(clip.samples, dtype=np.float32)
    if samples.ndim != 1:
        raise InvalidAudio(f"decoded audio has shape {samples.shape}; expected mono")
    if not np.isfinite(samples).all():
        raise InvalidAudio("the clip contains NaN or infinite samples")
    duration_s = samples.size / clip.sample_rate
    if duration_s < MIN_DURATION_S:
        raise InvalidAudio(f"the clip is {duration_s:.3f} s long; at least {MIN_DURATION_S} s is needed")
    magnitude = np.abs(samples)
    peak = float(magnitude.max())
    clipped_fraction = float(np.count_nonzero(magnitude >= CLIP_LEVEL)) / samples.size
    if clipped_fraction > MAX_CLIPPED_FRACTION:
        raise InvalidAudio(
            f"{clipped_fraction:.0%} of the samples are clipped at full scale; record at a lower level"
        )
    if clip.sample_rate != ANALYSIS_SAMPLE_RATE:
        audio = harmonic.resample(samples, clip.sample_rate, ANALYSIS_SAMPLE_RATE).astype(np.float32)
    else:
        audio = samples
    snr_db = json_safe(harmonic.estimate_snr_db(audio, ANALYSIS_SAMPLE_RATE)) if peak > 0 else None
    warnings = []
    if peak == 0:
        warnings.append("the clip is digital silence")
    if clipped_fraction > CLIP_WARNING:
        warnings.append(f"{clipped_fraction:.1%} of the samples are clipped")
    summary = {
        "duration_s": round(duration_s, 4),
        "sample_rate": int(clip.sample_rate),
        "channels": int(clip.channels),
        "analysis_sample_rate": ANALYSIS_SAMPLE_RATE,
        "peak_dbfs": json_safe(_dbfs(peak)),
        "clipped_fraction": round(clipped_fraction, 6),
        "snr_db": snr_db,
        "clean": snr_db is not None and snr_db >= clean_snr_db,
        "warnings": warnings,
    }
    return StageOutput(audio, summary)


def denoise(audio: np.ndarray, sr: int, snr_db_before: float | None = None) -> StageOutput:
    """Spectral gating (harmonic.denoise); the summary compares the estimated SNR before and after."""
    if snr_db_before is None:
        snr_db_before = json_safe(harmonic.estimate_snr_db(audio, sr))
    cleaned = np.asarray(harmonic.denoise(audio, sr), dtype=np.float32)
    snr_db_after = json_safe(harmonic.estimate_snr_db(cleaned, sr))
    summary = {"applied": True, "snr_db_before": json_safe(snr_db_before), "snr_db_after": snr_db_after}
    return StageOutput(cleaned, summary)


def normalize(audio: np.ndarray, sr: int, target_lufs: float = -23.0, peak_dbfs: float = -1.0) -> StageOutput:
    """BS.1770-4 loudness normalization to `target_lufs` with a `peak_dbfs` sample-peak ceiling.

    Summary: input_lufs, output_lufs, gain_db, peak_limited, target_lufs (None where undefined, e.g. the
    loudness of silence).
    """
    from harmonic import loudness

    normalized, info = loudness.loudness_normalization(
        audio, sr, target_lufs=target_lufs, peak_dbfs=peak_dbfs
    )
    return StageOutput(np.asarray(normalized, dtype=np.float32), json_safe(info))


def features(audio: np.ndarray, sr: int) -> StageOutput:
    """Clip-level features (harmonic.extract_features): f0, voicing, HNR, spectral shape, MFCC, chroma."""
    return StageOutput(None, json_safe(harmonic.extract_features(audio, sr)))


def match(
    audio: np.ndarray,
    sr: int,
    patterns: Sequence[Pattern] | PatternSet = (),
    selectors: Sequence[str] | None = None,
) -> StageOutput:
    """Matches of the registered patterns in the clip, best first: keyword templates (where in the clip)
    and fingerprints (where in the registered recording). `selectors` (ids or names) narrows the patterns."""
    pattern_set = patterns if isinstance(patterns, PatternSet) else PatternSet.from_patterns(patterns)
    return StageOutput(None, {"matches": pattern_set.match(audio, sr, selectors)})


def skipped_summary(stage: str, reason: str) -> dict[str, Any]:
    """The result section of an optional stage that did not run."""
    if stage == "denoise":
        return {"applied": False, "reason": reason}
    if stage == "match":
        return {"matches": [], "reason": reason}
    return {"reason": reason}


def respond(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The result (SPEC "Result") from the stage summaries keyed by stage name.

    `{"audio", "denoise", "loudness", "features", "matches"}`; matches best first.
    """
    matches = list((summaries.get("match") or {}).get("matches", []))
    matches.sort(key=lambda m: -(m.get("score") or 0.0))
    return {
        "audio": dict(summaries["ingest"]),
        "denoise": dict(summaries.get("denoise") or skipped_summary("denoise", "excluded by steps")),
        "loudness": dict(summaries["normalize"]),
        "features": dict(summaries["features"]),
        "matches": matches,
    }
