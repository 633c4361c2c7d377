"""`make schemas`: write the JSON Schema of every event's detail to docs/events/, from its pydantic model.

One file per event type and schema version (``<DetailType>.v<N>.json``). The CDK app registers the same
schemas in an EventBridge schema registry (infra/events.py); tests/unit/test_event_schemas.py fails while the
committed files differ from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "events"
sys.path.insert(0, str(ROOT / "functions"))


def documents() -> dict[str, str]:
    """{file name: JSON text} of every event type's schema."""
    from harmonic_service.events import SCHEMA_VERSION, json_schemas

    return {
        f"{name}.v{SCHEMA_VERSION}.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }


def main() -> int:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    wanted = documents()
    for stale in set(path.name for path in OUTPUT.glob("*.json")) - set(wanted):
        (OUTPUT / stale).unlink()
    for name, text in wanted.items():
        (OUTPUT / name).write_text(text)
    print(f"wrote {len(wanted)} schemas to {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
