"""Errors of the service layer: what the API maps to HTTP, and what the stage runner acts on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harmonic_service.models import Invocation, StageOutcome


# Lambda's own transient errors, as Step Functions names them: the generated ASL retries them.
# A function that died in the middle of a task (killed, out of memory, past its timeout): Lambda reports the
# invocation as failed with these error types. Transient: the task is retried like a TransientStageError.
FUNCTION_DIED_ERRORS = ("Runtime.ExitError", "Sandbox.Timedout")
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
)


class ServiceError(Exception):
    """An error the API turns into `{"error": {"code", "message"}}` with HTTP status `status`."""

    code: str = "error"
    status: int = 500

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class Forbidden(ServiceError):
    """403: the caller sees the thing but may not change it (a shared pattern). What a caller may not see
    is a NotFound instead, so that ids do not leak."""

    code = "forbidden"
    status = 403


class Conflict(ServiceError):
    code = "conflict"
    status = 409


class BadRequest(ServiceError):
    """400; code "bad_request", or "invalid_audio" when the clip itself is unusable."""

    code = "bad_request"
    status = 400


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


class PermanentStageError(Exception):
    """A stage cannot succeed on this input: the invocation ends FAILED, nothing is retried."""

    def __init__(self, message: str, code: str = "stage_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientStageError(Exception):
    """A stage failed for a reason that may pass (throttling, a timeout): the message is retried."""


class PoisonMessage(Exception):
    """A message that can never be processed (malformed envelope, unknown invocation).

    Raised, not swallowed: SQS redelivers it up to maxReceiveCount and then moves it to the DLQ.
    """


class StaleMessage(Exception):
    """A message whose work is already done or no longer wanted; dropped without side effects.

    `reason` is the StageOutcome of the drop: DUPLICATE (the stage already completed), STALE (the
    invocation is FAILED), FINISHED (it already SUCCEEDED), OUT_OF_ORDER (a stage it reads is not done) or
    CONFLICT. `item` is the invocation as the failed condition saw it, when known.
    """

    def __init__(self, reason: StageOutcome, message: str, item: Invocation | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.item = item


class UnknownInvocation(PoisonMessage):
    """A message for an invocation id the table does not hold."""
