"""The state machine (statemachine mode): start one execution per invocation run."""

from __future__ import annotations

from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.models import Envelope


def start_execution(envelope: Envelope, name: str) -> bool:
    """Start an execution called `name` with `envelope` as input; False if it was already started.

    Execution names are unique per state machine for 90 days, so naming it after the invocation makes the
    start idempotent: the same name and input while running returns the running execution (True), another
    input or a closed execution raises ExecutionAlreadyExists (False).
    """
    client = clients.stepfunctions()
    try:
        client.start_execution(
            stateMachineArn=get_settings().state_machine_arn, name=name, input=envelope.to_json()
        )
    except client.exceptions.ExecutionAlreadyExists:
        return False
    return True
