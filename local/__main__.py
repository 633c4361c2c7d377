"""``python -m local`` (``make run``): serve Harmonic on 127.0.0.1 until Ctrl-C.

Settings: ``--port``/``PORT`` (default 8765) for the API, ``--moto-port``/``MOTO_PORT`` (default: PORT + 1)
for the local AWS endpoint, ``--visibility-timeout``/``LOCAL_VISIBILITY_TIMEOUT_S`` (default 5 s),
``--sandbox-workers``/``LOCAL_SANDBOX_WORKERS`` (default 3 worker processes per stage handler module; 0 runs
every handler in this process, one call at a time), ``--sweep-period``/``LOCAL_SWEEP_PERIOD_S`` (default 60 s:
the watchdog that fails or re-dispatches invocations past their deadline; 0 turns it off),
``--function-timeout``/``LOCAL_FUNCTION_TIMEOUT_S`` (default 0: none; else the stage functions' timeout,
enforced on the workers, and the deadlines follow it), ``--pollers``/``LOCAL_POLLERS_PER_QUEUE`` (default 1:
pollers per stage queue, at most the stage's maxConcurrency).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

import local  # noqa: F401 - puts the handlers and the layer on sys.path
from local.stack import LocalSettings, LocalStack

EXAMPLES = """\
Harmonic is running at {url}   (local AWS: {moto})

Try:
  curl -s {url}/v1/health
  printf '{{"audio": "%s"}}' "$(base64 -w0 tests/data/speech/en_us_m.wav)" > /tmp/req.json
  curl -s -X POST {url}/v1/analyze -H 'Content-Type: application/json' -d @/tmp/req.json
  curl -s -X POST {url}/v1/invocations -H 'Content-Type: application/json' -d @/tmp/req.json
  curl -s {url}/v1/invocations/<invocation_id>

Ctrl-C stops it.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8765")))
    parser.add_argument("--moto-port", type=int, default=None)
    parser.add_argument(
        "--visibility-timeout", type=int, default=int(os.environ.get("LOCAL_VISIBILITY_TIMEOUT_S", "5"))
    )
    parser.add_argument(
        "--sandbox-workers", type=int, default=int(os.environ.get("LOCAL_SANDBOX_WORKERS", "3"))
    )
    parser.add_argument(
        "--sweep-period", type=float, default=float(os.environ.get("LOCAL_SWEEP_PERIOD_S", "60"))
    )
    parser.add_argument(
        "--function-timeout", type=int, default=int(os.environ.get("LOCAL_FUNCTION_TIMEOUT_S", "0"))
    )
    parser.add_argument("--pollers", type=int, default=int(os.environ.get("LOCAL_POLLERS_PER_QUEUE", "1")))
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        default=[key for key in os.environ.get("LOCAL_API_KEYS", "").split(",") if key],
        help="require this API key in X-Api-Key, as a stack deployed with auth=api_key does (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="only warnings from the handlers")
    args = parser.parse_args(argv)
    moto_port = (
        args.moto_port if args.moto_port is not None else int(os.environ.get("MOTO_PORT", args.port + 1))
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING" if args.quiet else "INFO")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stack = LocalStack(
        LocalSettings(
            port=args.port,
            moto_port=moto_port,
            visibility_timeout_s=args.visibility_timeout,
            sandbox_workers=args.sandbox_workers,
            sweep_period_s=args.sweep_period,
            function_timeout_s=args.function_timeout,
            pollers_per_queue=args.pollers,
            api_keys=tuple(args.api_keys),
        )
    )
    try:
        stack.start()
    except OSError as error:
        print(f"cannot start the local stack: {error} (is the port taken? set PORT=...)", file=sys.stderr)
        stack.stop()
        return 1
    print(EXAMPLES.format(url=stack.base_url, moto=stack.moto_url), flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    print("stopping…", file=sys.stderr, flush=True)
    stack.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
