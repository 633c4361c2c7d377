"""Audio fingerprints: spectral-peak landmarks and an index that finds a noisy excerpt's recording.

After A. Wang, "An Industrial-Strength Audio Search Algorithm", ISMIR 2003:

- **analysis** at 8 kHz: 128 ms Hann frames (1024 points, 7.8 Hz bins) every 16 ms (62.5 frames/s), log
  power in dB. The fine frequency resolution keeps tones of unrelated pieces from sharing bins by chance;
- **constellation**: local maxima of the spectrogram over a (±20 bins × ±5 frames) neighbourhood and above
  the clip's median level, the strongest ``peaks_per_second`` kept in each second, so that the density is
  even over time whatever the loudness (the density parameter; 20 by default);
- **landmarks**: each peak (anchor) is paired with up to ``fan_out`` (12) later peaks 1–127 frames (2 s)
  ahead and within ±126 bins (its target zone); the hash packs (anchor bin: 10 bits, target bin: 10 bits,
  Δt: 7 bits) into 27 bits of a ``uint32`` and is stored with the anchor's frame. Pairs at the same
  frequency (Δf = 0, sustained tones) are skipped: they repeat at every offset and carry no timing. The
  2 s zone (Wang's paper leaves its size open; 1 s before format 3) is for sparse material: a melody of
  single tones has 3–4 peaks per second, and with a 1 s zone a 5 s excerpt of it held 10–25 hashes, too few
  to be significant (``make eval``: "sparse tonal"). Dense music gets about 50 % more hashes from it (the
  fan-out is not always filled within 1 s and ±126 bins);
- **search** (:meth:`FingerprintIndex.query`): every query hash is looked up (``np.searchsorted`` in the
  index's sorted hash array), and so are its two neighbours in Δt (±1 frame): an excerpt's frames fall
  between the recording's (any sample offset), so a pair's frames can round apart by one frame, which loses
  a hash that sparse material cannot spare (a deviation from Wang, whose hashes must match exactly). Every
  hit votes for (recording, time offset = registered frame − query frame, in bins of 2 frames). A true
  match piles its votes into one offset bin. Votes are counted once per 0.256 s *slot* of the query:
  chance coincidences between unrelated recordings come in bursts (one matching chord or phrase gives many
  hashes within a fraction of a second), a true match spreads its evidence over the whole excerpt;
- **significance**: per recording, the best bin's count ``k`` is tested against Poisson(``v / B``), ``v``
  being that recording's votes over all of its ``B`` possible offset bins. The tail probability is
  Bonferroni-corrected by the number of offset bins in the whole index and must be below
  :data:`SIGNIFICANCE` (and ``k ≥`` :data:`MIN_VOTES`), so audio that is not registered returns ``[]``.
  Music is not random (shared tempo grids, keys), so the nominal 1e-4 is optimistic: on a tune with a
  note on every beat, chance votes pile onto multiples of the beat, and 5–15 % of unregistered excerpts
  passed (``make eval``: "grid"). So ``k`` must also be at least :data:`COHORT_RATIO` times the best bin
  of any other recording (:func:`_cohort_votes`: the query's own measure of what chance reaches on this
  material; a deviation from Wang). ``make eval`` measures the real rate.

``Match.score = s / (s + 4)`` with ``s = −log10(corrected p)``: 0.5 at the significance threshold, → 1 for
overwhelming evidence. ``start_s``/``end_s`` locate the query inside the registered recording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harmonic._samples import as_mono_float64
from harmonic.errors import InvalidAudio
from harmonic.matching import Match
from harmonic.serialization import check_format, pack, unpack
from harmonic.spectral import stft_power

SR = 8_000
N_FFT = 1024
HOP = 128
FRAME_RATE = SR / HOP
PEAK_FREQ_RADIUS = 20
PEAK_TIME_RADIUS = 5
MAX_DT = 127
MAX_DF = 126
DT_BITS = 7  # Δt ≤ MAX_DT = 127
BIN_BITS = 10  # bins 0..N_FFT/2
PEAKS_PER_SECOND = 20
FAN_OUT = 12
OFFSET_BIN = 2  # frames per voting bin: tolerates one frame of jitter between query and recording
SLOT_FRAMES = 16  # query frames per vote slot (0.256 s)
SIGNIFICANCE = 1e-4  # family-wise: chance that a query unrelated to every recording matches one
MIN_VOTES = 4
#: A match's best bin must hold at least this many times the votes of the best other recording
#: (:func:`_cohort_votes`). Chosen on the registries of ``make eval`` seeded 100-159 (synthetic music, sparse
#: tonal melodies, and a tune on a strict 0.25 s grid; 900 unregistered excerpts each): chance matches fell
#: from 84 to 3 on the grid and from 11 to 4 on music; true ones, pooled over clean, 0 and -5 dB, from 100 %
#: to 98 % on music and stayed at 96 % on sparse melodies and 100 % on the grid.
COHORT_RATIO = 2.0
COHORT_CANDIDATES = 8  # the best recordings looked through for a cohort (copies at one offset are skipped)
_SCORE_HALF = -math.log10(SIGNIFICANCE)
_FORMAT = 3  # 1: 512-point frames and 24-bit hashes; 2: Δt ≤ 63 frames in 6 bits (before the 2 s zone)
_FP_KIND = b"HFPT"
_INDEX_KIND = b"HFPI"


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Landmark hashes (``uint32``) and their anchor frames (``int32``), sorted by time.

    ``frame_rate`` is frames per second of ``times``; ``duration_s`` the length of the clip fingerprinted.
    """

    hashes: np.ndarray
    times: np.ndarray
    frame_rate: float = FRAME_RATE
    duration_s: float = 0.0

    def __len__(self) -> int:
        return int(self.hashes.size)

    def to_bytes(self) -> bytes:
        """A compact versioned binary form (see :mod:`harmonic.serialization`; never pickle)."""
        meta = {"format": _FORMAT, "frame_rate": self.frame_rate, "duration_s": self.duration_s}
        return pack(_FP_KIND, meta, {"hashes": self.hashes.astype("<u4"), "times": self.times.astype("<i4")})

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """The fingerprint :meth:`to_bytes` wrote; ``ValueError`` for anything else (or an older format)."""
        meta, arrays = unpack(data, _FP_KIND)
        _check_format(meta, "fingerprint")
        try:
            hashes, times = arrays["hashes"], arrays["times"]
            frame_rate, duration_s = float(meta["frame_rate"]), float(meta["duration_s"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"corrupt fingerprint: {error}") from None
        if hashes.ndim != 1 or hashes.shape != times.shape:
            raise ValueError("corrupt fingerprint: hashes and times differ in shape")
        if not (frame_rate > 0 and duration_s >= 0):
            raise ValueError("corrupt fingerprint: bad frame rate or duration")
        return cls(hashes.astype(np.uint32), times.astype(np.int32), frame_rate, duration_s)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Fingerprint)
            and np.array_equal(self.hashes, other.hashes)
            and np.array_equal(self.times, other.times)
            and self.frame_rate == other.frame_rate
            and self.duration_s == other.duration_s
        )

    __hash__ = None  # type: ignore[assignment]


def _check_format(meta: dict, what: str) -> None:
    check_format(meta, _FORMAT, what, "fingerprint the recording again")


def _check_frame_rate(fp: Fingerprint) -> None:
    """Only fingerprints of this module's analysis can share an index (their frames are comparable)."""
    if not math.isclose(fp.frame_rate, FRAME_RATE):
        raise ValueError(f"fingerprint frame rate {fp.frame_rate} differs from the index's {FRAME_RATE}")


def _peaks(log_power: np.ndarray, peaks_per_second: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) of the constellation, the strongest ``peaks_per_second`` in each second."""
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


def _landmarks(frames: np.ndarray, bins: np.ndarray, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair each peak with the next ``fan_out`` peaks inside its target zone (vectorized over anchors)."""
    n = frames.size
    if n < 2 or fan_out < 1:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32)
    look_ahead = 4 * fan_out
    anchors = np.arange(n)[:, None]
    targets = anchors + np.arange(1, look_ahead + 1)[None, :]
    inside = targets < n
    targets = np.minimum(targets, n - 1)
    dt = frames[targets] - frames[anchors]
    df = bins[targets] - bins[anchors]
    valid = inside & (dt >= 1) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF) & (df != 0)
    valid &= np.cumsum(valid, axis=1) <= fan_out
    a_index, t_index = np.nonzero(valid)
    target = targets[a_index, t_index]
    hashes = (
        (bins[a_index].astype(np.uint32) << (DT_BITS + BIN_BITS))
        | (bins[target].astype(np.uint32) << DT_BITS)
        | dt[a_index, t_index].astype(np.uint32)
    )
    return hashes, frames[a_index].astype(np.int32)


def can_fingerprint(n_samples: int, sr: int) -> bool:
    """Whether a clip of ``n_samples`` samples at ``sr`` Hz is long enough for :func:`fingerprint`.

    A clip shorter than one analysis frame at the fingerprint rate (:data:`N_FFT` samples at :data:`SR`,
    128 ms) holds no landmark: :func:`fingerprint` refuses it with :class:`InvalidAudio`. This is the test it
    applies, ``n_samples / sr >= N_FFT / SR`` in exact integer arithmetic (``n_samples * SR >= N_FFT * sr``),
    for callers that would rather skip a short clip than fail on it. At 16 kHz the shortest clip is 2048
    samples. ``ValueError`` for a negative ``n_samples`` or a non-positive ``sr``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise ValueError(f"n_samples must be a non-negative integer; got {n_samples!r}")
    if isinstance(sr, bool) or not (sr > 0 and math.isfinite(sr)):
        raise ValueError(f"sr must be a positive sample rate; got {sr!r}")
    return int(n_samples) * SR >= N_FFT * sr


def fingerprint(
    samples: np.ndarray, sr: int, peaks_per_second: int = PEAKS_PER_SECOND, fan_out: int = FAN_OUT
) -> Fingerprint:
    """The landmark fingerprint of a mono clip at any rate (resampled to 8 kHz).

    About ``peaks_per_second × fan_out`` hashes per second (fewer in silence: a silent clip has none).
    Raises :class:`InvalidAudio` for samples that are not mono ``(n,)``, empty, non-finite or not numbers, and
    for a clip shorter than one 128 ms frame (:func:`can_fingerprint` says which are long enough).
    """
    y = as_mono_float64(samples, name="fingerprint")
    if peaks_per_second < 1:
        raise ValueError(f"peaks_per_second must be ≥ 1, got {peaks_per_second}")
    if not can_fingerprint(y.size, sr):
        raise InvalidAudio(
            f"the clip is {y.size / sr:.3f} s long; at least {N_FFT / SR:.3f} s is needed to fingerprint"
        )
    if sr != SR:
        from harmonic.resample import resample

        y = resample(y, sr, SR)  # ceil(y.size * SR / sr) >= N_FFT samples: at least one whole frame
    log_power = 10.0 * np.log10(stft_power(y, n_fft=N_FFT, hop_length=HOP) + 1e-10)
    frames, bins = _peaks(log_power, peaks_per_second)
    hashes, times = _landmarks(frames, bins, fan_out)
    return Fingerprint(hashes, times, FRAME_RATE, y.size / SR)


def _with_dt_neighbours(hashes: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The query's hashes and, for each, the same pair with Δt one frame shorter and one longer (within
    1..MAX_DT), with their anchor frames: what :meth:`FingerprintIndex.query` looks up."""
    dt = hashes & np.uint32((1 << DT_BITS) - 1)
    shorter, longer = dt > 1, dt < MAX_DT
    return (
        np.concatenate([hashes, hashes[shorter] - np.uint32(1), hashes[longer] + np.uint32(1)]),
        np.concatenate([times, times[shorter], times[longer]]),
    )


def _cohort_votes(best_votes: np.ndarray, best_offsets: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each ``wanted`` recording (the others get 0: only those past the significance test need it),
    the most votes any *other* recording has in its best offset bin, among those whose best bin lies
    elsewhere (two or more bins away: a recording registered twice, or twice under two names, agrees on
    the offset and is not counted against its copy). 0 with no such recording.

    It is the query's own measure of chance: an excerpt unrelated to every recording still gives each its
    best bin, and how full those bins are shows what coincidence reaches on this material. Music on a tempo
    grid with a steady pulse concentrates chance votes on a few offsets (multiples of the beat), which the
    Poisson test, spreading them evenly, takes for evidence; a true match stands out of this cohort."""
    order = np.argsort(-best_votes, kind="stable")
    cohort = np.zeros(best_votes.size, dtype=np.float64)
    candidates = order[:COHORT_CANDIDATES]
    for index in np.flatnonzero(wanted):
        for other in candidates:
            if other != index and abs(int(best_offsets[other]) - int(best_offsets[index])) >= 2:
                cohort[index] = best_votes[other]
                break
    return cohort


def _log_poisson_tail(k: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Natural log of P(X ≥ k) for X ~ Poisson(rate): the leading term times the geometric bound on the
    rest (tight when k ≫ rate, which is the only case that matters here)."""
    k = k.astype(np.float64)
    rate = np.maximum(rate, 1e-300)
    log_pmf = k * np.log(rate) - rate - np.array([math.lgamma(v + 1.0) for v in k])
    ratio = np.minimum(rate / (k + 1.0), 0.999)
    return np.minimum(0.0, log_pmf - np.log1p(-ratio))


class FingerprintIndex:
    """Registered fingerprints, searchable by :meth:`query`.

    ``add``/``remove`` are O(1); the sorted lookup arrays (hash, recording, frame) are rebuilt on the
    first query after a change (about 10 ms per million hashes).
    """

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

    def ids(self) -> list[str]:
        return list(self._entries)

    def add(self, pattern_id: str, fp: Fingerprint) -> None:
        """Register (or replace) a recording's fingerprint under ``pattern_id``."""
        _check_frame_rate(fp)
        self._entries[pattern_id] = fp
        self._dirty = True

    def remove(self, pattern_id: str) -> None:
        """Forget ``pattern_id`` (no error when it is not registered)."""
        if self._entries.pop(pattern_id, None) is not None:
            self._dirty = True

    def _build(self) -> None:
        self._names = list(self._entries)
        fps = [self._entries[name] for name in self._names]
        if fps:
            hashes = np.concatenate([fp.hashes for fp in fps])
            times = np.concatenate([fp.times for fp in fps])
            ids = np.repeat(np.arange(len(fps), dtype=np.int32), [fp.hashes.size for fp in fps])
            order = np.argsort(hashes, kind="stable")
            self._hashes, self._times, self._ids = hashes[order], times[order], ids[order]
        else:
            self._hashes = np.zeros(0, dtype=np.uint32)
            self._ids = self._times = np.zeros(0, dtype=np.int32)
        self._durations = np.array([fp.duration_s for fp in fps], dtype=np.float64)
        self._dirty = False

    def query(self, fp: Fingerprint, max_results: int = 5) -> list[Match]:
        """Registered recordings that contain the query, best first; ``[]`` when nothing is significant.

        ``start_s``/``end_s`` say where the query lies in the registered recording (its offset ± one frame).
        """
        if self._dirty:
            self._build()
        if fp.hashes.size == 0 or self._hashes.size == 0:
            return []
        _check_frame_rate(fp)
        query_hashes, query_frames_of_hashes = _with_dt_neighbours(fp.hashes, fp.times)
        left = np.searchsorted(self._hashes, query_hashes, side="left")
        counts = np.searchsorted(self._hashes, query_hashes, side="right") - left
        total = int(counts.sum())
        if total == 0:
            return []
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        hit = np.repeat(left, counts) + within
        ids = self._ids[hit].astype(np.int64)
        query_times = np.repeat(query_frames_of_hashes.astype(np.int64), counts)
        offset_bin = np.floor_divide(self._times[hit].astype(np.int64) - query_times, OFFSET_BIN)
        shift = int(offset_bin.min())
        span = int(offset_bin.max()) - shift + 1
        slot = query_times // SLOT_FRAMES
        slots = int(slot.max()) + 1
        # one vote per (recording, offset bin, query slot); keys sort by recording, then offset
        votes_keys = np.unique((ids * span + (offset_bin - shift)) * slots + slot) // slots
        keys, votes = np.unique(votes_keys, return_counts=True)
        key_ids = keys // span
        order = np.lexsort((-votes, key_ids))
        first = np.flatnonzero(np.r_[True, np.diff(key_ids[order]) != 0])
        best = order[first]  # the best offset bin of each recording that has votes
        best_ids, best_votes = key_ids[best], votes[best]
        votes_per_id = np.bincount(key_ids, weights=votes, minlength=len(self._names))[best_ids]
        query_frames = fp.duration_s * fp.frame_rate
        possible_bins = (self._durations * fp.frame_rate + query_frames) / OFFSET_BIN + 1.0
        rate = votes_per_id / possible_bins[best_ids]  # chance votes per offset bin, spread evenly
        log_p = _log_poisson_tail(best_votes, rate)
        log_p_corrected = np.minimum(0.0, log_p + math.log(float(possible_bins.sum())))
        significant = (log_p_corrected < math.log(SIGNIFICANCE)) & (best_votes >= MIN_VOTES)
        best_offsets = keys[best] % span
        significant &= best_votes >= COHORT_RATIO * _cohort_votes(best_votes, best_offsets, significant)
        matches = []
        for index in np.flatnonzero(significant):
            offset_s = float((best_offsets[index] + shift) * OFFSET_BIN / fp.frame_rate)
            evidence = float(-log_p_corrected[index] / math.log(10.0))
            start = max(0.0, offset_s)
            matches.append(
                Match(
                    self._names[int(best_ids[index])],
                    round(evidence / (evidence + _SCORE_HALF), 4),
                    round(start, 3),
                    round(start + fp.duration_s, 3),
                )
            )
        matches.sort(key=lambda match: match.score, reverse=True)
        return matches[:max_results]

    def to_bytes(self) -> bytes:
        """Every registered fingerprint in one versioned binary blob (never pickle)."""
        names = list(self._entries)
        fps = [self._entries[name] for name in names]
        meta = {
            "format": _FORMAT,
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
        """The index :meth:`to_bytes` wrote; ``ValueError`` for anything else (or an older format)."""
        meta, arrays = unpack(data, _INDEX_KIND)
        _check_format(meta, "fingerprint index")
        try:
            names = [str(name) for name in meta["patterns"]]
            frame_rates = [float(rate) for rate in meta["frame_rates"]]
            durations = [float(duration) for duration in meta["durations"]]
            lengths, hashes, times = arrays["lengths"], arrays["hashes"], arrays["times"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"corrupt fingerprint index: {error}") from None
        if not (
            lengths.size == len(names) == len(frame_rates) == len(durations)
            and np.all(lengths >= 0)
            and int(lengths.sum()) == hashes.size == times.size
        ):
            raise ValueError("corrupt fingerprint index: lengths do not match")
        index = cls()
        bounds = np.r_[0, np.cumsum(lengths)]
        for k, name in enumerate(names):
            part = slice(int(bounds[k]), int(bounds[k + 1]))
            fp = Fingerprint(
                hashes[part].astype(np.uint32), times[part].astype(np.int32), frame_rates[k], durations[k]
            )
            index.add(name, fp)
        return index
