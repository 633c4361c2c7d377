"""A small chaos run (the full one is `make chaos`): failures, crashes, duplicates, latency, malformed
messages and SIGKILLed workers in every asynchronous mode; nothing lost, doubled or stuck."""

from __future__ import annotations

import re

import pytest

from local import chaos

SUMMARY = re.compile(
    r"^(?P<label>chaos(\[\w+\])?): (?P<n>\d+) invocations, (?P<s>\d+) succeeded, "
    r"(?P<f>\d+) failed as expected, (?P<lost>\d+) lost, (?P<dup>\d+) duplicated, "
    r"(?P<killed>\d+) workers killed, (?P<stuck>\d+) stuck$"
)
ARGS = ["--invocations", "30", "--clients", "6", "--bad", "3", "--fail-rate", "0.15"]
ARGS += ["--kill-rate", "0.04", "--min-kills", "1", "--timeout", "400"]


def test_chaos_loses_nothing_and_duplicates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    status = chaos.main(ARGS)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    summaries = {m["label"]: m for m in map(SUMMARY.match, lines[-4:]) if m}
    assert set(summaries) == {"chaos", "chaos[pipeline]", "chaos[statemachine]", "chaos[events]"}, out
    total = summaries["chaos"]
    assert (total["n"], total["s"], total["f"]) == ("30", "27", "3"), out
    assert (total["lost"], total["dup"], total["stuck"]) == ("0", "0", "0"), out
    assert int(total["killed"]) >= 1, out
    for mode in ("pipeline", "statemachine", "events"):
        assert summaries[f"chaos[{mode}]"]["n"] == "10"
    assert sum(int(summaries[f"chaos[{m}]"]["killed"]) for m in chaos.MODES) == int(total["killed"])
    stored = next(line for line in lines if line.startswith("stage completions in the store"))
    counted = re.search(r"malformed messages put: (\d+), messages in dead-letter queues: (\d+)", stored)
    put, dead = counted.groups()
    assert int(dead) >= int(put) > 0
    assert status == 0
