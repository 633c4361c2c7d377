"""The event bus (events mode): publishing Harmonic's events to EventBridge, bus name from EVENT_BUS_NAME.

Inside a traced Lambda invocation (Lambda sets ``_X_AMZN_TRACE_ID``), each entry carries that trace header
(PutEvents' ``TraceHeader``), so EventBridge passes the X-Ray trace on to the rules' targets.
"""

from __future__ import annotations

import os

from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.events import SOURCE, EventDetail


class PublishError(Exception):
    """EventBridge did not accept an event (a transient error: the caller's message is retried)."""


def publish(*details: EventDetail) -> list[str]:
    """Put `details` on the bus, in order, as one PutEvents call; their event ids.

    Raises PublishError when any entry is refused (PutEvents reports entries one by one) and RuntimeError
    when no bus is configured.
    """
    bus = get_settings().event_bus_name
    if not bus:
        raise RuntimeError("EVENT_BUS_NAME is not set: events mode is not deployed here")
    trace = os.environ.get("_X_AMZN_TRACE_ID", "").strip()
    entries = [
        {
            "Source": SOURCE,
            "DetailType": detail.detail_type,
            "Detail": detail.model_dump_json(),
            "EventBusName": bus,
            **({"TraceHeader": trace} if trace else {}),
        }
        for detail in details
    ]
    response = clients.events().put_events(Entries=entries)
    results = response.get("Entries", [])
    failed = [entry for entry in results if entry.get("ErrorCode")]
    if response.get("FailedEntryCount") or failed or len(results) != len(entries):
        reasons = "; ".join(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}" for entry in failed)
        raise PublishError(f"EventBridge refused {len(failed) or len(entries)} event(s): {reasons}")
    return [entry["EventId"] for entry in results]
