"""A handler for tests/unit/test_sandboxes.py: what a worker process runs, and ways to make it fail."""

from __future__ import annotations

import os
import time
from typing import Any

from harmonic_service.config import current_stage


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("die"):
        os._exit(9)  # a killed execution environment: no reply, no cleanup
    time.sleep(float(event.get("sleep_s", 0)))
    return {
        "pid": os.getpid(),
        "stage": current_stage(),
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "echo": event.get("echo"),
    }
