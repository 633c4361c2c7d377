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

- **renditions** (a deviation from Wang, whose landmarks cannot tell them apart): landmarks are pairs of
  peak frequencies and their spacing in time, which the same notes on the same beat reproduce whatever
  plays them, so a re-orchestration of a registered theme matches it (scores 0.52–0.78, as high as true
  excerpts at 0 dB). Every fingerprint therefore also keeps a *sketch* (:func:`_sketch`: its tonal peaks,
  and where in the telephone band it has energy, in 64 ms frames), and a significant match is verified
  against the registered recording's (:func:`is_other_rendition`): the query must not hold many overtones
  of the recording's notes that the recording lacks (another instrument's partials), nor lack many of the
  recording's own tonal peaks (an instrument with fewer partials). Noise, codecs, a telephone band, reverb
  and speech over the music add or remove energy too, but not on the recording's overtones and not out of
  the query's 45 dB range. ``query(near_duplicates=True)`` skips the verification. ``make eval``
  ("renditions", bench/eval_renditions.py) measures both sides.

``Match.score = s / (s + 4)`` with ``s = −log10(corrected p)``: 0.5 at the significance threshold, → 1 for
overwhelming evidence. ``start_s``/``end_s`` locate the query inside the registered recording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
# the rendition sketch (the verification after the vote: "renditions" in the module docstring)
SKETCH_POOL = 4  # analysis frames per sketch frame (64 ms)
SKETCH_LOW_BIN = int(300 * N_FFT / SR)  # 300 Hz: the energy map and the compared peaks span a telephone band
SKETCH_HIGH_BIN = int(3400 * N_FFT / SR) + 1  # 3400 Hz (exclusive bin 436)
SKETCH_BINS = SKETCH_HIGH_BIN - SKETCH_LOW_BIN
TONAL_LOW_BIN = 8  # 62.5 Hz: tonal peaks are kept from here, so that a low fundamental can own an overtone
ENERGY_RANGE_DB = 45.0  # "has energy here": within this many dB of the clip's 99.9th-percentile level
TONAL_PROMINENCE_DB = 15.0  # a tonal peak stands this far above its frame's median level...
TONAL_RANGE_DB = 20.0  # ...and within this many dB of its frame's strongest bin
REVERB_SKETCH_FRAMES = 15  # a query peak may be explained by the recording's energy up to ~1 s earlier
SKETCH_SLACK_FRAMES = 2  # and up to 2 sketch frames (128 ms) either way: offset rounding, a tempo 2 % off
HARMONIC_TOLERANCE_BINS = 2  # an overtone lies within 2 bins (16 Hz) of k × a recording's tonal peak
MAX_HARMONIC = 10
MAX_FOREIGN_OVERTONES = 0.18  # share of the query's tonal peaks that are overtones the recording lacks
MAX_MISSING_PEAKS = 0.25  # share of the recording's tonal peaks that the query has no energy at
MIN_SKETCH_PEAKS = 10  # fewer peaks to compare: no verdict (the match stands)
_TONAL_KEY = 1024  # tonal peaks are stored as sketch frame × 1024 + bin
_FORMAT = 4  # 1: 512-point frames, 24-bit hashes; 2: Δt ≤ 63 frames (before the 2 s zone); 3: no sketch
_FP_KIND = b"HFPT"
_INDEX_KIND = b"HFPI"


def _no_tonal_peaks() -> np.ndarray:
    return np.zeros(0, dtype=np.int32)


def _no_energy() -> np.ndarray:
    return np.zeros((SKETCH_BINS, 0), dtype=bool)


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Landmark hashes (``uint32``) and their anchor frames (``int32``), sorted by time, and the clip's
    rendition sketch.

    ``frame_rate`` is frames per second of ``times``; ``duration_s`` the length of the clip fingerprinted.
    The sketch (:func:`_sketch`) is what :meth:`FingerprintIndex.query` compares to tell the recording from
    another rendition of the same notes: ``tonal``, the clip's tonal peaks as ``sketch frame × 1024 + bin``
    (``int32``), and ``energy``, where it has energy (``bool``, :data:`SKETCH_BINS` × sketch frames). A
    fingerprint built without them (empty) is matched without that verification.
    """

    hashes: np.ndarray
    times: np.ndarray
    frame_rate: float = FRAME_RATE
    duration_s: float = 0.0
    tonal: np.ndarray = field(default_factory=_no_tonal_peaks)
    energy: np.ndarray = field(default_factory=_no_energy)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def to_bytes(self) -> bytes:
        """A compact versioned binary form (see :mod:`harmonic.serialization`; never pickle)."""
        meta = {
            "format": _FORMAT,
            "frame_rate": self.frame_rate,
            "duration_s": self.duration_s,
            "energy_frames": int(self.energy.shape[1]),
        }
        arrays = {
            "hashes": self.hashes.astype("<u4"),
            "times": self.times.astype("<i4"),
            "tonal": self.tonal.astype("<i4"),
            "energy": np.packbits(self.energy.ravel()),
        }
        return pack(_FP_KIND, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """The fingerprint :meth:`to_bytes` wrote; ``ValueError`` for anything else (or an older format)."""
        meta, arrays = unpack(data, _FP_KIND)
        _check_format(meta, "fingerprint")
        try:
            hashes, times = arrays["hashes"], arrays["times"]
            frame_rate, duration_s = float(meta["frame_rate"]), float(meta["duration_s"])
            tonal, energy = _read_sketch(arrays["tonal"], arrays["energy"], meta["energy_frames"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"corrupt fingerprint: {error}") from None
        if hashes.ndim != 1 or hashes.shape != times.shape:
            raise ValueError("corrupt fingerprint: hashes and times differ in shape")
        if not (frame_rate > 0 and duration_s >= 0):
            raise ValueError("corrupt fingerprint: bad frame rate or duration")
        return cls(hashes.astype(np.uint32), times.astype(np.int32), frame_rate, duration_s, tonal, energy)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Fingerprint)
            and np.array_equal(self.hashes, other.hashes)
            and np.array_equal(self.times, other.times)
            and self.frame_rate == other.frame_rate
            and self.duration_s == other.duration_s
            and np.array_equal(self.tonal, other.tonal)
            and np.array_equal(self.energy, other.energy)
        )

    __hash__ = None  # type: ignore[assignment]


def _read_sketch(
    tonal: np.ndarray, packed_energy: np.ndarray, energy_frames: object
) -> tuple[np.ndarray, ...]:
    """The sketch's arrays as :meth:`Fingerprint.to_bytes` stored them, checked: ``ValueError`` when the
    energy map's size or a tonal peak's frame or bin is out of range."""
    if isinstance(energy_frames, bool) or not isinstance(energy_frames, int) or energy_frames < 0:
        raise ValueError(f"energy_frames must be a non-negative integer, got {energy_frames!r}")
    cells = SKETCH_BINS * energy_frames
    if packed_energy.ndim != 1 or packed_energy.size != -(-cells // 8):
        raise ValueError("the energy map's size does not match energy_frames")
    energy = np.unpackbits(packed_energy.astype(np.uint8), count=cells).astype(bool)
    tonal = tonal.astype(np.int32)
    if tonal.ndim != 1:
        raise ValueError("tonal peaks must be one-dimensional")
    bins = tonal % _TONAL_KEY
    if tonal.size and not (
        tonal.min() >= 0
        and tonal.max() // _TONAL_KEY < energy_frames
        and bins.min() >= TONAL_LOW_BIN
        and bins.max() < SKETCH_HIGH_BIN
    ):
        raise ValueError("a tonal peak lies outside the clip's frames or the sketch's bins")
    return tonal, energy.reshape(SKETCH_BINS, energy_frames)


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
    tonal, energy = _sketch(log_power)
    return Fingerprint(hashes, times, FRAME_RATE, y.size / SR, tonal, energy)


def _sketch(log_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip's rendition sketch from its log power (bins × frames), frames pooled by :data:`SKETCH_POOL`:

    - ``energy``: for each bin of the telephone band (300–3400 Hz) and sketch frame, whether the clip has
      energy there: its level, the maximum over ±2 bins and the pooled frames, within
      :data:`ENERGY_RANGE_DB` of the clip's 99.9th-percentile level;
    - ``tonal``: its tonal peaks from :data:`TONAL_LOW_BIN` (62.5 Hz) to 3400 Hz: local maxima over ±3 bins
      at least :data:`TONAL_PROMINENCE_DB` above their frame's median level (noise peaks are not) and
      within :data:`TONAL_RANGE_DB` of the frame's strongest bin (a note's partials, not a codec's
      artifacts), as ``sketch frame × 1024 + bin``, each once.
    """
    from scipy.ndimage import maximum_filter1d

    n_frames = log_power.shape[1]
    pad = (-n_frames) % SKETCH_POOL
    band = maximum_filter1d(log_power[SKETCH_LOW_BIN:SKETCH_HIGH_BIN], 5, axis=0)
    pooled = np.pad(band, ((0, 0), (0, pad)), constant_values=-np.inf)
    pooled = pooled.reshape(SKETCH_BINS, -1, SKETCH_POOL).max(axis=2)
    energy = pooled >= np.percentile(log_power, 99.9) - ENERGY_RANGE_DB
    above = log_power[TONAL_LOW_BIN:SKETCH_HIGH_BIN]
    is_tonal = (
        (above >= maximum_filter1d(above, 7, axis=0))
        & (above >= np.median(log_power, axis=0) + TONAL_PROMINENCE_DB)
        & (above >= log_power.max(axis=0) - TONAL_RANGE_DB)
    )
    bins, frames = np.nonzero(is_tonal)
    tonal = np.unique((frames // SKETCH_POOL) * _TONAL_KEY + bins + TONAL_LOW_BIN).astype(np.int32)
    return tonal, energy


def _lacking(
    peaks: np.ndarray, energy: np.ndarray, shift: int, before: int, after: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each tonal peak (``sketch frame × 1024 + bin``, bins ≥ 300 Hz), whether ``energy`` has none at
    its bin within ``[frame + shift − before, frame + shift + after]``; peaks whose shifted frame lies
    outside ``energy`` are dropped (the first array says which were kept, the second is for those). Only
    the frames around the kept peaks are filtered, so a long recording costs no more than a short one."""
    from scipy.ndimage import maximum_filter1d

    frames, bins = peaks // _TONAL_KEY + shift, peaks % _TONAL_KEY
    kept = (frames >= 0) & (frames < energy.shape[1]) & (bins >= SKETCH_LOW_BIN)
    if not kept.any():
        return kept, np.zeros(0, dtype=bool)
    first = max(0, int(frames[kept].min()) - before)  # the filter's whole reach, cut only by the clip's ends
    window = energy[:, first : int(frames[kept].max()) + after + 1].view(np.uint8)
    size = before + after + 1
    near = maximum_filter1d(window, size, axis=1, origin=size // 2 - after) if size > 1 else window
    return kept, near[bins[kept] - SKETCH_LOW_BIN, frames[kept] - first] == 0


def _overtones_of(peaks: np.ndarray, tonal: np.ndarray, shift: int, n_frames: int) -> np.ndarray:
    """For each peak (``sketch frame × 1024 + bin``), whether it lies within
    :data:`HARMONIC_TOLERANCE_BINS` of k × (the bin of one of ``tonal``'s peaks), k = 2..:data:`MAX_HARMONIC`,
    at the peak's frame + ``shift`` ± 1 (``tonal`` spans ``n_frames`` sketch frames). Only the frames the
    peaks fall on (± 1) are laid out, so a long recording costs no more than a short one."""
    frames = peaks // _TONAL_KEY + shift
    inside = (frames >= 0) & (frames < n_frames)
    if not inside.any() or tonal.size == 0:
        return np.zeros(peaks.size, dtype=bool)
    first = max(0, int(frames[inside].min()) - 1)
    last = min(n_frames, int(frames[inside].max()) + 2)
    tonal_frames = tonal // _TONAL_KEY
    near = tonal[(tonal_frames >= first) & (tonal_frames < last)]
    span = last - first
    present = np.zeros((span + 2, SKETCH_HIGH_BIN + 1), dtype=bool)  # one frame of margin each side
    present[near // _TONAL_KEY - first + 1, near % _TONAL_KEY] = True
    present = present[:-2] | present[1:-1] | present[2:]  # ± 1 frame
    counts = np.concatenate(
        [np.zeros((span, 1), np.int32), np.cumsum(present, axis=1, dtype=np.int32)], axis=1
    )
    bins = peaks % _TONAL_KEY
    rows = np.clip(frames - first, 0, span - 1)
    found = np.zeros(peaks.size, dtype=bool)
    for k in range(2, MAX_HARMONIC + 1):
        low = np.clip(-(-(bins - HARMONIC_TOLERANCE_BINS) // k), 0, SKETCH_HIGH_BIN)
        high = np.clip((bins + HARMONIC_TOLERANCE_BINS) // k + 1, 0, SKETCH_HIGH_BIN + 1)
        found |= inside & (high > low) & (counts[rows, high] - counts[rows, np.minimum(low, high)] > 0)
    return found


def rendition_measures(registered: Fingerprint, query: Fingerprint, offset_frames: int) -> dict[str, float]:
    """How the query differs from the registered recording beyond what noise, a codec, a telephone band,
    an equalizer or reverb do, with the query at ``offset_frames`` (registered frame − query frame):

    - ``foreign_overtones``: the share of the query's tonal peaks (in the telephone band, inside the
      recording's span) that the recording has no energy near (same bin ± 2, from ~1 s before to 128 ms
      after: reverb prolongs notes, never anticipates them) *and* that lie on an overtone (2..10 ×) of a
      tonal peak of the recording at that time: another instrument playing the recording's notes. Noise,
      speech over the music and codec artifacts are rarely on the recording's overtones;
    - ``missing_peaks``: the share of the recording's tonal peaks (telephone band, where the query plays
      the recording's notes: within 128 ms of a query tonal peak the recording explains, so not where the
      recording was cut off) where the query has no energy within 128 ms: partials that another
      instrument lacks. An equalizer or a telephone band lowers them, and noise covers them, but neither
      takes them out of the query's 45 dB range;
    - ``compared``: the fewer of the two peak counts (below :data:`MIN_SKETCH_PEAKS`: no verdict).
    """
    shift = round(offset_frames / SKETCH_POOL)
    n_registered = registered.energy.shape[1]
    kept, lacking = _lacking(query.tonal, registered.energy, shift, REVERB_SKETCH_FRAMES, SKETCH_SLACK_FRAMES)
    foreign = lacking & _overtones_of(query.tonal[kept], registered.tonal, shift, n_registered)
    # the recording's peaks are looked for only where the query plays its notes: a sketch frame within
    # 128 ms of a query tonal peak the recording explains (not where the recording was cut off, or is silent)
    n_query_frames = query.energy.shape[1]
    playing = np.zeros(n_query_frames + 2 * SKETCH_SLACK_FRAMES, dtype=bool)
    explained = query.tonal[kept][~lacking] // _TONAL_KEY
    for step in range(2 * SKETCH_SLACK_FRAMES + 1):
        playing[explained + step] = True
    playing = playing[SKETCH_SLACK_FRAMES : SKETCH_SLACK_FRAMES + n_query_frames]
    at = registered.tonal // _TONAL_KEY - shift
    inside_query = (at >= 1) & (at < n_query_frames - 1)
    inside_query[inside_query] = playing[at[inside_query]]
    kept_r, missing = _lacking(
        registered.tonal[inside_query], query.energy, -shift, SKETCH_SLACK_FRAMES, SKETCH_SLACK_FRAMES
    )
    n_query, n_registered_peaks = int(kept.sum()), int(kept_r.sum())
    return {
        "foreign_overtones": float(foreign.sum() / n_query) if n_query else 0.0,
        "missing_peaks": float(missing.sum() / n_registered_peaks) if n_registered_peaks else 0.0,
        "compared": float(min(n_query, n_registered_peaks)),
    }


def is_other_rendition(
    registered: Fingerprint, query: Fingerprint, offset_frames: int, denoised: bool = False
) -> bool:
    """Whether the query, matched to ``registered`` at ``offset_frames``, is another rendition of its notes
    (a re-orchestration, a cover on other instruments) rather than the recording itself:
    :func:`rendition_measures` past :data:`MAX_FOREIGN_OVERTONES` or :data:`MAX_MISSING_PEAKS`, with at
    least :data:`MIN_SKETCH_PEAKS` peaks compared. False for a fingerprint without a sketch.

    ``denoised``: the query went through a speech enhancer (the service's DeepFilterNet3), which takes a
    music recording's partials out (38–61 % of its tonal peaks lost on synthetic music, clean or noisy)
    but adds none, so only the foreign overtones count.
    """
    measures = rendition_measures(registered, query, offset_frames)
    if measures["compared"] < MIN_SKETCH_PEAKS:
        return False
    if measures["foreign_overtones"] > MAX_FOREIGN_OVERTONES:
        return True
    return not denoised and measures["missing_peaks"] > MAX_MISSING_PEAKS


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

    def get(self, pattern_id: str) -> Fingerprint:
        """The fingerprint registered under ``pattern_id`` (``KeyError`` when there is none)."""
        return self._entries[pattern_id]

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

    def query(
        self, fp: Fingerprint, max_results: int = 5, near_duplicates: bool = False, denoised: bool = False
    ) -> list[Match]:
        """Registered recordings that contain the query, best first; ``[]`` when nothing is significant.

        ``start_s``/``end_s`` say where the query lies in the registered recording (its offset ± one frame).
        A significant match that :func:`is_other_rendition` calls another rendition of the recording's
        notes (a re-orchestration) is left out unless ``near_duplicates``; ``denoised``: the query went
        through a speech enhancer (:func:`is_other_rendition`).
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
            offset_frames = int((best_offsets[index] + shift) * OFFSET_BIN)
            registered = self._entries[self._names[int(best_ids[index])]]
            if not near_duplicates and is_other_rendition(registered, fp, offset_frames, denoised):
                continue
            offset_s = float(offset_frames / fp.frame_rate)
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
            "energy_frames": [int(fp.energy.shape[1]) for fp in fps],
        }
        energies = [np.packbits(fp.energy.ravel()) for fp in fps]

        def joined(parts: list[np.ndarray], dtype: str) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return pack(
            _INDEX_KIND,
            meta,
            {
                "lengths": np.array([fp.hashes.size for fp in fps], dtype="<i8"),
                "hashes": joined([fp.hashes for fp in fps], "<u4"),
                "times": joined([fp.times for fp in fps], "<i4"),
                "tonal_lengths": np.array([fp.tonal.size for fp in fps], dtype="<i8"),
                "tonal": joined([fp.tonal for fp in fps], "<i4"),
                "energy_lengths": np.array([part.size for part in energies], dtype="<i8"),
                "energy": joined(energies, "|u1"),
            },
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
            energy_frames = list(meta["energy_frames"])
            lengths, hashes, times = arrays["lengths"], arrays["hashes"], arrays["times"]
            tonal_lengths, tonal = arrays["tonal_lengths"], arrays["tonal"]
            energy_lengths, energy = arrays["energy_lengths"], arrays["energy"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"corrupt fingerprint index: {error}") from None
        counted = (
            (lengths, hashes.size),
            (lengths, times.size),
            (tonal_lengths, tonal.size),
            (energy_lengths, energy.size),
        )
        if not (
            len(names) == len(frame_rates) == len(durations) == len(energy_frames)
            and all(
                part.size == len(names) and np.all(part >= 0) and int(part.sum()) == total
                for part, total in counted
            )
        ):
            raise ValueError("corrupt fingerprint index: lengths do not match")
        index = cls()
        bounds = [np.r_[0, np.cumsum(part)] for part in (lengths, tonal_lengths, energy_lengths)]
        for k, name in enumerate(names):
            hashes_of, tonal_of, energy_of = (slice(int(b[k]), int(b[k + 1])) for b in bounds)
            try:
                peaks, energy_map = _read_sketch(tonal[tonal_of], energy[energy_of], energy_frames[k])
            except ValueError as error:
                raise ValueError(f"corrupt fingerprint index: {name}: {error}") from None
            fp = Fingerprint(
                hashes[hashes_of].astype(np.uint32),
                times[hashes_of].astype(np.int32),
                frame_rates[k],
                durations[k],
                peaks,
                energy_map,
            )
            index.add(name, fp)
        return index
