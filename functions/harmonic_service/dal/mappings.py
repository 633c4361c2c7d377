"""Lambda's SQS event-source mappings of the stages: the switch a circuit breaker turns.

Disabling a mapping stops Lambda from pulling the queue (messages stay in it, visible, their receive counts
untouched); enabling it resumes pulling at the mapping's own batch size and maximum concurrency. Only the
sweeper turns it, for the mapping ids CDK hands it (STAGE_EVENT_SOURCE_MAPPINGS). The local stack has no
mappings: its pollers read the breaker's state instead (local/stack.py).
"""

from __future__ import annotations

from harmonic_service.config import get_settings
from harmonic_service.dal import clients


def set_pulling(stage: str, enabled: bool) -> list[str]:
    """Enable or disable every event-source mapping of `stage` whose state differs; the ids changed.

    A mapping in a transition (Enabling, Disabling, Updating) is left for the next call, since Lambda
    refuses updates then (ResourceInUseException)."""
    lambda_client = clients.lambda_()
    wanted = ("Enabled", "Enabling") if enabled else ("Disabled", "Disabling")
    changed = []
    for mapping_id in get_settings().stage_event_source_mappings.get(stage, ()):
        current = lambda_client.get_event_source_mapping(UUID=mapping_id).get("State", "")
        if current in wanted or current not in ("Enabled", "Disabled"):
            continue
        lambda_client.update_event_source_mapping(UUID=mapping_id, Enabled=enabled)
        changed.append(mapping_id)
    return changed
