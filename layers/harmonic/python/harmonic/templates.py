"""Keyword spotting by subsequence dynamic time warping over normalized MFCCs.

A template is the feature sequence of one spoken example of a keyword: MFCCs 1..8 (c0, the level, is
dropped; higher ones carry more of the speaker than of the word) and their deltas, computed with
:func:`harmonic.mfcc` at 16 kHz (25 ms frames every 10 ms), trimmed to the speech (frames within 35 dB of
the loudest) and normalized per coefficient over those frames (cepstral mean and variance normalization),
which removes the channel and most of the speaker.

Matching finds the keyword *inside* a longer query with subsequence DTW (Müller, "Fundamentals of Music
Processing", 2015, §7.2): free start and end in the query, cosine distance between frames, and the step
set {(1, 1), (1, 2), (2, 1)} — the keyword may be spoken between half and twice the template's rate. Each
template frame contributes exactly once, so the path cost divided by the template length is the mean
frame distance. The score compares that cost with the cost of aligning the template anywhere in the query
(its median over end positions):  ``score = clip(1 − best / median, 0, 1)``; a keyword that is present
stands out from the rest of the utterance, whatever the voice or the noise level. Rows of the DTW are
vectorized over the query, so a template of N frames against a query of M frames costs N numpy passes
of length M.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from harmonic.errors import InvalidAudio
from harmonic.matching import Match
from harmonic.serialization import pack, unpack
from harmonic.spectral import mfcc, stft_power

SR = 16_000
N_FFT = 400
HOP = 160
FRAME_S = HOP / SR
SPEECH_RANGE_DB = 35.0
MIN_TEMPLATE_FRAMES = 12
N_CEPSTRA = 8  # c1..c8: the spectral envelope; higher ones carry more speaker than word
# Chosen on `make eval` (bench/eval_matching.py): rare false accepts on utterances without a keyword.
DEFAULT_THRESHOLD = 0.5
_KIND = b"HTPL"


@dataclass(frozen=True, eq=False)
class Template:
    """Normalized feature frames ``(frames, dims)`` of one keyword example, unit-length rows."""

    features: np.ndarray
    duration_s: float = field(default=0.0)

    @property
    def frames(self) -> int:
        return int(self.features.shape[0])

    def to_bytes(self) -> bytes:
        return pack(_KIND, {"duration_s": self.duration_s}, {"features": self.features.astype(np.float32)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        meta, arrays = unpack(data, _KIND)
        features = arrays["features"]
        if features.ndim != 2 or features.shape[0] < 1:
            raise ValueError("corrupt template: features must be (frames, dims)")
        return cls(features=features, duration_s=float(meta.get("duration_s", 0.0)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and np.array_equal(self.features, other.features)

    __hash__ = None  # type: ignore[assignment]


def _deltas(features: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over ±width frames (the HTK formula), edges repeated. features: (dims, frames)."""
    padded = np.pad(features, ((0, 0), (width, width)), mode="edge")
    frames = features.shape[1]
    weights = np.arange(1, width + 1)
    numerator = sum(
        w * (padded[:, width + w : width + w + frames] - padded[:, width - w : width - w + frames])
        for w in weights
    )
    return numerator / (2 * np.sum(weights**2))


def _frames(samples: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature frames ``(frames, 24)`` (not yet normalized) and the speech-frame mask."""
    y = np.asarray(samples, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got {y.shape}")
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)
    if y.size < N_FFT:
        raise InvalidAudio(f"the clip is {y.size / SR:.3f} s long; too short to match")
    power = stft_power(y, n_fft=N_FFT, hop_length=HOP)
    cepstra = mfcc(None, SR, n_mfcc=N_CEPSTRA + 1, n_mels=40, S=power)[1:]
    features = np.vstack([cepstra, _deltas(cepstra)]).T
    energy_db = 10.0 * np.log10(power.sum(axis=0) + 1e-12)
    speech = energy_db > max(energy_db.max() - SPEECH_RANGE_DB, -100.0)
    return features, speech


def _normalize(features: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """CMVN over the speech frames, then unit-length rows (so a dot product is a cosine similarity)."""
    reference = features[speech] if speech.sum() >= 2 else features
    normalized = (features - reference.mean(axis=0)) / (reference.std(axis=0) + 1e-8)
    return normalized / (np.linalg.norm(normalized, axis=1, keepdims=True) + 1e-12)


def make_template(samples: np.ndarray, sr: int) -> Template:
    """A template from one spoken example of a keyword (silence around it is trimmed)."""
    features, speech = _frames(samples, sr)
    if not speech.any() or np.ptp(features) == 0:
        raise InvalidAudio("the keyword example is silent")
    first, last = np.flatnonzero(speech)[[0, -1]]
    if last - first + 1 < MIN_TEMPLATE_FRAMES:
        raise InvalidAudio(
            f"the keyword example has {last - first + 1} frames of speech; at least {MIN_TEMPLATE_FRAMES}"
        )
    normalized = _normalize(features, speech)[first : last + 1]
    return Template(features=normalized.astype(np.float32), duration_s=(last - first + 1) * FRAME_S)


def subsequence_dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean path cost and start column of the best path ending at each query frame.

    ``cost`` is ``(template frames N, query frames M)``. Steps (1,1), (1,2), (2,1); the (2,1) step charges
    both template rows, so every row is charged exactly once and ``D[N-1] / N`` is a mean. Returns
    ``(mean_cost[M], start[M])``; ends no path can reach have cost ``inf``.
    """
    n, m = cost.shape
    inf = np.inf
    pad = 2  # columns of padding on the left so j-1 and j-2 are plain slices
    prev2 = np.full(m + pad, inf)
    start2 = np.zeros(m + pad, dtype=np.int64)
    prev = np.full(m + pad, inf)
    prev[pad:] = cost[0]
    start = np.zeros(m + pad, dtype=np.int64)
    start[pad:] = np.arange(m)
    for i in range(1, n):
        diagonal = prev[pad - 1 : pad - 1 + m]
        skip_query = prev[pad - 2 : pad - 2 + m]
        skip_template = prev2[pad - 1 : pad - 1 + m] + cost[i - 1]
        options = np.stack([diagonal, skip_query, skip_template])
        choice = np.argmin(options, axis=0)
        best = options[choice, np.arange(m)] + cost[i]
        starts = np.stack(
            [start[pad - 1 : pad - 1 + m], start[pad - 2 : pad - 2 + m], start2[pad - 1 : pad - 1 + m]]
        )
        current = np.full(m + pad, inf)
        current[pad:] = best
        current_start = np.zeros(m + pad, dtype=np.int64)
        current_start[pad:] = starts[choice, np.arange(m)]
        prev2, start2, prev, start = prev, start, current, current_start
    return prev[pad:] / n, start[pad:]


def _score_one(template: Template, query: np.ndarray) -> tuple[float, int, int]:
    """(score, start frame, end frame) of one template's best occurrence in the query frames."""
    if query.shape[0] < max(2, template.frames // 2):
        return 0.0, 0, 0
    cost = 1.0 - template.features.astype(np.float64) @ query.T
    mean_cost, starts = subsequence_dtw(cost)
    reachable = np.isfinite(mean_cost)
    if not reachable.any():
        return 0.0, 0, 0
    end = int(np.argmin(np.where(reachable, mean_cost, np.inf)))
    typical = float(np.median(mean_cost[reachable]))
    score = float(np.clip(1.0 - mean_cost[end] / typical, 0.0, 1.0)) if typical > 0 else 0.0
    return score, int(starts[end]), end


def query_features(samples: np.ndarray, sr: int) -> np.ndarray:
    """The query's normalized frames (normalized over its own speech, as templates are)."""
    features, speech = _frames(samples, sr)
    return _normalize(features, speech)


def match_templates(
    samples: np.ndarray,
    sr: int,
    templates: Mapping[str, Template | Sequence[Template]],
    threshold: float | None = None,
) -> list[Match]:
    """Every keyword found in the query, best first: for each pattern id the best of its templates,
    kept when its score is at least ``threshold`` (default :data:`DEFAULT_THRESHOLD`)."""
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    query = query_features(samples, sr)
    matches = []
    for pattern_id, given in templates.items():
        examples = [given] if isinstance(given, Template) else list(given)
        best = max((_score_one(template, query) for template in examples), default=(0.0, 0, 0))
        score, first, last = best
        if score >= threshold and score > 0:
            start_s = first * FRAME_S  # frames are centred: frame t is at t * hop
            end_s = last * FRAME_S
            matches.append(Match(pattern_id, round(score, 4), round(start_s, 3), round(end_s, 3)))
    return sorted(matches, key=lambda match: match.score, reverse=True)
