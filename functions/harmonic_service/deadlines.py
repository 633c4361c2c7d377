"""How long an invocation may honestly run, from the stage table: what the sweeper (sweeper.py) holds it to,
and when a duplicate may conclude that the message it should have led to was lost.

A stage fed by a queue gets `max_receive_count` deliveries. A delivery that fails stays invisible for the
queue's visibility timeout before the next one, and one that works ends within the function's timeout, so

    stage budget = (max_receive_count − 1) × visibility timeout + function timeout

is the longest an honest stage can take (ingest, 60 s timeout, 3 deliveries: 2 × 360 s + 60 s = 780 s).
An invocation's deadline is the budgets added along the chain (a parallel group counts once, at its longest)
plus a hop per stage for the message between stages (10 s, or the visibility timeout if shorter). The state
machine's retries (2 s, 4 s backoff) end far sooner; the same budget is a generous bound for it. Clip length
does not enter: every attempt is bounded by its function's timeout whatever the clip, and the retry waits
dominate.

The local stack shortens every queue's visibility timeout (QUEUE_VISIBILITY_TIMEOUT_S), and can shorten the
functions' timeout too (FUNCTION_TIMEOUT_S, which its workers enforce); the budgets follow both, so that its
sweeper and its re-dispatches act in seconds, not minutes.
"""

from __future__ import annotations

from harmonic_service.stages import STAGES, Stage, dependencies, get_stage, parallel_groups

# Between two stages: a send and a receive, or a publish, a rule and a receive; or a state transition. At
# most this, and never more than the visibility timeout (the local stack's queues poll within it).
HOP_S = 10


def visibility_timeout_s(stage: Stage, override_s: int = 0) -> int:
    """The visibility timeout of the stage's queue: its declaration's, or the deployment's override."""
    return override_s if override_s > 0 else stage.queue_visibility_timeout_s


def hop_s(stage: Stage, override_s: int = 0) -> int:
    """The allowance for the message that starts `stage`."""
    return min(HOP_S, visibility_timeout_s(stage, override_s))


def stage_budget_s(stage: Stage, override_s: int = 0, timeout_override_s: int = 0) -> int:
    """The longest an honest run of `stage` takes, every delivery used (see the module docstring); the
    overrides are the deployment's visibility timeout and function timeout when it sets them."""
    timeout = timeout_override_s if timeout_override_s > 0 else stage.timeout_s
    return (stage.max_receive_count - 1) * visibility_timeout_s(stage, override_s) + timeout


def deadline_s(override_s: int = 0, timeout_override_s: int = 0) -> int:
    """Seconds from acceptance (or a resume) within which an invocation that is not stuck has ended."""
    total = 0
    for group in parallel_groups():
        stages = [get_stage(name) for name in group]
        total += max(stage_budget_s(s, override_s, timeout_override_s) + hop_s(s, override_s) for s in stages)
    return total


def redispatch_after_s(stage: str, override_s: int = 0) -> int:
    """How old a stage's completion must be before a duplicate of it may conclude that what it sent on was
    lost: the longest the message could still be hidden in the queue of a stage that reads it (being
    received, or waiting out its visibility timeout), plus a hop."""
    readers = [s for s in STAGES if stage in dependencies(s.name)]
    if not readers:
        return HOP_S
    return max(visibility_timeout_s(reader, override_s) + hop_s(reader, override_s) for reader in readers)
