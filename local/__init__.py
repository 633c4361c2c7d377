"""The local stack: Harmonic on 127.0.0.1 with moto for AWS, the real handlers in-process, no account, no
Docker. Start it with ``make run`` (``python -m local``) or :class:`local.stack.LocalStack` in tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The handlers and the DSP layer are imported as Lambda sees them: `harmonic_service` and `harmonic` on top.
for _path in (ROOT / "functions", ROOT / "layers" / "harmonic" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
