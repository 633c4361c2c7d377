"""``harmonic``: the command line for Harmonic's API.

    harmonic analyze FILE                      whole chain synchronously, prints the result
    harmonic invoke FILE [--mode M] [--wait [--listen]] [--callback-url URL]
                                              asynchronous; --wait shows each stage as it finishes,
                                              --listen waits for the completion notification instead
    harmonic status ID | resume ID
    harmonic choose [--steps N --parallel yes|no ...]   which architecture fits: ten questions, ranked
    harmonic patterns add NAME FILE --kind template|fingerprint | patterns list | patterns rm ID
    harmonic plot ID --audio FILE -o out.png   waveform, spectrogram with the f0 track, match spans

Endpoint: ``--endpoint`` or ``HARMONIC_ENDPOINT`` (default the local stack, http://127.0.0.1:8765).
IAM deployments are signed with your AWS credentials; API-key deployments take ``--api-key`` or
``HARMONIC_API_KEY``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harmonic_client.choose import QUESTIONS, ask, check_answers, load_figures, rank, report
from harmonic_client.client import ApiError, Client


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def _progress(status: dict[str, Any]) -> None:
    stages = "  ".join(
        f"{stage['name']}:{stage['status'].lower()}"
        + (f"({stage['duration_ms']} ms)" if stage.get("duration_ms") is not None else "")
        for stage in status.get("stages", [])
    )
    print(f"[{status.get('status')}] {stages}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harmonic", description="Call Harmonic's API.")
    parser.add_argument("--endpoint", help="API base URL (HARMONIC_ENDPOINT)")
    parser.add_argument("--api-key", help="for auth=api_key deployments (HARMONIC_API_KEY)")
    parser.add_argument(
        "--auth", choices=["none", "iam", "api_key"], help="default: guessed from the endpoint"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    analyze = commands.add_parser("analyze", help="run the whole chain synchronously")
    analyze.add_argument("file")
    analyze.add_argument("--steps", help="comma-separated stages to run")
    analyze.add_argument("--patterns", help="comma-separated pattern ids or names to match (default: all)")

    invoke = commands.add_parser("invoke", help="submit an invocation")
    invoke.add_argument("file")
    invoke.add_argument("--mode", choices=["pipeline", "statemachine", "events"])
    invoke.add_argument("--steps", help="comma-separated stages to run")
    invoke.add_argument("--patterns", help="comma-separated pattern ids or names to match (default: all)")
    invoke.add_argument("--wait", action="store_true", help="wait for the result, showing progress")
    invoke.add_argument("--idempotency-key")
    invoke.add_argument("--callback-url", help="URL the service POSTs the status document to at the end")
    invoke.add_argument(
        "--listen",
        action="store_true",
        help="with --wait: wait for the completion notification on 127.0.0.1 instead of polling "
        "(the local stack; a deployment cannot reach this machine)",
    )

    choose = commands.add_parser(
        "choose",
        help="which architecture fits your process: ten questions, ranked with Harmonic's figures",
        description="Questions not given as flags are asked (or take their defaults without a terminal).",
    )
    for question in QUESTIONS:
        choose.add_argument(
            f"--{question.key}",
            choices=question.choices,
            help=f"{question.text} (default {question.default})",
        )
    choose.add_argument("--json", action="store_true", help="print the ranking as JSON")

    for name in ("status", "resume"):
        command = commands.add_parser(name, help=f"{name} an invocation")
        command.add_argument("invocation_id")

    patterns = commands.add_parser("patterns", help="the pattern registry").add_subparsers(
        dest="action", required=True
    )
    add = patterns.add_parser("add")
    add.add_argument("name")
    add.add_argument("file")
    add.add_argument("--kind", choices=["template", "fingerprint"], default="template")
    patterns.add_parser("list")
    remove = patterns.add_parser("rm")
    remove.add_argument("pattern_id")

    plot = commands.add_parser("plot", help="plot an invocation's clip and result")
    plot.add_argument("invocation_id")
    plot.add_argument("--audio", required=True, help="the WAV file that was sent")
    plot.add_argument("-o", "--output", default="harmonic.png")
    return parser


def run(args: argparse.Namespace, client: Client) -> int:
    """Execute one parsed command; the exit status (0 ok, 1 the invocation FAILED)."""
    steps = args.steps.split(",") if getattr(args, "steps", None) else None
    patterns = getattr(args, "patterns", None)
    options = {"patterns": patterns.split(",")} if patterns else None
    if args.command == "analyze":
        _print(client.analyze(args.file, steps=steps, options=options))
    elif args.command == "invoke":
        final = client.invoke(
            args.file,
            mode=args.mode,
            wait=args.wait,
            steps=steps,
            options=options,
            idempotency_key=args.idempotency_key,
            on_progress=_progress if args.wait else None,
            listen=args.listen,
            **({"callback_url": args.callback_url} if args.callback_url else {}),
        )
        _print(final)
        return 1 if final.get("status") == "FAILED" else 0
    elif args.command == "status":
        _print(client.status(args.invocation_id))
    elif args.command == "resume":
        _print(client.resume(args.invocation_id))
    elif args.command == "patterns":
        if args.action == "add":
            _print(client.add_pattern(args.name, args.file, kind=args.kind))
        elif args.action == "list":
            _print(client.list_patterns())
        else:
            client.remove_pattern(args.pattern_id)
            print(f"removed {args.pattern_id}")
    elif args.command == "plot":
        from harmonic_client.plot import plot_invocation

        status = client.status(args.invocation_id)
        plot_invocation(args.audio, status, args.output)
        print(args.output)
    return 0


def _choose(args: argparse.Namespace) -> int:
    """``harmonic choose``: ask what the flags left open (given a terminal), then print the ranking."""
    given = {question.key: getattr(args, question.key) for question in QUESTIONS}
    if sys.stdin.isatty():
        answers = ask(QUESTIONS, given, input)
    else:
        answers = {key: value for key, value in given.items() if value is not None}
    try:
        figures = load_figures()
        ranking = rank(answers, figures)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print(
            {
                "ranking": [{"architecture": a, "score": s} for a, s in ranking.ordered()],
                "reasons": ranking.reasons,
                "answers": check_answers(answers),
                "figures": figures,
            }
        )
    else:
        print(report(ranking, figures))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "choose":
        return _choose(args)
    client = Client(args.endpoint, api_key=args.api_key, auth=args.auth)
    try:
        return run(args, client)
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
