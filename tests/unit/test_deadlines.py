"""Deadlines and re-dispatch timing come from the stage table's queue settings (deadlines.py), with
the numbers worked out by hand from the declarations: ingest 60 s, denoise 120 s, normalize 60 s, features
120 s, match 60 s, respond 30 s; three deliveries each; visibility 6 × the timeout."""

from __future__ import annotations

from harmonic_service import deadlines
from harmonic_service.stages import get_stage


def test_a_stage_budget_is_its_retries_waits_plus_one_run() -> None:
    assert deadlines.stage_budget_s(get_stage("ingest")) == 2 * 360 + 60
    assert deadlines.stage_budget_s(get_stage("respond")) == 2 * 180 + 30
    assert deadlines.stage_budget_s(get_stage("ingest"), override_s=5) == 2 * 5 + 60


def test_the_deadline_adds_the_chain_and_counts_a_parallel_group_once() -> None:
    # ingest 780, denoise 1560, normalize 780, max(features 1560, match 780), respond 390; 5 hops of 10 s
    assert deadlines.deadline_s() == 780 + 1560 + 780 + 1560 + 390 + 5 * 10
    # the local stack's 5 s visibility: 70 + 130 + 70 + 130 + 40, and hops of 5 s (never above it)
    assert deadlines.deadline_s(override_s=5) == 440 + 5 * 5
    # and a 5 s function timeout (what `make chaos` runs with, at 2 s visibility): 5 × (2 × 2 + 5 + 2)
    assert deadlines.deadline_s(override_s=2, timeout_override_s=5) == 5 * 11


def test_redispatch_waits_out_the_visibility_of_the_stages_that_read_it() -> None:
    assert deadlines.redispatch_after_s("normalize") == 720 + 10  # features' queue hides up to 720 s
    assert deadlines.redispatch_after_s("features") == 180 + 10  # respond's
    assert deadlines.redispatch_after_s("respond") == 10  # nothing reads it
    assert deadlines.redispatch_after_s("normalize", override_s=5) == 5 + 5
