"""``make demo``: register a keyword and a fingerprint, send clips through every mode, print the results and
the stage timeline. Uses the stack at ``HARMONIC_ENDPOINT`` (or ``--endpoint``) when it answers, otherwise
starts a local stack for the demo and stops it afterwards."""

from __future__ import annotations

import argparse
import os
import sys
import time

import local
from local.stack import LocalSettings, LocalStack

sys.path.insert(0, str(local.ROOT / "client"))
from harmonic_client import ApiError, Client

DATA = local.ROOT / "tests" / "data"


def _timeline(status: dict) -> str:
    parts = []
    for stage in status["stages"]:
        took = (
            f"{stage['duration_ms']} ms" if stage.get("duration_ms") is not None else stage["status"].lower()
        )
        parts.append(f"{stage['name']} {took}")
    return " → ".join(parts)


def _matches(result: dict) -> str:
    found = [
        f"{m['name']} ({m['kind']}, score {m['score']:.2f}, {m['start_s']:.2f}-{m['end_s']:.2f} s)"
        for m in result["matches"]
    ]
    return ", ".join(found) or "none"


def run_demo(client: Client) -> None:
    print(f"Harmonic at {client.endpoint}: {client.health()}")
    # A keyword by its spelling: no recording, so no voice to overfit; the query is another engine's voice.
    created = [client.add_pattern("weather", text="weather")]
    print(f"registered keyword 'weather' by its spelling: {created[0]['pattern_id'][:8]}")
    song = client.add_pattern("espeak fox", DATA / "speech" / "en_us_m.wav", kind="fingerprint")
    created.append(song)
    print(f"registered recording 'espeak fox' as a fingerprint: {song['pattern_id'][:8]}")
    query = DATA / "keywords" / "sentence_weather_flite_slt.wav"  # flite slt: "... the weather ... tomorrow"
    try:
        started = time.perf_counter()
        result = client.analyze(query)
        took = (time.perf_counter() - started) * 1000
        print(f"\nsync /v1/analyze ({took:.0f} ms): matches {_matches(result)}")
        loudness = result["loudness"]
        print(
            f"  loudness {loudness['input_lufs']:.1f} → {loudness['output_lufs']:.1f} LUFS, "
            f"median f0 {result['features']['f0_hz']['median']} Hz"
        )
        for mode in ("pipeline", "statemachine", "events"):
            started = time.perf_counter()
            final = client.invoke(query, mode=mode, wait=True)
            took = (time.perf_counter() - started) * 1000
            print(
                f"\n{mode} ({took:.0f} ms end to end): {final['status']}, matches {_matches(final['result'])}"
            )
            print(f"  {_timeline(final)}")
        final = client.invoke(DATA / "speech" / "en_us_m.wav", mode="pipeline", wait=True)
        print(f"\nthe registered recording itself: matches {_matches(final['result'])}")
    finally:
        for pattern in created:
            client.remove_pattern(pattern["pattern_id"])
        print("\nremoved the demo's patterns")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--endpoint", default=os.environ.get("HARMONIC_ENDPOINT", "http://127.0.0.1:8765"))
    args = parser.parse_args(argv)
    client = Client(args.endpoint, auth="none", max_retries=0, timeout_s=5)
    try:
        client.health()
    except ApiError:
        print(f"no stack at {args.endpoint}: starting a local one for the demo", file=sys.stderr)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        with LocalStack(LocalSettings(port=0)) as stack:
            run_demo(Client(stack.base_url, auth="none"))
        return 0
    run_demo(Client(args.endpoint, auth="none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
