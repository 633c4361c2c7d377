"""``make redrive``: move every stage's dead-lettered messages back to its queue (then ``resume`` finishes
the invocations they belonged to).

Finds the queues whose name starts with ``--prefix`` and that have a redrive policy, and redrives each
one's DLQ into it (SQS ``StartMessageMoveTask``, or the same moves by hand where the endpoint lacks it).
Against the local stack pass its AWS endpoint (printed by ``make run``); against a deployment, the prefix
of the stack's queues (its stack name) and your usual AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import local  # noqa: F401 - puts harmonic_service on sys.path


def redrive_all(prefix: str) -> dict[str, dict]:
    from harmonic_service.dal import clients
    from harmonic_service.dal.redrive import redrive

    sqs = clients.sqs()
    report: dict[str, dict] = {}
    for url in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get(
            "Attributes", {}
        )
        if "RedrivePolicy" not in attributes:
            continue
        dlq_name = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[-1]
        dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
        report[url.rsplit("/", 1)[-1]] = redrive(dlq_url, url)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__)
    parser.add_argument("--prefix", default=os.environ.get("QUEUE_PREFIX", "harmonic-local"))
    parser.add_argument(
        "--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="the local stack's"
    )
    args = parser.parse_args(argv)
    if args.aws_endpoint:
        os.environ["AWS_ENDPOINT_URL"] = args.aws_endpoint
        for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    report = redrive_all(args.prefix)
    for queue, outcome in report.items():
        print(f"{queue}: {outcome}")
    if not report:
        print(f"no queue with a redrive policy starts with {args.prefix!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
