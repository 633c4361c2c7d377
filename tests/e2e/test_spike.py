"""A small spike (the full one is `make spike`): a burst queues up in the stage queues and drains, nothing
lost, and the report says how deep the queues got."""

from __future__ import annotations

import re

import pytest

from local import spike

SUMMARY = re.compile(
    r"^spike: (?P<n>\d+) invocations in pipeline mode, (?P<s>\d+) succeeded, (?P<lost>\d+) lost, "
    r"drained in (?P<drained>\d+) s, p50 (?P<p50>[\d.]+) s, p95 (?P<p95>[\d.]+) s, "
    r"peak queue (?P<peak>\d+) \((?P<stage>\w+)\)$"
)


def test_a_burst_queues_up_and_drains_losing_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    status = spike.main(["--invocations", "40", "--clients", "20", "--timeout", "300"])
    out = capsys.readouterr().out
    summary = SUMMARY.match(out.strip().splitlines()[-1])
    assert summary, out
    assert (summary["n"], summary["s"], summary["lost"]) == ("40", "40", "0")
    assert int(summary["peak"]) > 1  # the burst waited in a queue
    assert float(summary["p50"]) <= float(summary["p95"]) <= float(summary["drained"]) + 1
    depths = dict(re.findall(r"^  (\w+)\s+(\d+) at", out, flags=re.MULTILINE))
    assert set(depths) == {"ingest", "denoise", "normalize", "features", "match", "respond"}
    assert int(depths["ingest"]) > 1
    assert status == 0
