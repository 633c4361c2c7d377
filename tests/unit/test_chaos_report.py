"""`make chaos`'s recovery figure: from each injected kill (as faults.maybe_kill prints it) to the next end of
its invocation that a client saw."""

from __future__ import annotations

from local.chaos import Outcome, recovery_times

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
C = "33333333-3333-4333-8333-333333333333"


def _kill(invocation_id: str, at: float) -> str:
    return (
        f"injected kill of worker 4242 in normalize after its side effects, before its checkpoint "
        f"(invocation {invocation_id}, at {at:.3f})\n"
    )


def test_each_kill_counts_until_the_next_end_its_invocation_reached() -> None:
    log = "noise\n" + _kill(A, 100.0) + _kill(B, 200.0) + _kill(A, 150.0) + _kill(C, 300.0) + "more noise\n"
    outcomes = [
        Outcome(A, "pipeline", "succeeded", ends=[140.0, 157.5]),  # FAILED (resumable) at 140, then done
        Outcome(B, "events", "succeeded", ends=[203.25]),
        Outcome(C, "statemachine", "lost", ends=[]),  # never ended again: not a recovery
    ]
    assert recovery_times(log, outcomes) == [3.25, 7.5, 40.0]


def test_a_kill_line_without_an_invocation_is_ignored() -> None:
    line = "injected kill of worker 7 in ingest after its checkpoint (invocation ?, at 12.000)\n"
    assert recovery_times(line, [Outcome(A, "pipeline", "succeeded", ends=[13.0])]) == []
