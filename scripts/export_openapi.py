"""Write docs/openapi.json from the API handler's routes and pydantic models (`make openapi`).

The document is generated from the code, never edited by hand; tests/unit/test_openapi.py fails when the
committed file and the code disagree.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi.json"
for path in (ROOT / "functions", ROOT / "layers" / "harmonic" / "python"):
    sys.path.insert(0, str(path))


def generate() -> str:
    """The OpenAPI document as deterministic JSON text."""
    from harmonic_service.handlers.api import app

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    schema = app.get_openapi_json_schema(
        title="Harmonic",
        version=version,
        description=(
            "Send a short audio clip; a chain of harmonic steps (ingest, denoise, normalize, features, "
            'match, respond) runs; get structured results. Errors are {"error": {"code", "message"}}.'
        ),
    )
    return json.dumps(json.loads(schema), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.write_text(generate())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
