"""The ordered table of Harmonic's stages, and every order and dependency question answered from it.

Each stage is one module of this package that declares a `Stage` (see `base.py`): what it reads, what it
produces, its skip rule, its size and `run(context)`. The table below lists them in chain order. The runners
(`runner.run_stage` for SQS stages and Step Functions tasks, `logic.chain.run_chain` for `/v1/analyze`), the
generated state machine (`make asl`), the CDK infra, the API's stage enum and the cost model all read it.
The table is fixed once imported, so what is derived from it is computed once (`parallel_groups`).
Adding a step is one module and one line here (docs/adding-a-stage.md).
"""

from __future__ import annotations

import functools
from importlib import import_module

from harmonic_service.stages.base import (
    ALL_EARLIER,
    ANALYSIS_SAMPLE_RATE,
    EXCLUDED_BY_STEPS,
    VISIBILITY_TIMEOUT_FACTOR,
    Stage,
    StageContext,
    StageOutput,
    skip_reason,
)

# Lambda handler entry points (module path inside the functions/ code asset).
PIPELINE_HANDLER = "harmonic_service.handlers.pipeline.handler"
TASK_HANDLER = "harmonic_service.handlers.statemachine.handler"
EVENTS_HANDLER = "harmonic_service.handlers.events.handler"
AUDIT_HANDLER = "harmonic_service.handlers.audit.handler"
API_HANDLER = "harmonic_service.handlers.api.handler"

# The chain, in order: one line per stage, naming its module in this package (which declares `STAGE`).
STAGE_MODULES: tuple[str, ...] = (
    "ingest",
    "denoise",
    "normalize",
    "features",
    "match",
    "respond",
)


def _load(modules: tuple[str, ...]) -> tuple[Stage, ...]:
    """The declared stages of `modules`, checked: ValueError when the table is inconsistent (a name twice,
    a read of a later stage, …)."""
    stages = tuple(import_module(f"{__name__}.{module}").STAGE for module in modules)
    for module, stage in zip(modules, stages, strict=True):
        if stage.name != module:
            raise ValueError(f"module stages/{module}.py declares stage {stage.name!r}; name it {module!r}")
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique: {names}")
    if not stages or stages[0].reads or not stages[0].reads_clip:
        raise ValueError("the first stage must read the submitted clip and nothing else")
    if stages[-1].optional:
        raise ValueError(f"the last stage ({stages[-1].name}) writes the result; it cannot be optional")
    for index, stage in enumerate(stages):
        if not stage.name.isidentifier() or stage.name != stage.name.lower():
            raise ValueError(f"stage name {stage.name!r} must be a lower-case identifier")
        unknown = set(stage.reads) - set(names[:index]) - set(ALL_EARLIER)
        if unknown:
            raise ValueError(f"stage {stage.name} reads {sorted(unknown)}, which are not earlier stages")
        if stage.reads_audio and not any(s.produces_audio for s in stages[:index]):
            raise ValueError(f"stage {stage.name} reads audio but no earlier stage produces any")
    return stages


STAGES: tuple[Stage, ...] = _load(STAGE_MODULES)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def get_stage(name: str) -> Stage:
    """The declaration of stage `name`; KeyError for an unknown stage."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}")


def earlier(name: str) -> tuple[Stage, ...]:
    """The stages before `name`, in order."""
    return STAGES[: STAGE_NAMES.index(name)]


def following(name: str) -> tuple[Stage, ...]:
    """The stages after `name`, in order."""
    return STAGES[STAGE_NAMES.index(name) + 1 :]


def dependencies(name: str) -> tuple[str, ...]:
    """The stages `name` reads (ALL_EARLIER resolved), in table order."""
    stage = get_stage(name)
    if stage.reads == ALL_EARLIER:
        return tuple(s.name for s in earlier(name))
    return tuple(s for s in STAGE_NAMES if s in stage.reads)


@functools.cache
def parallel_groups() -> tuple[tuple[str, ...], ...]:
    """The stages grouped by dependency depth: the stages of a group may run in parallel.

    A stage's depth is one more than the deepest stage it reads (0 for the first). Stages of one depth
    never read each other, so once the groups before are done they can start together.
    """
    depth: dict[str, int] = {}
    for stage in STAGES:
        depth[stage.name] = 1 + max((depth[d] for d in dependencies(stage.name)), default=-1)
    levels = sorted(set(depth.values()))
    return tuple(tuple(n for n in STAGE_NAMES if depth[n] == level) for level in levels)


def in_parallel_group(name: str) -> bool:
    """Whether `name` shares its dependency depth with another stage (it may run in parallel with it)."""
    return any(name in group and len(group) > 1 for group in parallel_groups())


__all__ = [
    "ALL_EARLIER",
    "ANALYSIS_SAMPLE_RATE",
    "API_HANDLER",
    "AUDIT_HANDLER",
    "EVENTS_HANDLER",
    "EXCLUDED_BY_STEPS",
    "PIPELINE_HANDLER",
    "STAGES",
    "STAGE_MODULES",
    "STAGE_NAMES",
    "TASK_HANDLER",
    "VISIBILITY_TIMEOUT_FACTOR",
    "Stage",
    "StageContext",
    "StageOutput",
    "dependencies",
    "earlier",
    "following",
    "get_stage",
    "in_parallel_group",
    "parallel_groups",
    "skip_reason",
]
