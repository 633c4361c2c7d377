"""One Lambda execution environment of the local stack: ``python -m local.worker <handler module>``.

Started by :class:`local.sandboxes.ProcessSandbox`, it imports the handler module once (its cold start), then
answers calls one at a time, as a Lambda execution environment does: each request is one JSON line on stdin
(``{"event", "function_name", "stage", "request_id"}``), each reply one JSON line on the process's original
stdout (``{"result": ...}`` or ``{"error_type", "error_message"}``). Everything the handler prints, its JSON
log lines among them, goes to stderr, which the stack shares: the reply channel carries nothing else.

It ends when stdin closes (the stack stopped or died), so no worker outlives its stack for long.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import warnings
from typing import Any, TextIO

import local  # noqa: F401 - puts the handlers and the layer on sys.path


def serve(module: str, requests: TextIO, replies: TextIO) -> None:
    """Import `module`'s ``handler``, say ready, then answer every request line until `requests` ends."""
    from harmonic_service.config import stage_override
    from local.harness import FakeLambdaContext

    # As the stack does in its own process: metrics are disabled locally, so Powertools keeps the
    # per-invocation dimension (and has nothing to publish) and warns each time.
    warnings.filterwarnings("ignore", message="Dimension 'stage' has already been added")
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    handler = importlib.import_module(module).handler
    _reply(replies, {"ready": True, "pid": os.getpid()})
    for line in requests:
        call = json.loads(line)
        context = FakeLambdaContext(function_name=call["function_name"])
        if call.get("request_id"):
            context.aws_request_id = call["request_id"]
        token = stage_override.set(call.get("stage"))
        try:
            reply: dict[str, Any] = {"result": handler(call["event"], context)}
        except Exception as error:  # a function error: Lambda reports its type and message
            traceback.print_exc(file=sys.stderr)
            reply = {"error_type": type(error).__name__, "error_message": str(error)}
        finally:
            stage_override.reset(token)
        _reply(replies, reply)


def _reply(replies: TextIO, message: dict[str, Any]) -> None:
    replies.write(json.dumps(message, default=str) + "\n")
    replies.flush()


def main(argv: list[str]) -> int:
    os.environ["HARMONIC_WORKER"] = "1"  # faults.maybe_kill may kill this process, and only this one
    if len(argv) != 1:
        print("usage: python -m local.worker <handler module>", file=sys.stderr)
        return 2
    # The replies keep the original stdout; the handler's own output (fd 1) joins stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(argv[0], sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
