"""Audio fingerprints: spectral-peak landmarks and an index that finds a noisy excerpt's recording.

After Wang, "An Industrial-Strength Audio Search Algorithm" (ISMIR 2003):

- analysis at 8 kHz, 64 ms Hann frames every 16 ms (62.5 frames/s), log power;
- the constellation: local maxima of the spectrogram over a (±10 bins, ±5 frames) neighbourhood, the
  strongest ``peaks_per_second`` kept in each second so that density is even over time;
- landmarks: each peak (anchor) paired with up to ``fan_out`` later peaks 1–63 frames ahead and within
  ±63 bins; the hash packs (anchor bin, target bin, Δt) in 24 bits and is stored with the anchor's time;
- a query's hashes are looked up in the index; a true match gives many hits at one consistent offset
  (registered time − query time). Per recording, the best offset's votes are tested against chance: with
  ``n`` hits spread over ``B`` possible offsets, votes follow Poisson(n / B); the tail probability,
  Bonferroni-corrected for every offset and recording tried, must be below ``1e-9``. Unregistered audio
  therefore returns nothing. ``score = min(1, −log10(p) / 30)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harmonic.errors import InvalidAudio
from harmonic.matching import Match
from harmonic.serialization import pack, unpack
from harmonic.spectral import stft_power

SR = 8_000
N_FFT = 512
HOP = 128
FRAME_RATE = SR / HOP
PEAK_FREQ_RADIUS = 10
PEAK_TIME_RADIUS = 5
MAX_DT = 63
MAX_DF = 63
OFFSET_BIN = 2  # frames per voting bin: tolerates one frame of jitter between query and recording
SIGNIFICANCE = 1e-9
_FP_KIND = b"HFPT"
_INDEX_KIND = b"HFPI"


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Landmark hashes (uint32) and their anchor frames (int32), sorted by time."""

    hashes: np.ndarray
    times: np.ndarray
    frame_rate: float = FRAME_RATE
    duration_s: float = 0.0

    def to_bytes(self) -> bytes:
        meta = {"frame_rate": self.frame_rate, "duration_s": self.duration_s}
        return pack(_FP_KIND, meta, {"hashes": self.hashes.astype("<u4"), "times": self.times.astype("<i4")})

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        meta, arrays = unpack(data, _FP_KIND)
        if arrays["hashes"].shape != arrays["times"].shape or arrays["hashes"].ndim != 1:
            raise ValueError("corrupt fingerprint: hashes and times differ in shape")
        return cls(arrays["hashes"], arrays["times"], float(meta["frame_rate"]), float(meta["duration_s"]))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Fingerprint)
            and np.array_equal(self.hashes, other.hashes)
            and np.array_equal(self.times, other.times)
        )

    __hash__ = None  # type: ignore[assignment]


def _peaks(log_power: np.ndarray, peaks_per_second: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) of the constellation, the strongest `peaks_per_second` per second."""
    from scipy.ndimage import maximum_filter

    size = (2 * PEAK_FREQ_RADIUS + 1, 2 * PEAK_TIME_RADIUS + 1)
    is_peak = (log_power == maximum_filter(log_power, size=size, mode="constant", cval=-np.inf)) & (
        log_power > np.median(log_power)
    )
    bins, frames = np.nonzero(is_peak)
    strength = log_power[bins, frames]
    second = (frames / FRAME_RATE).astype(np.int64)
    order = np.lexsort((-strength, second))
    bins, frames, second = bins[order], frames[order], second[order]
    first_of_second = np.searchsorted(second, second, side="left")
    keep = (np.arange(second.size) - first_of_second) < peaks_per_second
    bins, frames = bins[keep], frames[keep]
    by_time = np.lexsort((bins, frames))
    return frames[by_time], bins[by_time]


def fingerprint(samples: np.ndarray, sr: int, peaks_per_second: int = 30, fan_out: int = 6) -> Fingerprint:
    """The landmark fingerprint of a clip (mono, any rate)."""
    y = np.asarray(samples, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got {y.shape}")
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)
    if y.size < N_FFT:
        raise InvalidAudio(f"the clip is {y.size / SR:.3f} s long; too short to fingerprint")
    log_power = 10.0 * np.log10(stft_power(y, n_fft=N_FFT, hop_length=HOP) + 1e-10)
    frames, bins = _peaks(log_power, peaks_per_second)
    hashes, times = _landmarks(frames, bins, fan_out)
    return Fingerprint(hashes, times, FRAME_RATE, y.size / SR)


def _landmarks(frames: np.ndarray, bins: np.ndarray, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair each peak with the next `fan_out` peaks inside its target zone (vectorized over anchors)."""
    n = frames.size
    look_ahead = 4 * fan_out
    if n < 2:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32)
    anchors = np.arange(n)[:, None]
    targets = anchors + np.arange(1, look_ahead + 1)[None, :]
    inside = targets < n
    targets = np.minimum(targets, n - 1)
    dt = frames[targets] - frames[anchors]
    df = bins[targets] - bins[anchors]
    # df == 0 pairs come from sustained tones: they repeat at every offset and carry no timing information
    valid = inside & (dt >= 1) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF) & (df != 0)
    valid &= np.cumsum(valid, axis=1) <= fan_out
    a_index, t_index = np.nonzero(valid)
    target = targets[a_index, t_index]
    hashes = (
        (bins[a_index].astype(np.uint32) << 15) | (bins[target].astype(np.uint32) << 6) | dt[a_index, t_index]
    )
    return hashes.astype(np.uint32), frames[a_index].astype(np.int32)


def _log_poisson_tail(votes: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """log P(X ≥ votes) for X ~ Poisson(rate), by the leading term (votes ≫ rate), in natural log."""
    votes = votes.astype(np.float64)
    log_pmf = votes * np.log(np.maximum(rate, 1e-300)) - rate - np.array([math.lgamma(v + 1) for v in votes])
    ratio = np.minimum(rate / (votes + 1.0), 0.999)
    return np.minimum(0.0, log_pmf - np.log1p(-ratio))


class FingerprintIndex:
    """Registered fingerprints, searchable by :meth:`query`. Add/remove are cheap; the lookup arrays are
    rebuilt on the next query after a change."""

    def __init__(self) -> None:
        self._entries: dict[str, Fingerprint] = {}
        self._dirty = True
        self._hashes = np.zeros(0, dtype=np.uint32)
        self._ids = np.zeros(0, dtype=np.int32)
        self._times = np.zeros(0, dtype=np.int32)
        self._names: list[str] = []
        self._durations = np.zeros(0)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, pattern_id: object) -> bool:
        return pattern_id in self._entries

    def add(self, pattern_id: str, fp: Fingerprint) -> None:
        self._entries[pattern_id] = fp
        self._dirty = True

    def remove(self, pattern_id: str) -> None:
        if self._entries.pop(pattern_id, None) is not None:
            self._dirty = True

    def _build(self) -> None:
        self._names = list(self._entries)
        if self._names:
            fps = [self._entries[name] for name in self._names]
            hashes = np.concatenate([fp.hashes for fp in fps])
            times = np.concatenate([fp.times for fp in fps])
            ids = np.repeat(np.arange(len(fps), dtype=np.int32), [fp.hashes.size for fp in fps])
            order = np.argsort(hashes, kind="stable")
            self._hashes, self._times, self._ids = hashes[order], times[order], ids[order]
            self._durations = np.array([fp.duration_s for fp in fps])
        else:
            self._hashes = np.zeros(0, dtype=np.uint32)
            self._ids = self._times = np.zeros(0, dtype=np.int32)
            self._durations = np.zeros(0)
        self._dirty = False

    def query(self, fp: Fingerprint, max_results: int = 5) -> list[Match]:
        """Registered recordings containing the query, best first; [] when nothing is significant."""
        if self._dirty:
            self._build()
        if fp.hashes.size == 0 or self._hashes.size == 0:
            return []
        left = np.searchsorted(self._hashes, fp.hashes, side="left")
        right = np.searchsorted(self._hashes, fp.hashes, side="right")
        counts = right - left
        total = int(counts.sum())
        if total == 0:
            return []
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        hit = np.repeat(left, counts) + within
        ids = self._ids[hit].astype(np.int64)
        offsets = self._times[hit].astype(np.int64) - np.repeat(fp.times.astype(np.int64), counts)
        offset_bin = np.floor_divide(offsets, OFFSET_BIN)
        shift = int(offset_bin.min())
        span = int(offset_bin.max()) - shift + 1
        keys, votes = np.unique(ids * span + (offset_bin - shift), return_counts=True)
        key_ids = keys // span
        # best offset bin per recording (keys are sorted by id, then offset)
        order = np.lexsort((-votes, key_ids))
        first = np.flatnonzero(np.r_[True, np.diff(key_ids[order]) != 0])
        best = order[first]
        best_ids, best_votes = key_ids[best], votes[best]
        hits_per_id = np.bincount(ids, minlength=len(self._names))[best_ids]
        query_frames = fp.duration_s * fp.frame_rate
        possible_bins = (self._durations[best_ids] * fp.frame_rate + query_frames) / OFFSET_BIN + 1
        log_p = _log_poisson_tail(best_votes, hits_per_id / possible_bins)
        log_p_corrected = log_p + math.log(float(possible_bins.sum()))
        significant = (log_p_corrected < math.log(SIGNIFICANCE)) & (best_votes >= 5)
        matches = []
        for index in np.flatnonzero(significant):
            offset_s = float((keys[best[index]] % span + shift) * OFFSET_BIN / fp.frame_rate)
            score = min(1.0, -log_p_corrected[index] / math.log(10) / 30.0)
            start = max(0.0, offset_s)
            matches.append(
                Match(
                    self._names[int(best_ids[index])],
                    round(score, 4),
                    round(start, 3),
                    round(start + fp.duration_s, 3),
                )
            )
        matches.sort(key=lambda match: match.score, reverse=True)
        return matches[:max_results]

    def to_bytes(self) -> bytes:
        names = list(self._entries)
        fps = [self._entries[name] for name in names]
        meta = {
            "patterns": names,
            "frame_rates": [fp.frame_rate for fp in fps],
            "durations": [fp.duration_s for fp in fps],
        }
        lengths = np.array([fp.hashes.size for fp in fps], dtype="<i8")
        hashes = np.concatenate([fp.hashes for fp in fps]) if fps else np.zeros(0, dtype=np.uint32)
        times = np.concatenate([fp.times for fp in fps]) if fps else np.zeros(0, dtype=np.int32)
        return pack(
            _INDEX_KIND,
            meta,
            {"lengths": lengths, "hashes": hashes.astype("<u4"), "times": times.astype("<i4")},
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FingerprintIndex:
        meta, arrays = unpack(data, _INDEX_KIND)
        names = [str(name) for name in meta["patterns"]]
        lengths = arrays["lengths"]
        if lengths.size != len(names) or int(lengths.sum()) != arrays["hashes"].size:
            raise ValueError("corrupt fingerprint index: lengths do not match")
        index = cls()
        bounds = np.r_[0, np.cumsum(lengths)]
        for k, name in enumerate(names):
            part = slice(int(bounds[k]), int(bounds[k + 1]))
            fp = Fingerprint(
                arrays["hashes"][part],
                arrays["times"][part],
                float(meta["frame_rates"][k]),
                float(meta["durations"][k]),
            )
            index.add(name, fp)
        return index
