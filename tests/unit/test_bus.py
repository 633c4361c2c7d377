"""Publishing to the event bus (dal/bus.py) against a stand-in EventBridge client: entries, refusals, the
X-Ray trace header."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harmonic_service import config
from harmonic_service.dal import bus, clients
from harmonic_service.events import InvocationSubmitted, StageCompleted

IDS = {"invocation_id": "i-1", "correlation_id": "c-1"}


class FakeEvents:
    """PutEvents that records its entries and answers `failed` of them with an error."""

    def __init__(self, failed: int = 0) -> None:
        self.entries: list[dict[str, Any]] = []
        self.failed = failed

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        results = [{"EventId": f"e-{i}"} for i in range(len(Entries) - self.failed)]
        results += [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}] * self.failed
        return {"FailedEntryCount": self.failed, "Entries": results}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEvents:
    monkeypatch.setenv("EVENT_BUS_NAME", "the-bus")
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    config.get_settings.cache_clear()
    events = FakeEvents()
    monkeypatch.setattr(clients, "events", lambda: events)
    yield events
    config.get_settings.cache_clear()


def test_one_put_events_call_with_every_detail_in_order(fake: FakeEvents) -> None:
    ids = bus.publish(
        InvocationSubmitted(**IDS, input_key="k"), StageCompleted(**IDS, stage="ingest", output_key="o")
    )
    assert ids == ["e-0", "e-1"]
    assert [entry["DetailType"] for entry in fake.entries] == ["InvocationSubmitted", "StageCompleted"]
    assert {entry["Source"] for entry in fake.entries} == {"harmonic"}
    assert {entry["EventBusName"] for entry in fake.entries} == {"the-bus"}
    detail = json.loads(fake.entries[1]["Detail"])
    assert (detail["stage"], detail["schema_version"]) == ("ingest", 1)
    assert all("TraceHeader" not in entry for entry in fake.entries)  # no trace outside Lambda


def test_the_lambda_trace_goes_on_with_the_event(fake: FakeEvents, monkeypatch: pytest.MonkeyPatch) -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    bus.publish(InvocationSubmitted(**IDS, input_key="k"))
    assert fake.entries[0]["TraceHeader"] == header


def test_a_refused_entry_is_an_error_to_retry(fake: FakeEvents) -> None:
    fake.failed = 1
    with pytest.raises(bus.PublishError, match="InternalFailure: try again"):
        bus.publish(InvocationSubmitted(**IDS, input_key="k"))


def test_publishing_without_a_bus_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", "")
    config.get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="EVENT_BUS_NAME"):
            bus.publish(InvocationSubmitted(**IDS, input_key="k"))
    finally:
        config.get_settings.cache_clear()
