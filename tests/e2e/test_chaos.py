"""A small chaos run (the full one is `make chaos`): faults in every stage, nothing lost or doubled."""

from __future__ import annotations

import pytest

from local import chaos


def test_chaos_loses_nothing_and_duplicates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    status = chaos.main(
        ["--invocations", "30", "--clients", "4", "--bad", "2", "--fail-rate", "0.15", "--timeout", "300"]
    )
    out = capsys.readouterr().out
    verdict = out.strip().splitlines()[-1]
    assert verdict == "chaos: 30 invocations, 28 succeeded, 2 failed as expected, 0 lost, 0 duplicated", out
    assert status == 0
    injected = next(line for line in out.splitlines() if line.startswith("stage completions checked"))
    assert "'crash'" in injected
    assert "'duplicate'" in injected
