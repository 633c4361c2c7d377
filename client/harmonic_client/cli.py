"""``harmonic``: the command line for Harmonic's API.

    harmonic configure [--from-outputs cdk-outputs.json] [--endpoint URL --auth iam|api_key|none ...]
    harmonic health
    harmonic analyze FILE [--plot out.png]     whole chain synchronously, prints the result (--plot: and
                                              draws it, as `plot` below)
    harmonic invoke FILE [--mode M] [--wait [--listen]] [--callback-url URL]
                                              asynchronous; --wait shows each stage as it finishes,
                                              --listen waits for the completion notification instead
    harmonic status ID | resume ID
    harmonic history [--limit N] [--next-token T]   your recent invocations, newest first
    harmonic choose [--steps N --parallel yes|no ...]   which architecture fits: ten questions, ranked
    harmonic patterns add NAME [FILE] [--kind template|fingerprint|keyword] [--text [TEXT]] | list | get ID |
        example ID | rm ID | rebuild ID... | rebuild --all
                                              rebuild: computed again from what was registered, by
                                              the service's current code (after an upgrade)
    harmonic plot FILE [--result saved.json] [-o out.png]   the clip with what was measured: waveform,
                                              spectrogram, f0, loudness in/out, matches, summary (no
                                              service: without --result, measured locally)
    harmonic plot ID --audio FILE [-o out.png]   the same for an invocation's result

FILE may be ``-``: the clip is read from standard input.

Global options go anywhere on the line, before or after the command: ``--endpoint``, ``--auth``,
``--api-key``, ``--profile`` (the AWS profile that signs requests to an IAM deployment), ``--region``,
``--output json|table``, ``--config-name``. Each falls back to its environment variable, then to the
configuration file that ``harmonic configure`` writes (harmonic_client/config.py), then to the local stack
(http://127.0.0.1:8765) with JSON output.

Exit codes: 0 done; 1 the invocation FAILED (``invoke --wait``, ``status``); 2 a usage error (bad flags, a
file that cannot be read, an unusable configuration); 3 the API refused the request or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harmonic_client import __version__
from harmonic_client import config as configuration
from harmonic_client.choose import QUESTIONS, ask, check_answers, load_figures, rank, report
from harmonic_client.client import ApiError, Client

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API = 0, 1, 2, 3


class UsageError(Exception):
    """Something on the command line (or a file it names) that cannot be used: exit code 2."""


def _common_options() -> argparse.ArgumentParser:
    """The global options, accepted before and after the command (SUPPRESS: a value given in either place
    is kept, and an absent one falls back to the environment and the configuration file)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("global options (anywhere on the line)")
    group.add_argument("--endpoint", default=argparse.SUPPRESS, help="API base URL (HARMONIC_ENDPOINT)")
    group.add_argument(
        "--auth",
        choices=configuration.AUTH_MODES,
        default=argparse.SUPPRESS,
        help="default: from the endpoint",
    )
    group.add_argument("--api-key", default=argparse.SUPPRESS, help="auth api_key (HARMONIC_API_KEY)")
    group.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile that signs (auth iam)")
    group.add_argument("--region", default=argparse.SUPPRESS, help="AWS region of the API (AWS_REGION)")
    group.add_argument("--output", choices=configuration.OUTPUTS, default=argparse.SUPPRESS)
    group.add_argument("--config-name", default=argparse.SUPPRESS, help="section of the configuration file")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="harmonic",
        description="Call Harmonic's API.",
        epilog="exit codes: 0 ok, 1 the invocation failed, 2 usage, 3 API or network error",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"harmonic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, parents=[common], **kwargs)

    configure = command("configure", "store endpoint, auth, key or profile in the configuration file")
    configure.add_argument("--from-outputs", type=Path, help="cdk-outputs.json of `make deploy`")
    configure.add_argument("--stack", help="the stack in the outputs file (when it holds several)")

    command("health", "liveness and the deployed modes")

    analyze = command("analyze", "run the whole chain synchronously")
    analyze.add_argument("file", help="the clip, or - for standard input")
    analyze.add_argument("--steps", help="comma-separated stages to run")
    analyze.add_argument("--patterns", help="comma-separated pattern ids or names to match (default: all)")
    analyze.add_argument(
        "--near-duplicates",
        action="store_true",
        help="fingerprints also match other renditions of a recording (a re-orchestration, a cover)",
    )
    analyze.add_argument("--plot", metavar="PNG", help="also draw the clip and its result to this image")

    invoke = command("invoke", "submit an invocation")
    invoke.add_argument("file", help="the clip, or - for standard input")
    invoke.add_argument("--mode", choices=["pipeline", "statemachine", "events"])
    invoke.add_argument("--steps", help="comma-separated stages to run")
    invoke.add_argument("--patterns", help="comma-separated pattern ids or names to match (default: all)")
    invoke.add_argument(
        "--near-duplicates",
        action="store_true",
        help="fingerprints also match other renditions of a recording (a re-orchestration, a cover)",
    )
    invoke.add_argument("--wait", action="store_true", help="wait for the result, showing progress")
    invoke.add_argument("--idempotency-key")
    invoke.add_argument("--callback-url", help="URL the service POSTs the status document to at the end")
    invoke.add_argument(
        "--listen",
        action="store_true",
        help="with --wait: wait for the completion notification on 127.0.0.1 instead of polling "
        "(the local stack; a deployment cannot reach this machine)",
    )

    choose = command(
        "choose",
        "which architecture fits your process: ten questions, ranked with Harmonic's figures",
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
        command(name, f"{name} an invocation").add_argument("invocation_id")
    history = command("history", "your recent invocations, newest first")
    history.add_argument("--limit", type=int, help="how many (1-100; the API's default is 20)")
    history.add_argument("--next-token", help="the next_token of the previous page")

    patterns = command("patterns", "the pattern registry").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = patterns.add_parser("add", help="register a pattern", parents=[common])
    add.add_argument("name")
    add.add_argument("file", nargs="?", help="the example clip, or - for standard input")
    add.add_argument(
        "--kind",
        choices=["template", "fingerprint", "keyword"],
        help="template (the default with a clip), fingerprint, or keyword (the default with --text)",
    )
    add.add_argument(
        "--text",
        nargs="?",
        const="",
        help="a keyword by its spelling (default: NAME), searched in any voice; with FILE as well, by both",
    )
    patterns.add_parser("list", help="the patterns you see (yours and the shared ones)", parents=[common])
    patterns.add_parser("get", help="one pattern", parents=[common]).add_argument("pattern_id")
    patterns.add_parser(
        "example", help="a URL of the example a pattern was registered from", parents=[common]
    ).add_argument("pattern_id")
    patterns.add_parser("rm", help="delete one of your patterns", parents=[common]).add_argument("pattern_id")
    rebuild = patterns.add_parser(
        "rebuild",
        help="compute patterns again from what was registered, with the service's current code",
        description="After an upgrade: a pattern stored by an earlier version gets the current format (a "
        "template's speech embeddings), under the same id. --all: every one of your patterns (shared ones "
        "are their publishers'); those with nothing to compute them from are listed as skipped.",
        parents=[common],
    )
    rebuild.add_argument("pattern_ids", nargs="*", metavar="ID")
    rebuild.add_argument("--all", action="store_true", help="every one of your patterns")

    plot = command(
        "plot",
        "draw a clip with what Harmonic measured: waveform, spectrogram, f0, loudness, matches",
        description="Three forms: `plot ID --audio FILE` (an invocation's result, over the clip that was "
        "sent); `plot FILE --result saved.json` (what `harmonic analyze` printed); `plot FILE` (no "
        "service: everything measured on this machine).",
    )
    plot.add_argument(
        "target",
        metavar="FILE_OR_ID",
        help="the clip (or - for standard input); with --audio, the invocation id",
    )
    plot.add_argument(
        "--audio", help="with an invocation id: the clip that was sent, or - for standard input"
    )
    plot.add_argument("--result", help="a result saved from `harmonic analyze` (or a status document), JSON")
    plot.add_argument("-o", "--png", default="harmonic.png", help="the image to write")
    return parser


# --- output ------------------------------------------------------------------------------------------------


def render(value: Any, output: str) -> str:
    """`value` as JSON, or as a table for people: lists of records as columns, a status document as its
    stages, other records as aligned ``key  value`` lines."""
    if output != "table":
        return json.dumps(value, indent=2, sort_keys=False)
    if isinstance(value, dict) and isinstance(value.get("invocations"), list):
        columns = ("invocation_id", "mode", "status", "created_at", "finished_at")
        return _columns(value["invocations"], columns)
    if isinstance(value, dict) and isinstance(value.get("patterns"), list):
        return _columns(
            value["patterns"], ("pattern_id", "name", "kind", "text", "shared", "duration_s", "created_at")
        )
    if isinstance(value, dict) and isinstance(value.get("rebuilt"), list):
        body = "rebuilt:\n" + _columns(
            value["rebuilt"], ("pattern_id", "name", "kind", "artifact_bytes", "rebuilt_at")
        )
        if value.get("skipped"):
            body += "\n\nskipped:\n" + _columns(value["skipped"], ("pattern_id", "name", "reason"))
        return body
    if isinstance(value, list):
        return _columns(value, tuple(value[0]) if value and isinstance(value[0], dict) else ("value",))
    if isinstance(value, dict) and isinstance(value.get("stages"), list):
        head = {k: v for k, v in value.items() if k not in ("stages", "result")}
        stages = _columns(value["stages"], ("name", "status", "duration_ms", "attempts", "reason"))
        body = _pairs(head) + "\n\n" + stages
        if value.get("result") is not None:
            body += "\n\nresult: " + json.dumps(value["result"], sort_keys=False)
        return body
    if isinstance(value, dict):
        return _pairs(value)
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=False)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _columns(rows: list[Any], keys: tuple[str, ...]) -> str:
    records = [row if isinstance(row, dict) else {"value": row} for row in rows]
    keys = tuple(k for k in keys if any(k in record for record in records)) or keys
    table = [list(keys)] + [[_cell(record.get(k)) for k in keys] for record in records]
    widths = [max(len(row[i]) for row in table) for i in range(len(keys))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    return "\n".join(lines) if records else "(none)"


def _pairs(record: dict[str, Any]) -> str:
    width = max((len(str(k)) for k in record), default=0)
    return "\n".join(f"{str(k).ljust(width)}  {_cell(v)}" for k, v in record.items())


def _progress(status: dict[str, Any]) -> None:
    stages = "  ".join(
        f"{stage['name']}:{stage['status'].lower()}"
        + (f"({stage['duration_ms']} ms)" if stage.get("duration_ms") is not None else "")
        for stage in status.get("stages", [])
    )
    print(f"[{status.get('status')}] {stages}", file=sys.stderr, flush=True)


# --- commands ----------------------------------------------------------------------------------------------


def _audio(argument: str) -> str | bytes:
    """A clip argument: a path that exists, or ``-`` for standard input (read whole)."""
    if argument == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise UsageError("standard input is empty: pipe a clip into `-`")
        return data
    if not Path(argument).is_file():
        raise UsageError(f"no such file: {argument}")
    return argument


def run(args: argparse.Namespace, client: Client, output: str = "json") -> int:
    """Execute one parsed command; its exit code (see the module docstring)."""

    def show(value: Any) -> None:
        print(render(value, output))

    steps = args.steps.split(",") if getattr(args, "steps", None) else None
    patterns = getattr(args, "patterns", None)
    chosen: dict[str, Any] = {"patterns": patterns.split(",")} if patterns else {}
    if getattr(args, "near_duplicates", False):
        chosen["near_duplicates"] = True
    options = chosen or None
    if args.command == "health":
        show(client.health())
    elif args.command == "analyze":
        audio = _audio(args.file)
        result = client.analyze(audio, steps=steps, options=options)
        show(result)
        if args.plot:
            _plot(audio, result, args.plot, f"{_clip_name(args.file)}  analyze", args.file)
            print(f"wrote {args.plot}", file=sys.stderr)
    elif args.command == "invoke":
        final = client.invoke(
            _audio(args.file),
            mode=args.mode,
            wait=args.wait,
            steps=steps,
            options=options,
            idempotency_key=args.idempotency_key,
            on_progress=_progress if args.wait else None,
            listen=args.listen,
            **({"callback_url": args.callback_url} if args.callback_url else {}),
        )
        show(final)
        return EXIT_FAILED if final.get("status") == "FAILED" else EXIT_OK
    elif args.command == "status":
        status = client.status(args.invocation_id)
        show(status)
        return EXIT_FAILED if status.get("status") == "FAILED" else EXIT_OK
    elif args.command == "history":
        show(client.history(limit=args.limit, next_token=args.next_token))
    elif args.command == "resume":
        show(client.resume(args.invocation_id))
    elif args.command == "patterns":
        if args.action == "add":
            if args.file is None and args.text is None:
                raise UsageError("patterns add: give FILE, --text, or both")
            text = (args.text or args.name) if args.text is not None else None
            audio = _audio(args.file) if args.file is not None else None
            show(client.add_pattern(args.name, audio, kind=args.kind, text=text))
        elif args.action == "list":
            show({"patterns": client.list_patterns()})
        elif args.action == "get":
            show(client.get_pattern(args.pattern_id))
        elif args.action == "example":
            show(client.pattern_example(args.pattern_id))
        elif args.action == "rebuild":
            return _rebuild(client, args, show)
        else:
            client.remove_pattern(args.pattern_id)
            print(f"removed {args.pattern_id}")
    elif args.command == "plot":
        if args.audio is not None:  # plot ID --audio FILE: an invocation's result over the clip it was sent
            if args.result is not None:
                raise UsageError(
                    "plot: give --audio (with an invocation id) or --result (with a clip), not both"
                )
            audio = _audio(args.audio)
            status = client.status(args.target)
            title = f"{_clip_name(args.audio)}  invocation {args.target} {status.get('status', '')}"
            result = status.get("result")
            if result is None:
                title += " (no result: measured locally)"
            _plot(audio, result, args.png, title, args.audio)
        else:
            return _plot_without_service(args)
        print(args.png)
    return EXIT_OK


def _rebuild(client: Client, args: argparse.Namespace, show: Any) -> int:
    """``patterns rebuild ID... | --all``. Named ids: the first refusal is an error (exit 3). --all: every
    pattern of the caller's, the refused ones (nothing to compute them from, an example no longer
    accepted) reported as skipped with the API's reason."""
    if bool(args.pattern_ids) == bool(args.all):
        raise UsageError("patterns rebuild: give pattern ids or --all (not both)")
    if not args.all:
        show({"rebuilt": [client.rebuild_pattern(pattern_id) for pattern_id in args.pattern_ids]})
        return EXIT_OK
    rebuilt, skipped = [], []
    for pattern in client.list_patterns():
        if pattern.get("shared"):
            continue  # a publisher's: read-only for this caller
        try:
            rebuilt.append(client.rebuild_pattern(pattern["pattern_id"]))
        except ApiError as error:
            if error.status != 409:
                raise
            skipped.append(
                {
                    "pattern_id": pattern["pattern_id"],
                    "name": pattern.get("name"),
                    "reason": f"{error.code}: {error.message}",
                }
            )
    show({"rebuilt": rebuilt, "skipped": skipped})
    return EXIT_OK


def _plot_without_service(args: argparse.Namespace) -> int:
    """``plot FILE [--result saved.json]``: no service, so no configuration either."""
    if args.target != "-" and not Path(args.target).is_file():
        raise UsageError(
            f"no such file: {args.target} (to plot an invocation, give the clip: "
            f"plot {args.target} --audio FILE)"
        )
    audio = _audio(args.target)
    result, how = _saved_result(args.result) if args.result else (None, "measured locally")
    _plot(audio, result, args.png, f"{_clip_name(args.target)}  {how}", args.target)
    print(args.png)
    return EXIT_OK


def _clip_name(argument: str) -> str:
    return "standard input" if argument == "-" else Path(argument).name


def _saved_result(path: str) -> tuple[dict[str, Any], str]:
    """The result in a JSON file `harmonic analyze` printed, or in a status document (its ``result``)."""
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"cannot read the result {path}: {error}") from None
    if isinstance(saved, dict) and "stages" in saved and "invocation_id" in saved:
        if not isinstance(saved.get("result"), dict):
            raise UsageError(
                f"{path}: invocation {saved['invocation_id']} has no result ({saved.get('status')})"
            )
        return saved["result"], f"invocation {saved['invocation_id']} (saved)"
    if not isinstance(saved, dict) or not {"audio", "loudness", "features"} & set(saved):
        raise UsageError(f"{path} is not a Harmonic result (the JSON `harmonic analyze` prints)")
    return saved, f"result {Path(path).name}"


def _plot(audio: str | bytes, result: dict[str, Any] | None, png: str, title: str, named: str) -> None:
    """Draw `audio` with `result` (None: measured locally) to `png`; a clip that cannot be decoded is a
    usage error of one line (`named`: how the command line named the clip)."""
    try:
        from harmonic_client.plot import plot_clip

        plot_clip(audio, png, result, title=title)
    except ImportError as error:  # numpy, scipy or matplotlib missing
        raise UsageError(
            f"plotting needs the [plot] extra (pip install 'harmonic-client[plot]'): {error}"
        ) from None
    except ValueError as error:  # a clip the plot cannot decode (harmonic.InvalidAudio is one)
        reason = " ".join(str(error).split())
        raise UsageError(f"cannot plot {'standard input' if named == '-' else named}: {reason}") from None


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
        return EXIT_USAGE
    if args.json:
        print(
            render(
                {
                    "ranking": [{"architecture": a, "score": s} for a, s in ranking.ordered()],
                    "reasons": ranking.reasons,
                    "answers": check_answers(answers),
                    "figures": figures,
                },
                "json",
            )
        )
    else:
        print(report(ranking, figures))
    return EXIT_OK


def _configure(args: argparse.Namespace, flags: dict[str, str | None]) -> int:
    """``harmonic configure``: write the given settings (and those of a deploy's outputs) to the file."""
    settings: dict[str, str | None] = {key: value for key, value in flags.items() if value}
    if args.from_outputs is not None:
        found = configuration.from_outputs(args.from_outputs, args.stack)
        key_id = found.pop("api_key_id", None)
        settings = {**found, **settings}  # flags win over the outputs
        if settings.get("auth") == "api_key" and not settings.get("api_key") and key_id:
            settings["api_key"] = _fetch_api_key(key_id, settings.get("profile"), settings.get("region"))
    if not settings:
        raise UsageError("nothing to configure: give --from-outputs or settings such as --endpoint")
    name = configuration.config_name(getattr(args, "config_name", None))
    path = configuration.write(name, settings)
    shown = {k: ("****" + v[-4:] if k == "api_key" and v else v) for k, v in configuration.read(name).items()}
    print(f"wrote [{name}] to {path}")
    print(render(shown, "table"))
    return EXIT_OK


def _fetch_api_key(key_id: str, profile: str | None, region: str | None) -> str:
    """The value of API key `key_id` (``apigateway:GET`` on it), with botocore (the ``[iam]`` extra)."""
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise UsageError(
            f"the stack uses API key {key_id}: pass --api-key, or install harmonic-client[iam] so that "
            "configure can read it (aws apigateway get-api-key --include-value --api-key <id>)"
        ) from None
    try:
        session = botocore.session.Session(profile=profile)
        client = session.create_client("apigateway", region_name=region)
        return str(client.get_api_key(apiKey=key_id, includeValue=True)["value"])
    except (BotoCoreError, ClientError) as error:
        raise ApiError(0, "api_key", f"could not read API key {key_id}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help, --version (0) or a usage error (2)
        return int(exit_.code or 0)
    flags = {
        "endpoint": getattr(args, "endpoint", None),
        "auth": getattr(args, "auth", None),
        "api_key": getattr(args, "api_key", None),
        "profile": getattr(args, "profile", None),
        "region": getattr(args, "region", None),
        "output": getattr(args, "output", None),
    }
    try:
        if args.command == "choose":
            return _choose(args)
        if args.command == "configure":
            return _configure(args, flags)
        if args.command == "plot" and args.audio is None:
            return _plot_without_service(args)
        settings = configuration.resolve(flags, getattr(args, "config_name", None))
        client = Client(
            settings.get("endpoint"),
            api_key=settings.get("api_key"),
            auth=settings.get("auth"),
            region=settings.get("region"),
            profile=settings.get("profile"),
        )
        return run(args, client, settings.get("output") or "json")
    except (UsageError, configuration.ConfigError) as error:
        print(f"harmonic: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as error:
        print(f"harmonic: error: {error}", file=sys.stderr)
        return EXIT_API
    except (OSError, TimeoutError) as error:
        print(f"harmonic: error: {error}", file=sys.stderr)
        return EXIT_API


if __name__ == "__main__":
    sys.exit(main())
