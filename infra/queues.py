"""Harmonic's SQS queues, made one way: SQS-managed encryption, TLS only, a dead-letter queue.

Every queue a function consumes (the pipeline's stage queues, the events mode's, the audit subscriber's) has
a visibility timeout that covers every retry of a batch (6× the function timeout, AWS's advice for SQS event
sources) and moves a message to its dead-letter queue after `max_receive_count` receives.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from harmonic_service.stages import Stage

# Standard retention of an SQS message is 4 days; dead letters are kept as long as SQS allows.
QUEUE_RETENTION = cdk.Duration.days(4)
DEAD_LETTER_RETENTION = cdk.Duration.days(14)


def dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """An encrypted, TLS-only queue that keeps what could not be processed for 14 days."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )


def consumed_queue(
    scope: Construct, name: str, *, visibility_timeout_s: int, max_receive_count: int
) -> tuple[sqs.Queue, sqs.Queue]:
    """`<name>Queue` and its `<name>DeadLetterQueue`, for a function to consume."""
    dead_letters = dead_letter_queue(scope, f"{name}DeadLetterQueue")
    queue = sqs.Queue(
        scope,
        f"{name}Queue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=cdk.Duration.seconds(visibility_timeout_s),
        retention_period=QUEUE_RETENTION,
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=dead_letters),
    )
    return queue, dead_letters


def consume(
    function: lambda_.IFunction, queue: sqs.IQueue, *, batch_size: int, max_concurrency: int
) -> event_sources.SqsEventSource:
    """`function` consumes `queue` with partial batch responses (a failed record is retried alone) and at
    most `max_concurrency` concurrent invocations; the event source (its mapping's id and ARN)."""
    source = event_sources.SqsEventSource(
        queue, batch_size=batch_size, max_concurrency=max_concurrency, report_batch_item_failures=True
    )
    function.add_event_source(source)
    return source


def consume_as_stage(
    function: lambda_.IFunction, queue: sqs.IQueue, stage: Stage
) -> event_sources.SqsEventSource:
    """`function` consumes `queue` for `stage` (its batch size and maximum concurrency), and may put a
    message back on it: while the stage's circuit breaker is open, a message it receives waits on the queue
    (handlers/delivery.with_breaker). The event source's mapping is the switch the sweeper turns."""
    queue.grant_send_messages(function)
    return consume(function, queue, batch_size=stage.batch_size, max_concurrency=stage.max_concurrency)
