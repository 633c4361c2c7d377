"""Stage normalize: ITU-R BS.1770-4 integrated loudness to the target LUFS, with a sample-peak ceiling."""

from __future__ import annotations

from typing import Any

from harmonic_service.stages.base import ANALYSIS_SAMPLE_RATE, Stage, StageContext, StageOutput


def normalize(audio: Any, sr: int, target_lufs: float = -23.0, peak_dbfs: float = -1.0) -> StageOutput:
    """BS.1770-4 loudness normalization to `target_lufs` with a `peak_dbfs` sample-peak ceiling.

    Summary: input_lufs, output_lufs, gain_db, peak_limited, target_lufs (None where undefined, e.g. the
    loudness of silence).
    """
    import numpy as np

    import harmonic
    from harmonic import loudness

    normalized, info = loudness.loudness_normalization(
        audio, sr, target_lufs=target_lufs, peak_dbfs=peak_dbfs
    )
    return StageOutput(np.asarray(normalized, dtype=np.float32), harmonic.json_safe(info))


def run(context: StageContext) -> StageOutput:
    options = context.options
    return normalize(context.audio(), ANALYSIS_SAMPLE_RATE, options.target_lufs, options.peak_dbfs)


STAGE = Stage(
    name="normalize",
    description="BS.1770-4 integrated loudness to the target LUFS, with a peak ceiling.",
    run=run,
    reads=("denoise",),
    reads_audio=True,
    produces_audio=True,
    result_key="loudness",
    timeout_s=60,
    memory_mb=1024,
)
