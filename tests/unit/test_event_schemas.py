"""The event contracts: a committed JSON Schema per event type, generated from its model, that the events
the code publishes satisfy, and that a newer publisher's extra fields do not break."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harmonic_service.events import EVENT_TYPES, SCHEMA_VERSION, parse_event
from scripts.export_event_schemas import OUTPUT, documents

IDS = {"invocation_id": "i-1", "correlation_id": "c-1"}
SAMPLES = {
    "InvocationSubmitted": {**IDS, "input_key": "invocations/i-1/input.wav"},
    "InvocationResumed": {**IDS, "stage": "features"},
    "StageCompleted": {**IDS, "stage": "normalize", "output_key": "invocations/i-1/normalize.npz"},
    "StageSkipped": {**IDS, "stage": "denoise", "reason": "clean clip"},
    "StageFailed": {**IDS, "stage": "ingest", "code": "invalid_audio", "message": "not a WAV"},
    "InvocationCompleted": {**IDS, "result_key": "invocations/i-1/result.json"},
    "InvocationFailed": {**IDS, "stage": "ingest", "code": "invalid_audio", "message": "not a WAV"},
}


def _schema(detail_type: str) -> dict:
    return json.loads((OUTPUT / f"{detail_type}.v{SCHEMA_VERSION}.json").read_text())


def test_the_committed_schemas_are_generated_from_the_models() -> None:
    committed = {path.name: path.read_text() for path in Path(OUTPUT).glob("*.json")}
    assert committed == documents(), "docs/events/ is out of date: run `make schemas`"
    assert set(SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("detail_type", sorted(SAMPLES))
def test_what_the_code_publishes_satisfies_the_schema(detail_type: str) -> None:
    detail = EVENT_TYPES[detail_type].model_validate(SAMPLES[detail_type])
    published = json.loads(detail.model_dump_json())  # what dal/bus.py puts on the bus
    assert published["schema_version"] == 1
    jsonschema.validate(published, _schema(detail_type))


@pytest.mark.parametrize("detail_type", sorted(SAMPLES))
def test_a_newer_publishers_extra_field_is_valid_and_read(detail_type: str) -> None:
    newer = {**SAMPLES[detail_type], "schema_version": 2, "priority": "high"}
    jsonschema.validate(newer, _schema(detail_type))  # the schema allows additions
    event = {"id": "e-1", "source": "harmonic", "detail-type": detail_type, "detail": newer}
    event_id, detail = parse_event(event)  # and the reader ignores them
    assert (event_id, detail.invocation_id) == ("e-1", "i-1")
    assert "priority" not in detail.model_dump()


def test_the_schema_requires_the_ids() -> None:
    for detail_type, sample in SAMPLES.items():
        for field in ("invocation_id", "correlation_id"):
            broken = {k: v for k, v in sample.items() if k != field}
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(broken, _schema(detail_type))
