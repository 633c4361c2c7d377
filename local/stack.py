"""The whole system in one process: moto server, resources from the stage table, SQS pollers, the state
machine with its tasks routed to the real handlers, and the HTTP front.

What is real: the handlers (API, SQS stage, Step Functions task) run unchanged, against S3, SQS, DynamoDB
and Step Functions served by a moto server on 127.0.0.1 over HTTP (boto3 reaches it through
``AWS_ENDPOINT_URL``), so presigned upload URLs work as deployed. What stands in for AWS's managed glue
comes from :mod:`local.harness`, shared with the integration tests:

- event-source mappings: one poller thread per stage queue, receiving up to the stage's batch size, calling
  the SQS handler with a Lambda-shaped event, deleting the records it did not report as failed; failed
  records come back after the queue's visibility timeout and land in the DLQ after ``maxReceiveCount``
  receives (moto applies the redrive policy). A stage's pollers pause while its circuit breaker is OPEN,
  where the sweeper would disable the mapping deployed;
- Lambda for the state machine: moto's Docker-free Lambda backend (``LambdaSimpleBackend.invoke``) is
  routed to the task handler in-process; a raised exception becomes a function error whose ``errorType``
  the ASL's Retry/Catch match, as with real Lambda;
- API Gateway: :mod:`local.http_front`.

Handlers keep process-wide state, as a Lambda execution environment does: Powertools' batch processor and
resolver, and the Logger's keys (correlation id, stage, invocation id). So the stage functions (pipeline,
events, audit, state machine tasks) run in worker processes (:mod:`local.sandboxes`), up to
``sandbox_workers`` per handler module, one call at a time each: stages of different invocations, and the
parallel ``features`` and ``match`` of one, run concurrently as in Lambda. The API handler runs in this
process under one lock. With ``sandbox_workers=0`` every handler runs here, one call at a time.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harmonic_service.breaker import BreakerState
from harmonic_service.config import clear_caches
from harmonic_service.dal import breakers, clients
from harmonic_service.events import SUBSCRIBERS
from harmonic_service.stages import STAGE_NAMES
from local.harness import (
    API_HANDLER,
    ASL_PATH,
    EVENTS_HANDLER,
    MOTO_CONFIG,
    PIPELINE_HANDLER,
    REGION,
    SWEEPER_HANDLER,
    TASK_HANDLER,
    Names,
    Resources,
    Sandbox,
    StageConsumer,
    TaskRouter,
    aws_clients,
    faithful_replay,
    fake_aws_environment,
    provision,
    route_lambda,
    wait_for_executions,
)
from local.harness import FakeLambdaContext as FakeLambdaContext  # re-exported: tests import it from here
from local.harness import sqs_event as sqs_event  # re-exported: tests import it from here
from local.http_front import start_front
from local.sandboxes import ProcessSandbox

NAMES = Names(prefix="harmonic-local")
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway REST's payload limit
log = logging.getLogger("local_stack")
BREAKER_READ_EVERY_S = 1.0  # how often a poller reads its stage's breaker (a mapping's switch is instant)


@dataclass(frozen=True)
class LocalSettings:
    """How the local stack runs; every field has an environment variable in ``python -m local``."""

    host: str = "127.0.0.1"
    port: int = 8765  # the HTTP front (PORT)
    moto_port: int = 0  # 0: any free port (MOTO_PORT)
    visibility_timeout_s: int = 5  # deployed: 6x the function timeout; here short so retries are quick
    max_body_bytes: int = API_GATEWAY_MAX_BODY_BYTES
    poll_wait_s: int = 1
    # API Gateway's stage throttling, as cdk.json's api_throttle_rate / api_throttle_burst (0: off)
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    # API keys the front requires (LOCAL_API_KEYS, comma-separated; --api-key): as deployed with auth=api_key,
    # a request without one of them is a 403. None: anyone may call, and any X-Api-Key names a caller.
    api_keys: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)  # extra handler environment (fault injection)
    # Worker processes per stage handler module (local.sandboxes): stages run concurrently, as Lambda's
    # execution environments do. 0: every handler in this process, one call at a time.
    sandbox_workers: int = 3
    sweep_period_s: float = 60.0  # the watchdog (harmonic_service.sweeper), every minute as deployed; 0: off
    # The stage functions' timeout, enforced on the workers (a call past it kills its worker) and told to the
    # handlers (FUNCTION_TIMEOUT_S: deadlines follow it); 0: none enforced, the declared ones for deadlines.
    function_timeout_s: int = 0
    # Pollers per queue, each delivering one batch at a time, at most the stage's maxConcurrency (Lambda's
    # event-source mapping scales up to it). 1: one at a time per stage.
    pollers_per_queue: int = 1


class StagePoller(threading.Thread):
    """Lambda's SQS event-source mapping for one stage, polling until the stack stops."""

    def __init__(self, consumer: StageConsumer, stopping: threading.Event, poll_wait_s: int) -> None:
        super().__init__(name=f"poller-{consumer.stage.name}", daemon=True)
        self.consumer = consumer
        self.stopping = stopping
        self.poll_wait_s = poll_wait_s
        self.invocations = 0
        self.has_breaker = consumer.stage.name in STAGE_NAMES

    def paused(self) -> bool:
        """Whether the stage's circuit breaker is OPEN: Lambda's mapping would be disabled (the sweeper
        disables it deployed), so the poller does not receive. An unreadable state does not pause."""
        if not self.has_breaker:
            return False
        try:
            return breakers.state(self.consumer.stage.name, max_age_s=BREAKER_READ_EVERY_S).state == (
                BreakerState.OPEN
            )
        except Exception:
            return False

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.paused():
                self.stopping.wait(self.poll_wait_s)
                continue
            try:
                messages = self.consumer.receive(wait_s=self.poll_wait_s)
            except Exception:  # the server is stopping, or a hiccup: try again shortly
                if self.stopping.wait(0.5):
                    return
                continue
            if messages:
                self.invocations += 1
                self.consumer.deliver(messages, contain_errors=True)


class LocalStack:
    """Start with :meth:`start` (or as a context manager); :attr:`base_url` is the API's address.

    Serves :mod:`local.http_front` (its ``ApiBackend``: :attr:`settings` and :meth:`call_api`)."""

    def __init__(self, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.stopping = threading.Event()
        self.resources: Resources | None = None
        self.api = Sandbox(API_HANDLER)
        workers, timeout = self.settings.sandbox_workers, self.settings.function_timeout_s
        self.pipeline: Sandbox | ProcessSandbox = stage_sandbox(PIPELINE_HANDLER, workers, timeout)
        self.events: Sandbox | ProcessSandbox = stage_sandbox(EVENTS_HANDLER, workers, timeout)
        # the bus's other subscribers (audit log, notifications): one worker each is plenty here
        self.subscribers: dict[str, Sandbox | ProcessSandbox] = {
            subscriber.name: stage_sandbox(subscriber.handler, min(workers, 1)) for subscriber in SUBSCRIBERS
        }
        self.task: Sandbox | ProcessSandbox = stage_sandbox(TASK_HANDLER, workers, timeout)
        self.sweeper: Sandbox | ProcessSandbox = stage_sandbox(SWEEPER_HANDLER, min(workers, 1))
        self._moto: Any = None
        self._front: Any = None
        self._threads: list[threading.Thread] = []
        self._clients: dict[str, Any] = {}
        self._cleanup = contextlib.ExitStack()  # undoes the process-wide changes, last first

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start moto, create the resources, then the pollers and the HTTP front."""
        started = time.perf_counter()
        # Metrics are disabled locally, so Powertools keeps the per-invocation dimension and warns each time.
        warnings.filterwarnings("ignore", message="Dimension 'stage' has already been added")
        self._start_moto()
        self._set_environment()
        resources = self._create_resources()
        router = TaskRouter(self.task, resources.function_stage, NAMES.function_prefix, record=False)
        self._cleanup.enter_context(route_lambda(router))
        self._cleanup.enter_context(faithful_replay())
        self._warm_clients()
        self._warm_workers()
        consumers = [*resources.consumers(self.pipeline), *resources.consumers(self.events, events=True)]
        consumers += [resources.subscriber_consumer(s, self.subscribers[s.name]) for s in SUBSCRIBERS]
        for consumer in consumers:
            count = max(1, min(self.settings.pollers_per_queue, consumer.stage.max_concurrency))
            for _ in range(count):
                poller = StagePoller(consumer, self.stopping, self.settings.poll_wait_s)
                poller.start()
                self._threads.append(poller)
        if self.settings.sweep_period_s > 0:
            sweeping = threading.Thread(target=self._sweep_every_period, name="sweeper", daemon=True)
            sweeping.start()
            self._threads.append(sweeping)
        self._front = start_front(self)
        log.info("local stack up in %.1f s at %s", time.perf_counter() - started, self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, let pollers finish their batch, stop moto, restore the process's environment."""
        self.stopping.set()
        if self._front is not None:
            self._front.shutdown()
            self._front.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._moto is not None:
            if self.resources is not None and self.resources.state_machine_arn:
                with contextlib.suppress(Exception):
                    wait_for_executions(self.client("stepfunctions"), self.resources.state_machine_arn, 10.0)
            self._moto.stop()
        for sandbox in self.stage_sandboxes():
            if isinstance(sandbox, ProcessSandbox):
                sandbox.close()
        self._cleanup.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._front.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def moto_url(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS (clients are thread-safe; creating them is not)."""
        return self._clients[service]

    def call_api(self, event: dict[str, Any]) -> dict[str, Any]:
        """The API handler's response to an API Gateway proxy event (what the HTTP front serves)."""
        return self.api.call(event, NAMES.function("api"))

    # --- pieces ------------------------------------------------------------------------------------------

    def _start_moto(self) -> None:
        from moto.core.config import default_user_config
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request is noise
        saved = copy.deepcopy(default_user_config)
        default_user_config.update(copy.deepcopy(MOTO_CONFIG))  # type: ignore[typeddict-item]
        self._cleanup.callback(default_user_config.update, saved)
        self._moto = ThreadedMotoServer(
            ip_address=self.settings.host, port=self.settings.moto_port, verbose=False
        )
        self._moto.start()

    def _set_env(self, name: str, value: str | None) -> None:
        """Set (None: unset) a variable of this process until :meth:`stop`."""
        previous = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

        def restore() -> None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous

        self._cleanup.callback(restore)

    def _set_environment(self) -> None:
        """Fake credentials pointed at moto, and the boto3 clients of the stack itself."""
        _, port = self._moto.get_host_and_port()
        for name, value in {
            **fake_aws_environment("local"),
            "MOTO_PORT": str(port),  # moto's Step Functions reaches its own server through it
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_REGION": REGION,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "CALLBACK_ALLOW_HTTP": "true",  # callback receivers here are on 127.0.0.1 (the client's --listen)
            "FUNCTION_TIMEOUT_S": str(self.settings.function_timeout_s),
        }.items():
            self._set_env(name, value)
        self._clients = aws_clients()

    def _create_resources(self) -> Resources:
        """Bucket, tables, stage queues with DLQs (from the stage table), the state machine (from the ASL) and
        the environment of a deployed function (docs/design.md) naming them."""
        asl_text = ASL_PATH.read_text() if ASL_PATH.exists() else None
        self.resources = provision(
            NAMES, self._clients, visibility_timeout_s=self.settings.visibility_timeout_s, asl_text=asl_text
        )
        for name, value in {**self.resources.environment(), **self.settings.environment}.items():
            self._set_env(name, value)
        clear_caches()
        return self.resources

    def stage_sandboxes(self) -> list[Sandbox | ProcessSandbox]:
        """The sandboxes of the stage functions (pipeline, events, state machine tasks) and of the bus's
        other subscribers."""
        return [self.pipeline, self.events, self.task, self.sweeper, *self.subscribers.values()]

    def _sweep_every_period(self) -> None:
        """The EventBridge schedule of the sweeper's function: a scheduled event every period."""
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        while not self.stopping.wait(self.settings.sweep_period_s):
            try:
                self.sweeper.call(event, NAMES.function("sweeper"))
            except Exception:  # logged; the next period tries again, as the schedule would
                log.exception("the sweep failed")

    def _warm_workers(self) -> None:
        """One warm worker per stage handler module, started together: the first invocation of each mode
        does not wait for numpy and SciPy to import (later concurrent calls still start cold)."""
        warming = [
            threading.Thread(target=sandbox.warm)
            for sandbox in self.stage_sandboxes()
            if isinstance(sandbox, ProcessSandbox)
        ]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join()

    def _warm_clients(self) -> None:
        """Create the handlers' boto3 clients once, before threads race to create them."""
        for make in (
            clients.s3,
            clients.sqs,
            clients.dynamodb,
            clients.stepfunctions,
            clients.events,
            clients.secretsmanager,
        ):
            make()


def stage_sandbox(module: str, workers: int, timeout_s: float = 0.0) -> Sandbox | ProcessSandbox:
    """A pool of `workers` worker processes for a stage handler module (calls killed past `timeout_s`),
    or (0) the in-process sandbox."""
    return (
        ProcessSandbox(module, max_workers=workers, timeout_s=timeout_s) if workers > 0 else Sandbox(module)
    )


@contextlib.contextmanager
def running(settings: LocalSettings | None = None) -> Iterator[LocalStack]:
    """``with running() as stack:`` the local stack, stopped on exit."""
    stack = LocalStack(settings)
    try:
        yield stack.start()
    finally:
        stack.stop()
