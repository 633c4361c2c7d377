"""The one declaration of Harmonic's stages.

Read by the CDK infra (queues, functions, event sources, alarms), the state machine tests and the local
stack. Change a stage here and every orchestration follows.
"""

from __future__ import annotations

from dataclasses import dataclass

# Lambda handler entry points (module path inside the functions/ code asset).
PIPELINE_HANDLER = "harmonic_service.handlers.pipeline.handler"
TASK_HANDLER = "harmonic_service.handlers.statemachine.handler"
API_HANDLER = "harmonic_service.handlers.api.handler"

# SQS needs the visibility timeout to cover every retry of a batch inside one function invocation.
VISIBILITY_TIMEOUT_FACTOR = 6


@dataclass(frozen=True)
class StageSpec:
    """How one stage runs: its function's size and its queue's delivery rules."""

    name: str
    timeout_s: int
    memory_mb: int
    batch_size: int = 1
    max_concurrency: int = 10
    max_receive_count: int = 3
    optional: bool = False  # may be skipped (by `steps`, or when the stage has nothing to do)

    @property
    def queue_visibility_timeout_s(self) -> int:
        return self.timeout_s * VISIBILITY_TIMEOUT_FACTOR


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", timeout_s=60, memory_mb=1024),
    StageSpec("denoise", timeout_s=120, memory_mb=1536, optional=True),
    StageSpec("normalize", timeout_s=60, memory_mb=1024),
    StageSpec("features", timeout_s=120, memory_mb=1536),
    StageSpec("match", timeout_s=60, memory_mb=1024, optional=True),
    StageSpec("respond", timeout_s=30, memory_mb=512, batch_size=5),
)

STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def get_stage(name: str) -> StageSpec:
    """The spec of stage `name`; KeyError for an unknown stage."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}")


def next_stage(name: str) -> StageSpec | None:
    """The stage after `name`, or None after the last one."""
    index = STAGE_NAMES.index(name)
    return STAGES[index + 1] if index + 1 < len(STAGES) else None
