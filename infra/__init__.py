"""The CDK app of Harmonic: a construct per concern (storage, layer, pipeline, api, monitoring) and the stack.

The stage table lives with the Lambda code (`functions/harmonic_service/stages/`) so that handlers,
infra and tests read the same table; `functions/` is put on the import path here so `import infra` works from
`app.py`, `python -m infra.layer_build` and pytest alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
LAYERS_DIR = REPO_ROOT / "layers"

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(FUNCTIONS_DIR))
