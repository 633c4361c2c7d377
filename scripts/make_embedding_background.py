"""Write harmonic/speech_embedding_background.npy: the mean speech embedding of the eval's tuned enrolment.

Why: an example's embeddings are compared with a query's by cosine similarity, and every window of speech
(and of noise) is fairly similar to every other: the embeddings share a large common direction. Scoring an
example's fit *minus half its fit to average speech* (harmonic.speech_embedding.best_scores) is a
background-model normalization, the same idea as a likelihood ratio against a universal background model:
credit for sounding like the example, not for sounding like speech. Measured in docs/matching.md ("Speech
embeddings", 2026-12-01).

The average is taken over every embedding window of the 36 enrolment examples of the **tuned** split of
``make eval`` (12 keywords, each by espeak-ng en-us, flite rms and festival ked; trimmed to their speech as a
template trims them), the split constants are chosen on; the held-out and human splits never enter it.

Usage: .venv/bin/python scripts/make_embedding_background.py (generates build/xspeaker first if needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))

import eval_keywords  # noqa: E402

from harmonic.templates import example_embedding  # noqa: E402

TARGET = ROOT / "layers" / "harmonic" / "python" / "harmonic" / "speech_embedding_background.npy"


def background() -> np.ndarray:
    """The mean of every embedding window of the tuned split's enrolment examples, float32, shape (96,)."""
    (material,) = eval_keywords.split_material(eval_keywords.ensure_data(), "tuned")
    windows = [
        example_embedding(y, eval_keywords.SR) for examples in material["keywords"].values() for y in examples
    ]
    stacked = np.concatenate([w for w in windows if w.shape[0]])
    print(f"{len(windows)} examples, {stacked.shape[0]} windows", flush=True)
    return stacked.mean(axis=0).astype(np.float32)


def main() -> int:
    mean = background()
    np.save(TARGET, mean, allow_pickle=False)
    print(f"wrote {TARGET.relative_to(ROOT)}: norm {np.linalg.norm(mean):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
