"""Keyword spotting: noise-compensated, frequency-warped templates matched by subsequence DTW.

A **template** (:func:`make_template`) keeps the mel power spectrogram of one spoken example of a keyword
at 16 kHz (25 ms Hann frames every 10 ms, 40 mel bands of 60–7000 Hz, averaged over 3 frames), trimmed to
its speech (leading and trailing frames more than 35 dB below the loudest are dropped: enrol examples
recorded in a quiet place; noise in the *query* is what matching compensates for). It is kept for five
frequency-warp factors α ∈ {0.88, 0.94, 1, 1.06, 1.12} (the filter bank's edge frequencies scaled by α):
the vocal-tract-length normalization of L. Lee and R. Rose, "Speaker normalization using efficient
frequency warping procedures", ICASSP 1996, by search over α, so that a template enrolled by one voice
matches longer or shorter vocal tracts.

The template also keeps the example's **speech embeddings** (harmonic.speech_embedding, of the same trimmed
speech): :func:`match_templates` does not use them; the service joins their evidence to the template's
(harmonic_service.logic.patterns.PatternSet).

**Matching** (:func:`match_templates`) compares frames of the query with frames of every template:

1. *Noise compensation* (log-add model compensation, as in M. Gales and S. Young's parallel model
   combination, 1996): the query's noise spectrum ``N`` (mean mel power of its quietest 10 % frames) is
   added to each template after scaling the template to the query's speech level, ``T' = g·T + N``; the
   template then looks like the keyword spoken in the query's noise.
2. *Features* of both: log mel power (floored 50 dB below the peak), orthonormal DCT-II coefficients
   c0…c8, their regression deltas and delta-deltas (±2 frames, the HTK formula); mean and variance
   normalization over a sliding 0.75 s window (removes the channel and the level; keeps the energy
   contour, which survives noise and carries the word's rhythm), the c0 terms weighted ×2; rows scaled to
   unit length, so ``1 − dot`` is the cosine distance.
3. *Subsequence DTW* (M. Müller, "Fundamentals of Music Processing", Springer 2015, §7.2.3): free start
   and end in the query, steps (1, 1), (1, 2), (2, 1) — the keyword may be spoken between half and twice
   as fast as the example — and every template frame charged exactly once, so the path cost divided by
   the template's length is the mean frame distance ``d``. Rows are vectorized over every template and
   warp at once (numpy arrays of shape (templates × warps, query frames)).
4. *Score*: ``1 − d_best / d_median`` (clipped to 0..1), where ``d_median`` is the median over all end
   positions of the same template's cost: how much better the best place fits than a typical place in
   the same utterance. A keyword that is present stands out whatever the voice and the noise level, and a
   short template that fits many places fairly well is held to the same standard as a long one. The best
   warp and the best template of a pattern id count.

Cost: per template and warp, ``frames × query frames`` cosine distances (one matmul) and as many DTW cell
updates, in float32; about 0.35 ms per template per second of query on one core (``make eval`` prints it).

:data:`DEFAULT_THRESHOLD` was chosen with ``make eval`` (bench/eval_matching.py) so that utterances without
any keyword rarely match, at every noise level tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from harmonic._samples import as_mono_float64
from harmonic.errors import InvalidAudio
from harmonic.matching import Match
from harmonic.serialization import check_format, pack, unpack
from harmonic.spectral import hz_to_mel, mel_to_hz, stft_power
from harmonic.speech_embedding import checked
from harmonic.whisper_encoder import ROWS as WHISPER_ROWS
from harmonic.whisper_encoder import checked as whisper_rows

SR = 16_000
N_FFT = 400
HOP = 160
FRAME_S = HOP / SR
N_MELS = 40
FMIN, FMAX = 60.0, 7000.0
WARPS = (0.88, 0.94, 1.0, 1.06, 1.12)
SMOOTH_FRAMES = 3
N_CEPSTRA = 9  # c0..c8
CMVN_FRAMES = 75
C0_WEIGHT = 2.0
FLOOR_DB = 50.0
SPEECH_RANGE_DB = 35.0
NOISE_QUANTILE = 0.10
MIN_TEMPLATE_FRAMES = 12
#: Chosen on `make eval`: ≤ 10 % of utterances without a keyword match, clean or at 20/10 dB SNR.
DEFAULT_THRESHOLD = 0.575
_FORMAT = 4  # 3: the speech embeddings added; 4: Whisper's encoder rows added
_EMBEDDING_FORMAT = 3  # still read (whisper None): matched without the encoder's evidence
_MEL_ONLY_FORMAT = 2  # mel power only: still read (embedding None), so an upgrade recomputes nothing
_KIND = b"HTPL"
_BATCH = 512  # template warps per DTW pass at most
_COST_BUDGET = 1 << 22  # cost-matrix elements per DTW pass (16 MB of float32, as many again accumulated)


@dataclass(frozen=True, eq=False)
class Template:
    """One spoken example of a keyword: mel power in dB, ``(warps, mel bands, frames)``, float32, its speech
    embeddings and Whisper's encoder rows."""

    mel_db: np.ndarray
    warps: tuple[float, ...] = WARPS
    duration_s: float = 0.0
    #: The example's speech embeddings ``(n, 96)``, unit rows (harmonic.speech_embedding); None in a
    #: template built by hand without them (match_templates does not use them; the service's PatternSet does).
    embedding: np.ndarray | None = None
    #: The example's rows of Whisper's encoder ``(n, 512)``, centred unit rows (harmonic.whisper_encoder),
    #: stored as float16 with the id of what made them (harmonic.whisper_encoder.ROWS); None in a template
    #: from before them (format 2 or 3), in one whose rows another depth or centre made (read without them),
    #: or built by hand.
    whisper: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.mel_db.shape[2])

    def to_bytes(self) -> bytes:
        """A compact versioned binary form (see :mod:`harmonic.serialization`; never pickle). Formats 2
        (from before the speech embeddings) and 3 (from before the encoder rows) are still read, as a template
        without what they lack; so is one whose encoder rows another encoder depth or centre made (its
        ``whisper_rows`` not harmonic.whisper_encoder.ROWS, or absent: the sixth layer's, before
        2026-12-02)."""
        meta = {"format": _FORMAT, "duration_s": self.duration_s, "warps": list(self.warps)}
        arrays = {"mel_db": self.mel_db.astype("<f4")}
        if self.embedding is not None:
            arrays["embedding"] = self.embedding.astype("<f4")
        if self.whisper is not None:
            arrays["whisper"] = self.whisper.astype("<f2")
            meta["whisper_rows"] = WHISPER_ROWS
        return pack(_KIND, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """The template :meth:`to_bytes` wrote; ``ValueError`` for anything else (or an older format)."""
        meta, arrays = unpack(data, _KIND)
        # formats 2 and 3 are still read, without what they lack
        if meta.get("format") not in (_MEL_ONLY_FORMAT, _EMBEDDING_FORMAT):
            check_format(meta, _FORMAT, "template", "register the keyword again")
        try:
            mel_db = arrays["mel_db"]
            warps = tuple(float(w) for w in meta["warps"])
            duration_s = float(meta["duration_s"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"corrupt template: {error}") from None
        if mel_db.ndim != 3 or mel_db.shape[0] != len(warps) or mel_db.shape[1] != N_MELS:
            raise ValueError(f"corrupt template: mel_db has shape {mel_db.shape}")
        if mel_db.shape[2] < 1 or not np.all(np.isfinite(mel_db)):
            raise ValueError("corrupt template: empty or non-finite")
        embedding = arrays.get("embedding") if meta["format"] != _MEL_ONLY_FORMAT else None
        whisper = arrays.get("whisper") if meta["format"] == _FORMAT else None
        if meta.get("whisper_rows") != WHISPER_ROWS:  # rows of another depth or centre: not comparable
            whisper = None
        return cls(
            mel_db=mel_db.astype(np.float32),
            warps=warps,
            duration_s=duration_s,
            embedding=None if embedding is None else checked(embedding, "corrupt template: embedding"),
            whisper=None if whisper is None else whisper_rows(whisper, "corrupt template: whisper"),
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Template)
            and self.warps == other.warps
            and self.duration_s == other.duration_s
            and np.array_equal(self.mel_db, other.mel_db)
            and (self.embedding is None) == (other.embedding is None)
            and (self.embedding is None or np.array_equal(self.embedding, other.embedding))
            and (self.whisper is None) == (other.whisper is None)
            and (self.whisper is None or np.array_equal(self.whisper, other.whisper))
        )

    __hash__ = None  # type: ignore[assignment]


@lru_cache(maxsize=16)
def _warped_filterbank(alpha: float) -> np.ndarray:
    """Triangular mel filters ``(N_MELS, 1 + N_FFT // 2)`` between FMIN and FMAX (Slaney's mel scale and
    unit-area normalization, as librosa.filters.mel), with every edge frequency multiplied by ``alpha``."""
    fft_freqs = np.linspace(0.0, SR / 2, 1 + N_FFT // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2)) * alpha
    ramps = edges[:, None] - fft_freqs[None, :]
    widths = np.diff(edges)
    weights = np.maximum(0.0, np.minimum(-ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.flags.writeable = False
    return weights


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` frames along the last axis, edges repeated (scipy.ndimage's
    ``uniform_filter1d(mode="nearest")``), by cumulative sums."""
    if width <= 1:
        return x
    left = width // 2
    padded = np.concatenate(
        [np.repeat(x[..., :1], left, axis=-1), x, np.repeat(x[..., -1:], width - 1 - left, axis=-1)], axis=-1
    )
    cumulative = np.cumsum(padded, axis=-1)
    averaged = cumulative[..., width - 1 :].copy()
    averaged[..., 1:] -= cumulative[..., :-width]
    return averaged / width


def _deltas(features: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over ±width frames along the last axis (the HTK formula), edges repeated."""
    frames = features.shape[-1]
    edges = (np.repeat(features[..., :1], width, axis=-1), np.repeat(features[..., -1:], width, axis=-1))
    padded = np.concatenate([edges[0], features, edges[1]], axis=-1)
    numerator = sum(
        w * (padded[..., width + w : width + w + frames] - padded[..., width - w : width - w + frames])
        for w in range(1, width + 1)
    )
    return numerator / (2 * sum(w * w for w in range(1, width + 1)))


@lru_cache(maxsize=1)
def _dct_rows() -> np.ndarray:
    """The first N_CEPSTRA rows ``(N_CEPSTRA, N_MELS)`` of the orthonormal DCT-II matrix: one matmul computes
    only the coefficients kept (scipy.fft.dct would compute all N_MELS and drop most)."""
    rows = scipy.fft.dct(np.eye(N_MELS), type=2, axis=0, norm="ortho")[:N_CEPSTRA]
    rows.flags.writeable = False
    return rows


def _features(mel: np.ndarray, floor: np.ndarray | float) -> np.ndarray:
    """Normalized feature frames ``(..., frames, 27)`` of mel power spectrograms ``(..., N_MELS, frames)``
    (``floor``: the power floor, per leading index)."""
    log_mel = 10.0 * np.log10(np.maximum(mel, np.asarray(floor)[..., None, None]))
    cepstra = _dct_rows() @ log_mel  # c0..c8 of the orthonormal DCT-II over the bands
    delta = _deltas(cepstra)
    stacked = np.concatenate([cepstra, delta, _deltas(delta)], axis=-2)  # (..., 27, frames)
    mean = _moving_average(stacked, CMVN_FRAMES)
    variance = np.maximum(_moving_average(stacked * stacked, CMVN_FRAMES) - mean * mean, 0.0)
    normalized = (stacked - mean) / (np.sqrt(variance) + 1e-8)
    normalized[..., ::N_CEPSTRA, :] *= C0_WEIGHT
    normalized /= np.linalg.norm(normalized, axis=-2, keepdims=True) + 1e-12
    return np.ascontiguousarray(np.swapaxes(normalized, -1, -2))


def _at_16k(samples: np.ndarray, sr: int, name: str, what: str) -> np.ndarray:
    """Mono samples at 16 kHz, at least one frame long; InvalidAudio when unusable (``name``: the public
    function, ``what``: what the samples are, for the messages)."""
    y = as_mono_float64(samples, name=name)
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)
    if y.size < N_FFT:
        raise InvalidAudio(f"the {what} is {y.size / SR:.3f} s long; at least {N_FFT / SR:.3f} s is needed")
    return y


def _power(y: np.ndarray) -> np.ndarray:
    """The power spectrogram of 16 kHz samples (:func:`_at_16k`)."""
    return np.asarray(stft_power(y, n_fft=N_FFT, hop_length=HOP), dtype=np.float64)


def _noise(mel: np.ndarray) -> np.ndarray:
    """Noise mel spectrum: mean of the quietest NOISE_QUANTILE of the frames (by total power)."""
    total = mel.sum(axis=0)
    count = max(1, int(NOISE_QUANTILE * total.size))
    return mel[:, np.argpartition(total, count - 1)[:count]].mean(axis=1)


def _speech_level(total: np.ndarray) -> np.ndarray:
    """Speech power: the mean of the louder half of the frames' total powers (the last axis)."""
    ordered = np.sort(total, axis=-1)
    return ordered[..., ordered.shape[-1] // 2 :].mean(axis=-1)


def _speech_span(power: np.ndarray) -> tuple[int, int]:
    """The first and last frame of an example's speech: leading and trailing frames more than
    SPEECH_RANGE_DB below the loudest are silence (enrol in a quiet room). InvalidAudio when silent."""
    energy = power.sum(axis=0)
    if not np.any(energy > 0):
        raise InvalidAudio("the keyword example is silent")
    energy_db = 10.0 * np.log10(energy + 1e-30)
    speech = energy_db > energy_db.max() - SPEECH_RANGE_DB  # holds the loudest frame at least
    first, last = np.flatnonzero(speech)[[0, -1]]
    return int(first), int(last)


def _frames_of(y: np.ndarray, first: int, last: int) -> np.ndarray:
    """The 16 kHz samples of frames ``first..last`` (frame k covers samples k·HOP ± N_FFT/2)."""
    return y[max(0, first * HOP - N_FFT // 2) : last * HOP + N_FFT // 2]


def _speech_embedding(y: np.ndarray, first: int, last: int) -> np.ndarray:
    """The speech embeddings (harmonic.speech_embedding) of frames ``first..last`` of 16 kHz samples."""
    from harmonic.speech_embedding import embed

    return embed(_frames_of(y, first, last), SR)


def speech_of_example(samples: np.ndarray, sr: int) -> np.ndarray:
    """A keyword example's speech at 16 kHz, trimmed as :func:`make_template` trims it. InvalidAudio as
    :func:`make_template`, but for no least length of speech."""
    y = _at_16k(samples, sr, "speech_of_example", "keyword example")
    return _frames_of(y, *_speech_span(_power(y)))


def example_embedding(samples: np.ndarray, sr: int) -> np.ndarray:
    """The speech embeddings ``(n, 96)`` of a keyword example's speech, trimmed as :func:`make_template`
    trims it: what a keyword registered from an example keeps beside its phones. InvalidAudio as
    :func:`make_template`, but for no least length of speech."""
    y = _at_16k(samples, sr, "example_embedding", "keyword example")
    return _speech_embedding(y, *_speech_span(_power(y)))


def example_whisper_rows(samples: np.ndarray, sr: int) -> np.ndarray | None:
    """Whisper's encoder rows ``(n, 512)`` of a keyword example's speech, trimmed as :func:`make_template`
    trims it and stored as a template stores them (:func:`_whisper_rows`: None past what the encoder reads).
    InvalidAudio as :func:`example_embedding`."""
    y = _at_16k(samples, sr, "example_whisper_rows", "keyword example")
    return _whisper_rows(_frames_of(y, *_speech_span(_power(y))))


def make_template(samples: np.ndarray, sr: int) -> Template:
    """A template from one spoken example of a keyword (mono, any rate; silence around it is trimmed).

    Raises :class:`InvalidAudio` when the example is silent, shorter than 25 ms, or holds less than
    0.12 s of speech, and for samples that are not mono ``(n,)``, empty, non-finite or not numbers.
    """
    y = _at_16k(samples, sr, "make_template", "keyword example")
    power = _power(y)
    first, last = _speech_span(power)
    if last - first + 1 < MIN_TEMPLATE_FRAMES:
        raise InvalidAudio(
            f"the keyword example holds {(last - first + 1) * FRAME_S:.2f} s of speech; "
            f"at least {MIN_TEMPLATE_FRAMES * FRAME_S:.2f} s is needed"
        )
    trimmed = power[:, first : last + 1]
    mel = _moving_average(np.stack([_warped_filterbank(alpha) @ trimmed for alpha in WARPS]), SMOOTH_FRAMES)
    mel_db = 10.0 * np.log10(np.maximum(mel, 1e-20))
    return Template(
        mel_db=mel_db.astype(np.float32),
        warps=WARPS,
        duration_s=(last - first + 1) * FRAME_S,
        embedding=_speech_embedding(y, first, last),  # the network's view of the same trimmed speech
        whisper=_whisper_rows(_frames_of(y, first, last)),
    )


def _whisper_rows(speech: np.ndarray) -> np.ndarray | None:
    """Whisper's encoder rows of an example's trimmed 16 kHz speech, as a template stores them (float16
    precision, so that a template read back equals the one made); None for speech longer than the encoder
    reads (harmonic.whisper_encoder.MAX_SECONDS: no keyword is that long, and such a template is matched as
    before, without the rows)."""
    from harmonic.whisper_encoder import encode, reads

    if not reads(speech.size, SR):
        return None
    return encode(speech, SR).astype(np.float16).astype(np.float32)


def subsequence_dtw(cost: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subsequence DTW of many templates against one query, vectorized over templates and query frames.

    ``cost`` is ``(B, N, M)``: the local cost of template ``b``'s row ``i`` against query frame ``j``
    (template ``b`` uses its first ``lengths[b]`` rows), float32 or float64 (the arithmetic keeps it). Steps
    (1, 1), (1, 2) and (2, 1), the last charging both template rows, so that each template row is charged
    exactly once and the accumulated cost divided by the template's length is a mean. Returns ``(mean_cost,
    accumulated)``: ``mean_cost`` ``(B, M)`` is, for the best path ending at each query frame, its mean cost
    (``inf`` if no path ends there); ``accumulated`` ``(B, N, M + 2)`` holds every cell's accumulated cost
    (two columns of ``+inf`` on the left), from which :func:`path_start` recovers where a path began.
    """
    batch, n_max, m = cost.shape
    accumulated = np.empty((batch, n_max, m + 2), dtype=cost.dtype)
    accumulated[:, :, :2] = np.inf  # so that the predecessors j-1 and j-2 are plain slices
    accumulated[:, 0, 2:] = cost[:, 0]
    mean_cost = np.full((batch, m), np.inf, dtype=cost.dtype)
    done = lengths == 1
    mean_cost[done] = cost[done, 0]
    skip_template = np.full((batch, m), np.inf, dtype=cost.dtype)  # (2, 1): no row -1 to come from
    for i in range(1, n_max):
        previous = accumulated[:, i - 1]
        if i >= 2:
            np.add(accumulated[:, i - 2, 1:-1], cost[:, i - 1], out=skip_template)  # both rows charged
        row = accumulated[:, i, 2:]
        np.minimum(previous[:, 1:-1], previous[:, :-2], out=row)  # (1, 1) and (1, 2)
        np.minimum(row, skip_template, out=row)
        row += cost[:, i]
        ending = np.flatnonzero(lengths == i + 1)
        if ending.size:
            mean_cost[ending] = row[ending] / (i + 1)
    return mean_cost, accumulated


def best_mean_costs(
    lengths: np.ndarray, query_rows: int, costs: Callable[[int, int], np.ndarray], budget: int
) -> np.ndarray:
    """The mean cost of each example's best path through one query (:func:`subsequence_dtw`), ``inf`` where
    none fits: examples of ``lengths`` rows, as many per pass as keep a pass's cost matrix under ``budget``
    elements. ``costs(first, stop)`` gives the local costs ``(stop − first, longest example, query_rows)`` of
    examples ``first..stop − 1`` (rows past an example's length are never read)."""
    best = np.full(lengths.size, np.inf)
    size = max(1, budget // max(1, int(lengths.max()) * query_rows))
    for first in range(0, lengths.size, size):
        stop = min(first + size, lengths.size)
        mean_cost, _ = subsequence_dtw(costs(first, stop), lengths[first:stop])
        best[first:stop] = mean_cost.min(axis=1)
    return best


def path_start(
    accumulated: np.ndarray, cost: np.ndarray, lengths: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """The first query frame of each template's best path ending at frame ``ends[b]``, traced back through
    :func:`subsequence_dtw`'s ``accumulated`` cost (vectorized over templates; one step per template row).
    Ties go as the recursion's minimum would take them: the diagonal, then the skipped query frame, then the
    two template rows. An end where no path ends gives a meaningless frame (never below 0)."""
    rows = np.asarray(lengths, dtype=np.int64) - 1
    columns = np.asarray(ends, dtype=np.int64) + 2  # in the padded columns
    while True:
        active = np.flatnonzero((rows > 0) & (columns >= 2))
        if not active.size:
            return np.maximum(columns - 2, 0)
        i, j = rows[active], columns[active]
        diagonal = accumulated[active, i - 1, j - 1]
        skip_query = accumulated[active, i - 1, j - 2]
        skip_template = np.where(
            i >= 2, accumulated[active, np.maximum(i - 2, 0), j - 1] + cost[active, i - 1, j - 2], np.inf
        )
        take_template = skip_template < np.minimum(diagonal, skip_query)
        take_query = skip_query < diagonal
        rows[active] = i - np.where(take_template, 2, 1)
        columns[active] = j - np.where(take_template | ~take_query, 1, 2)


def _query_analysis(samples: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """(features, noise spectrum, speech level, peak) of a query; None when it is digital silence."""
    power = _power(_at_16k(samples, sr, "match_templates", "query"))
    mel = _moving_average(_warped_filterbank(1.0) @ power, SMOOTH_FRAMES)
    peak = float(mel.max())
    if not peak > 0:
        return None
    noise = _noise(mel)
    level = float(_speech_level(np.maximum(mel.sum(axis=0) - noise.sum(), 0.0)))  # noise removed
    return _features(mel, peak * 10 ** (-FLOOR_DB / 10)), noise, level, peak


def _template_features(template: Template, noise: np.ndarray, level: float, peak: float) -> np.ndarray:
    """The template's normalized frames ``(warps, frames, 27)``, compensated for the query's noise and
    speech level (``T' = g·T + N``)."""
    # (warps, bands, frames); the power in float32, as stored, costs a fifth of float64's
    mel = (np.float32(10.0) ** (template.mel_db / np.float32(10.0))).astype(np.float64)
    speech = _speech_level(mel.sum(axis=1))  # per warp
    gain = level / np.maximum(speech, 1e-30)
    compensated = gain[:, None, None] * mel + noise[None, :, None]
    floor = np.maximum(peak, compensated.max(axis=(1, 2))) * 10 ** (-FLOOR_DB / 10)
    return _features(compensated, floor)


def _scores(query: np.ndarray, features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, start frame, end frame) of each template-warp's best occurrence in the query frames."""
    count = len(features)
    scores = np.zeros(count)
    starts = np.zeros(count, dtype=np.int64)
    ends = np.zeros(count, dtype=np.int64)
    lengths = np.array([f.shape[0] for f in features])
    order = np.argsort(lengths, kind="stable")  # similar lengths together: less padding
    query_t = np.ascontiguousarray(query.T, dtype=np.float32)
    chunk = 0
    while chunk < count:
        # as many template warps as fit the cost-array budget (one matmul per chunk, not per row)
        n_max = int(lengths[order[min(count, chunk + _BATCH) - 1]])
        size = max(1, min(_BATCH, _COST_BUDGET // max(1, n_max * query.shape[0])))
        members = order[chunk : chunk + size]
        chunk += size
        n_max = int(lengths[members].max())
        rows = np.zeros((members.size, n_max, query.shape[1]), dtype=np.float32)
        for slot, member in enumerate(members):
            rows[slot, : lengths[member]] = features[member]
        cost = 1.0 - rows @ query_t
        mean_cost, accumulated = subsequence_dtw(cost, lengths[members])
        finite = np.isfinite(mean_cost)
        end = np.argmin(mean_cost, axis=1)  # inf where no path ends
        best = mean_cost[np.arange(members.size), end].astype(np.float64)
        with np.errstate(all="ignore"):
            median = np.nanmedian(np.where(finite, mean_cost, np.nan), axis=1).astype(np.float64)
            score = np.where(np.isfinite(best) & (median > 0), 1.0 - best / median, 0.0)
        scores[members] = np.clip(np.nan_to_num(score), 0.0, 1.0)
        starts[members] = path_start(accumulated, cost, lengths[members], end)
        ends[members] = end
    return scores, starts, ends


def match_templates(
    samples: np.ndarray,
    sr: int,
    templates: Mapping[str, Template | Sequence[Template]],
    threshold: float | None = None,
) -> list[Match]:
    """The keywords found in a query utterance, best first.

    ``templates`` maps a pattern id to a template or to several examples of the same keyword (the best
    counts). A pattern is returned when its score is at least ``threshold`` (default
    :data:`DEFAULT_THRESHOLD`); ``start_s``/``end_s`` are where in the query it was found. A query that is
    digital silence, or too short for every template (under half a template's length), matches nothing.
    Raises :class:`InvalidAudio` for a query shorter than 25 ms, and for samples that are not mono ``(n,)``,
    empty, non-finite or not numbers.
    """
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    analysis = _query_analysis(samples, sr)
    if analysis is None or not templates:
        return []
    query, noise, level, peak = analysis
    owners: list[str] = []
    features: list[np.ndarray] = []
    for pattern_id, given in templates.items():
        examples = [given] if isinstance(given, Template) else list(given)
        for template in examples:
            if not isinstance(template, Template):
                raise TypeError(f"pattern {pattern_id!r}: expected Template, got {type(template).__name__}")
            for warped in _template_features(template, noise, level, peak):
                if query.shape[0] >= math.ceil(warped.shape[0] / 2):
                    owners.append(pattern_id)
                    features.append(warped)
    if not features:
        return []
    scores, starts, ends = _scores(query, features)
    best: dict[str, int] = {}
    for index, pattern_id in enumerate(owners):
        if pattern_id not in best or scores[index] > scores[best[pattern_id]]:
            best[pattern_id] = index
    matches = [
        Match(
            pattern_id,
            round(float(scores[index]), 4),
            round(float(starts[index]) * FRAME_S, 3),
            round(float(ends[index]) * FRAME_S, 3),
        )
        for pattern_id, index in best.items()
        if scores[index] >= threshold and scores[index] > 0
    ]
    return sorted(matches, key=lambda match: match.score, reverse=True)
