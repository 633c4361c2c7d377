"""The watchdog's function (harmonic_service.sweeper): an EventBridge schedule every minute runs a sweep of
the invocations past their deadline; Step Functions' "Execution Status Change" events (TIMED_OUT, ABORTED,
FAILED) record runs that ended without the state machine's own failure path. An invocation it fails is
announced on the bus like any other end (its notifications, the audit log). Each scheduled run also tends
the stages' circuit breakers (half-open after the cool-down, event-source mappings following them)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from harmonic_service import sweeper
from harmonic_service.handlers.delivery import announce_end
from harmonic_service.stages import STAGE_NAMES

logger = Logger(service="harmonic")
tracer = Tracer(service="harmonic", auto_patch=False)  # botocore: dal.clients, on first use
metrics = Metrics(namespace="Harmonic", service="harmonic")


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A scheduled sweep, or one ended execution (see the module docstring)."""
    if isinstance(event, dict) and event.get("source") == "aws.states":
        failed = sweeper.execution_ended(event)
        if failed:
            metrics.add_metric(name="ExecutionsEndedUnrecorded", unit=MetricUnit.Count, value=1)
            logger.warning(
                "recorded an execution that ended without its failure path", extra={"invocation_id": failed}
            )
            announce_end(failed)
        return {"failed": failed}
    tended = _tend_breakers()
    report = sweeper.sweep()
    for invocation_id in report.stalled:
        announce_end(invocation_id)
    metrics.add_metric(name="InvocationsStalled", unit=MetricUnit.Count, value=len(report.stalled))
    metrics.add_metric(name="InvocationsRedispatched", unit=MetricUnit.Count, value=len(report.redispatched))
    if report.examined:
        logger.info("swept", extra=report.as_dict())
    return {**report.as_dict(), "breakers": tended}


def _tend_breakers() -> dict[str, Any]:
    """Move the breakers on (sweeper.tend_breakers) and report them: ``BreakersOpen`` (how many stages'
    breakers are OPEN, alarmed) and ``BreakerOpen`` per stage (1 or 0, graphed; half-open, while a probe
    may run, is 0). A failure here is logged and does not keep the sweep of the deadlines from running."""
    try:
        tended = sweeper.tend_breakers()
    except Exception:
        logger.exception("could not tend the circuit breakers")
        return {}
    metrics.add_metric(name="BreakersOpen", unit=MetricUnit.Count, value=len(tended.open))
    for stage in STAGE_NAMES:
        with single_metric(
            name="BreakerOpen",
            unit=MetricUnit.Count,
            value=1 if stage in tended.open else 0,
            namespace="Harmonic",
            default_dimensions={"service": "harmonic", "stage": stage},
        ):
            pass
    if tended.open or tended.half_opened or tended.switched:
        logger.warning("circuit breakers", extra=tended.as_dict())
    return tended.as_dict()
