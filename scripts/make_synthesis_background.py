"""Write harmonic/synthesis_background.npz: the background speech keywords' synthesized examples are
calibrated against (harmonic.synthesis.background: BACKGROUND_TEXTS said by BACKGROUND_VOICES), computed
once here so that a cold process reads it instead of synthesizing and embedding 48 sentences.

Run it after changing BACKGROUND_TEXTS, BACKGROUND_VOICES or the speech embedding; until then the service
synthesizes the background afresh (harmonic.synthesis.stored_background refuses a file made for other texts
or voices), and a unit test fails while the file and a fresh synthesis differ.

Usage: .venv/bin/python scripts/make_synthesis_background.py (needs the espeakng-loader wheel).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))

from harmonic import synthesis  # noqa: E402


def main() -> int:
    background = synthesis.synthesize_background()
    synthesis.save_background(synthesis.BACKGROUND_FILE, background)
    rows = sum(embeddings.shape[0] for _, embeddings in background)
    size_kb = synthesis.BACKGROUND_FILE.stat().st_size / 1024
    where = synthesis.BACKGROUND_FILE.relative_to(ROOT)
    print(f"wrote {where}: {len(background)} sentences, {rows} rows, {size_kb:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
