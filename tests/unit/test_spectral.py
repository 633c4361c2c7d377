"""harmonic.spectral against librosa 0.11 (the definitions it copies), plus checks independent of librosa."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from scipy.signal import resample_poly

import harmonic
from harmonic import InvalidAudio
from harmonic.spectral import chroma_filterbank, fft_frequencies, hz_to_mel, mel_filterbank, mel_to_hz

# librosa warns when a centered input is shorter than n_fft; that case is tested on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")

SR = 16_000
SR_44K = 44_100
MFCC_TOLERANCE = 0.05  # the product requirement: max |Δ| against librosa.feature.mfcc

SPEECH = ["speech0", "speech1", "speech2"]
SYNTHETIC = ["noise", "tone", "chirp", "silence"]
SIGNALS_16K = [*SPEECH, *SYNTHETIC, "short", "one_sample"]
SIGNALS_44K = ["speech_44k", "noise_44k", "tone_44k", "chirp_44k", "silence_44k"]
ALL_SIGNALS = SIGNALS_16K + SIGNALS_44K


def _tone(freq: float, sr: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)


@pytest.fixture(scope="module")
def speech_44k(speech_clips) -> np.ndarray:
    y, sr = speech_clips[0]
    assert sr == SR
    return resample_poly(y, 441, 160)


@pytest.fixture
def signals(speech_clips, speech_44k, rng) -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (float32 samples, rate): what the pipeline feeds the library (decode_wav gives float32)."""
    made: dict[str, tuple[np.ndarray, int]] = {}
    for i, (y, sr) in enumerate(speech_clips):
        made[f"speech{i}"] = (y, sr)
    for sr, suffix in ((SR, ""), (SR_44K, "_44k")):
        made[f"noise{suffix}"] = (0.1 * rng.standard_normal(sr), sr)
        made[f"tone{suffix}"] = (_tone(440.0, sr), sr)
        made[f"chirp{suffix}"] = (librosa.chirp(fmin=60, fmax=0.45 * sr, sr=sr, duration=1.0), sr)
        made[f"silence{suffix}"] = (np.zeros(sr), sr)
    made["speech_44k"] = (speech_44k, SR_44K)
    made["short"] = (speech_clips[0][0][8_000:8_300], SR)  # shorter than n_fft: frames are all padding
    made["one_sample"] = (np.array([0.25]), SR)
    return {name: (y.astype(np.float32), sr) for name, (y, sr) in made.items()}


def _frames(length: int, hop_length: int, n_fft: int = 512) -> int:
    """Centered frame count: 1 + len // hop for even n_fft, one fewer if n_fft is odd and hop divides len."""
    return 1 + (length + 2 * (n_fft // 2) - n_fft) // hop_length


def _librosa_mfcc(y: np.ndarray, sr: int, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40) -> np.ndarray:
    return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)


# --- MFCC -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_SIGNALS)
def test_mfcc_matches_librosa(signals, name, dtype) -> None:
    y, sr = signals[name]
    y = y.astype(dtype)
    ours = harmonic.mfcc(y, sr)
    reference = _librosa_mfcc(y, sr)
    assert ours.shape == reference.shape == (13, 1 + y.size // 160)
    worst = float(np.abs(ours - reference).max())
    assert worst <= MFCC_TOLERANCE, f"max |Δ| = {worst:.3g} on {name} ({dtype.__name__})"
    if dtype is np.float64:  # both sides in double precision: only rounding differs
        assert worst <= 1e-4, f"max |Δ| = {worst:.3g} on {name} in float64"


@pytest.mark.parametrize(
    ("name", "n_mfcc", "n_fft", "hop_length", "n_mels"),
    [
        ("speech1", 20, 1024, 256, 64),
        ("speech2", 13, 400, 160, 26),
        ("speech0", 40, 2048, 512, 128),
        ("noise", 1, 256, 64, 20),
        ("tone", 13, 256, 300, 32),  # hop longer than the frame
        ("noise", 13, 401, 160, 40),  # odd n_fft, hop dividing the length: one frame fewer
        ("speech1", 13, 401, 100, 40),  # odd n_fft
        ("speech_44k", 13, 1103, 441, 40),  # 25 ms / 10 ms at 44.1 kHz, odd n_fft
        ("chirp_44k", 24, 2048, 512, 96),
    ],
)
def test_mfcc_parameter_sweep(signals, name, n_mfcc, n_fft, hop_length, n_mels) -> None:
    y, sr = signals[name]
    ours = harmonic.mfcc(y, sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    reference = _librosa_mfcc(y, sr, n_mfcc, n_fft, hop_length, n_mels)
    assert ours.shape == reference.shape == (n_mfcc, _frames(y.size, hop_length, n_fft))
    worst = float(np.abs(ours - reference).max())
    assert worst <= MFCC_TOLERANCE, f"max |Δ| = {worst:.3g}"


def test_mfcc_does_not_depend_on_the_input_dtype(signals) -> None:
    y, sr = signals["speech0"]
    np.testing.assert_array_equal(harmonic.mfcc(y, sr), harmonic.mfcc(y.astype(np.float64), sr))
    as_int = np.round(y * 32767).astype(np.int16)
    np.testing.assert_array_equal(harmonic.mfcc(as_int, sr), harmonic.mfcc(as_int.astype(np.float64), sr))


def test_mfcc_of_silence_is_the_dct_of_the_floor() -> None:
    # Every mel band sits at 10 log10(amin) = -100 dB; the orthonormal DCT of a constant vector c over N
    # bands is c * sqrt(N) in c0 and 0 elsewhere.
    coefficients = harmonic.mfcc(np.zeros(SR, dtype=np.float32), SR)
    assert coefficients.shape == (13, 101)
    np.testing.assert_allclose(coefficients[0], -100.0 * np.sqrt(40), rtol=1e-12)
    np.testing.assert_allclose(coefficients[1:], 0.0, atol=1e-9)


# --- STFT -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["speech0", "chirp", "noise", "short", "one_sample", "speech_44k"])
def test_stft_power_matches_librosa(signals, name) -> None:
    y, _ = signals[name]  # float32, as decoded clips
    ours = harmonic.stft_power(y, n_fft=512, hop_length=160)
    assert ours.dtype == np.float64  # computed in double precision whatever the input
    assert ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, harmonic.stft_power(y.astype(np.float64), n_fft=512, hop_length=160))
    reference = np.abs(librosa.stft(y.astype(np.float64), n_fft=512, hop_length=160)) ** 2
    assert ours.shape == reference.shape == (257, 1 + y.size // 160)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * reference.max())
    # librosa transforms float32 input in single precision: the same to float32 rounding.
    single = np.abs(librosa.stft(y, n_fft=512, hop_length=160)) ** 2
    np.testing.assert_allclose(ours, single, rtol=1e-3, atol=1e-6 * reference.max())


@pytest.mark.parametrize(
    ("n_fft", "hop_length", "win_length", "center", "pad_mode"),
    [
        (512, 160, 400, True, "constant"),
        (512, 128, None, True, "reflect"),
        (400, 160, None, True, "edge"),
        (255, 100, 200, True, "symmetric"),  # odd n_fft, window padded unevenly
        (1024, 256, None, False, "constant"),
        (2048, 512, 1500, False, "constant"),
    ],
)
def test_stft_power_options_match_librosa(signals, n_fft, hop_length, win_length, center, pad_mode) -> None:
    y = signals["speech2"][0].astype(np.float64)
    ours = harmonic.stft_power(y, n_fft, hop_length, win_length=win_length, center=center, pad_mode=pad_mode)
    reference = (
        np.abs(
            librosa.stft(
                y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center, pad_mode=pad_mode
            )
        )
        ** 2
    )
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * reference.max())


@pytest.mark.parametrize("length", [1, 2, 159, 160, 161, 255, 256, 257, 511, 512, 513, 2_047, 2_048, 4_000])
@pytest.mark.parametrize(("n_fft", "hop_length"), [(512, 160), (2048, 512), (401, 160)])
def test_frame_count_matches_librosa(rng, length, n_fft, hop_length) -> None:
    y = rng.standard_normal(length)
    ours = harmonic.stft_power(y, n_fft=n_fft, hop_length=hop_length)
    reference = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
    assert ours.shape == reference.shape == (1 + n_fft // 2, _frames(length, hop_length, n_fft))
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * reference.max())


def test_stft_power_of_a_bin_centred_cosine_is_analytic() -> None:
    # A cos(2π k0 n / N) under a periodic Hann window (sum N/2, first DFT coefficients N/2 and -N/4):
    # |X[k0]| = A N / 4 and |X[k0 ± 1]| = A N / 8, every other bin 0 (frames away from the edges).
    n_fft, k0, amplitude = 512, 32, 0.5
    y = amplitude * np.cos(2 * np.pi * k0 * np.arange(SR) / n_fft)
    power = harmonic.stft_power(y, n_fft=n_fft, hop_length=160)[:, 5:-5]
    np.testing.assert_allclose(power[k0], (amplitude * n_fft / 4) ** 2, rtol=1e-9)
    np.testing.assert_allclose(power[[k0 - 1, k0 + 1]], (amplitude * n_fft / 8) ** 2, rtol=1e-9)
    others = np.delete(power, [k0 - 1, k0, k0 + 1], axis=0)
    assert others.max() < 1e-12 * power[k0].max()


def test_long_input_is_transformed_in_blocks_without_seams(rng) -> None:
    y = rng.standard_normal(160 * 5_000)  # 5,001 frames: several blocks
    ours = harmonic.stft_power(y, n_fft=512, hop_length=160)
    reference = np.abs(librosa.stft(y, n_fft=512, hop_length=160)) ** 2
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * reference.max())


# --- mel --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"), [
    (16_000, 512, 40, 0.0, None),
    (16_000, 400, 26, 0.0, None),
    (16_000, 401, 40, 20.0, 7_600.0),
    (44_100, 2048, 128, 0.0, None),
    (44_100, 1103, 40, 0.0, None),
    (22_050, 1024, 64, 50.0, 8_000.0),
    (48_000, 4096, 80, 30.0, 16_000.0),
    (8_000, 256, 20, 0.0, None),
])  # fmt: skip
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax) -> None:
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    reference = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == reference.shape == (n_mels, 1 + n_fft // 2)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    # Built with librosa's float32 roundings, so bit for bit the same filters.
    np.testing.assert_array_equal(ours.astype(np.float32), reference)
    assert not ours.flags.writeable
    assert mel_filterbank(sr, n_fft, n_mels, fmin, fmax) is ours  # cached


def test_slaney_filters_have_unit_area() -> None:
    # Slaney normalization: each triangle, integrated over Hz, is 1 (fine FFT grid so the sum ≈ the integral).
    sr, n_fft = 16_000, 16_384
    areas = mel_filterbank(sr, n_fft, 40).sum(axis=1) * sr / n_fft
    np.testing.assert_allclose(areas, 1.0, rtol=0.01)


def test_mel_scale_is_slaney_and_invertible() -> None:
    hz = np.array([0.0, 200.0 / 3, 500.0, 1_000.0, 4_000.0, 8_000.0, 22_050.0])
    np.testing.assert_allclose(hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-12)
    assert hz_to_mel(1_000.0) == pytest.approx(15.0)
    assert hz_to_mel(6_400.0) == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4 above 1 kHz
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["speech0", "noise", "chirp_44k", "short"])
def test_melspectrogram_matches_librosa(signals, name) -> None:
    y, sr = signals[name]
    y = y.astype(np.float64)
    ours = harmonic.melspectrogram(y, sr, n_fft=512, hop_length=160, n_mels=40)
    reference = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, hop_length=160, n_mels=40)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-7, atol=1e-12 * reference.max())


def test_power_to_db_matches_librosa(rng) -> None:
    S = rng.exponential(size=(40, 100)) * 10.0 ** rng.uniform(-12, 0, size=(40, 100))
    for kwargs in [{}, {"ref": np.max}, {"top_db": None}, {"ref": 2.0, "amin": 1e-5, "top_db": 40.0}]:
        ours = harmonic.power_to_db(S, **kwargs)
        np.testing.assert_allclose(ours, librosa.power_to_db(S, **kwargs), atol=1e-9, err_msg=str(kwargs))
    assert harmonic.power_to_db(S, ref=np.max).max() == 0.0
    clipped = harmonic.power_to_db(S, top_db=30.0)
    assert clipped.min() == pytest.approx(clipped.max() - 30.0)
    with pytest.raises(ValueError, match="amin"):
        harmonic.power_to_db(S, amin=0)
    with pytest.raises(ValueError, match="top_db"):
        harmonic.power_to_db(S, top_db=-1.0)
    D = np.sqrt(S) * np.exp(1j * rng.uniform(0, 2 * np.pi, size=S.shape))
    with pytest.warns(UserWarning, match="complex"):
        np.testing.assert_allclose(harmonic.power_to_db(D), harmonic.power_to_db(np.abs(D)))


# --- chroma -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SIGNALS)
def test_chroma_matches_librosa_chroma_stft(signals, name) -> None:
    y, sr = signals[name]
    ours = harmonic.chroma(y, sr)
    reference = librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0)
    assert ours.shape == reference.shape == (12, 1 + y.size // 512)
    worst = float(np.abs(ours - reference).max())
    assert worst < 1e-4, f"max |Δ| = {worst:.3g} on {name}"


@pytest.mark.parametrize(
    ("name", "n_fft", "hop_length", "n_chroma"),
    [
        ("speech1", 1024, 256, 12),
        ("chirp_44k", 4096, 1024, 24),
        ("tone", 2047, 500, 12),
        ("noise", 512, 160, 36),
    ],
)
def test_chroma_parameter_sweep(signals, name, n_fft, hop_length, n_chroma) -> None:
    y, sr = signals[name]
    ours = harmonic.chroma(y, sr, n_fft=n_fft, hop_length=hop_length, n_chroma=n_chroma)
    reference = librosa.feature.chroma_stft(
        y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_chroma=n_chroma, tuning=0.0
    )
    assert ours.shape == reference.shape == (n_chroma, _frames(y.size, hop_length, n_fft))
    worst = float(np.abs(ours - reference).max())
    assert worst < 1e-4, f"max |Δ| = {worst:.3g}"


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_chroma"), [(22_050, 2048, 12), (16_000, 2047, 12), (44_100, 4096, 24)]
)
def test_chroma_filterbank_matches_librosa(sr, n_fft, n_chroma) -> None:
    ours = chroma_filterbank(float(sr), n_fft, n_chroma)
    reference = librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=0.0)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    assert not ours.flags.writeable


@pytest.mark.parametrize("sr", [SR, SR_44K])
def test_chroma_of_a_tone_peaks_at_its_pitch_class(sr) -> None:
    for freq, pitch_class in [(440.0, 9), (261.63, 0), (392.0, 7), (277.18, 1)]:
        frames = harmonic.chroma(_tone(freq, sr), sr)
        assert np.argmax(frames.mean(axis=1)) == pitch_class, f"{freq} Hz at {sr} Hz"
        assert np.all(frames.max(axis=0) == pytest.approx(1.0))  # each frame scaled to a maximum of 1


# --- centroid and flatness --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SIGNALS)
def test_centroid_and_flatness_match_librosa(signals, name) -> None:
    y, sr = signals[name]
    centroid = harmonic.spectral_centroid(y, sr)
    flatness = harmonic.spectral_flatness(y)
    ref_centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=512, hop_length=160)[0]
    ref_flatness = librosa.feature.spectral_flatness(y=y, n_fft=512, hop_length=160)[0]
    assert centroid.shape == flatness.shape == ref_centroid.shape == (1 + y.size // 160,)
    np.testing.assert_allclose(centroid, ref_centroid, atol=0.01, err_msg=name)  # Hz
    np.testing.assert_allclose(flatness, ref_flatness, atol=1e-4, err_msg=name)


@pytest.mark.parametrize(("n_fft", "hop_length"), [(1024, 256), (2048, 512), (401, 160)])
def test_centroid_and_flatness_parameters_match_librosa(signals, n_fft, hop_length) -> None:
    y, sr = signals["speech_44k"]
    centroid = harmonic.spectral_centroid(y, sr, n_fft=n_fft, hop_length=hop_length)
    flatness = harmonic.spectral_flatness(y, n_fft=n_fft, hop_length=hop_length, amin=1e-8)
    ref_centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length)[0]
    ref_flatness = librosa.feature.spectral_flatness(y=y, n_fft=n_fft, hop_length=hop_length, amin=1e-8)[0]
    np.testing.assert_allclose(centroid, ref_centroid, atol=0.01)
    np.testing.assert_allclose(flatness, ref_flatness, atol=1e-4)


@pytest.mark.parametrize("sr", [SR, SR_44K])
def test_centroid_and_flatness_analytic(rng, sr) -> None:
    tone = _tone(1_000.0, sr)
    centroid = harmonic.spectral_centroid(tone, sr)[5:-5]
    assert np.abs(centroid - 1_000.0).max() < 0.025 * 1_000.0, f"centroid {centroid.min()}..{centroid.max()}"
    assert harmonic.spectral_flatness(tone)[5:-5].max() < 0.01
    noise_flatness = harmonic.spectral_flatness(rng.standard_normal(sr))[5:-5]
    # Periodogram bins of white noise are exponentially distributed: E[log] = log(mean) - γ, so the ratio of
    # geometric to arithmetic mean tends to exp(-γ) ≈ 0.561 (a little lower with a 257-bin estimate).
    assert 0.50 < np.median(noise_flatness) < 0.60, f"median {np.median(noise_flatness):.3f}"


def test_silence_gives_floor_values_not_nans(signals) -> None:
    for name in ["silence", "silence_44k"]:
        y, sr = signals[name]
        assert np.all(harmonic.spectral_centroid(y, sr) == 0.0)
        assert np.all(harmonic.chroma(y, sr) == 0.0)
        np.testing.assert_allclose(harmonic.spectral_flatness(y), 1.0)  # every bin at amin
        assert np.isfinite(harmonic.mfcc(y, sr)).all()


# --- sharing one STFT -------------------------------------------------------------------------------------


def test_precomputed_power_spectrogram_gives_the_same_numbers(signals) -> None:
    y, sr = signals["speech1"]
    power = harmonic.stft_power(y, n_fft=512, hop_length=160)
    np.testing.assert_array_equal(harmonic.mfcc(None, sr, S=power), harmonic.mfcc(y, sr))
    np.testing.assert_array_equal(harmonic.melspectrogram(None, sr, S=power), harmonic.melspectrogram(y, sr))
    np.testing.assert_array_equal(
        harmonic.spectral_centroid(None, sr, S=power), harmonic.spectral_centroid(y, sr)
    )
    np.testing.assert_array_equal(harmonic.spectral_flatness(None, S=power), harmonic.spectral_flatness(y))
    chroma_power = harmonic.stft_power(y, n_fft=2048, hop_length=512)
    np.testing.assert_array_equal(harmonic.chroma(None, sr, S=chroma_power), harmonic.chroma(y, sr))


def test_fft_size_is_inferred_from_s_unless_given(signals) -> None:
    y, sr = signals["speech2"]
    # Rows that do not fit the default n_fft: inferred as 2 * (rows - 1), as librosa (templates use 400).
    power = harmonic.stft_power(y, n_fft=400, hop_length=160)
    np.testing.assert_array_equal(harmonic.mfcc(None, sr, S=power), harmonic.mfcc(y, sr, n_fft=400))
    # An odd n_fft cannot be inferred from the rows; given explicitly it is used.
    odd = harmonic.stft_power(y, n_fft=401, hop_length=160)
    np.testing.assert_array_equal(
        harmonic.spectral_centroid(None, sr, n_fft=401, S=odd), harmonic.spectral_centroid(y, sr, n_fft=401)
    )
    assert fft_frequencies(sr, 401)[-1] == pytest.approx(200 * sr / 401)


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        harmonic.stft_power,
        harmonic.mfcc,
        harmonic.chroma,
        harmonic.spectral_centroid,
        harmonic.spectral_flatness,
    ],
)
def test_bad_audio_is_invalid_audio(function) -> None:
    def call(samples):
        if function in (harmonic.stft_power, harmonic.spectral_flatness):  # no sample rate
            return function(samples)
        return function(samples, SR)

    with pytest.raises(InvalidAudio, match="empty"):
        call(np.zeros(0, dtype=np.float32))
    with pytest.raises(InvalidAudio, match="mono"):
        call(np.zeros((10, 2)))
    with pytest.raises(InvalidAudio, match="NaN or infinite"):
        call(np.array([0.0, np.nan, 0.0]))


def test_bad_parameters() -> None:
    y = np.zeros(1_000)
    with pytest.raises(ValueError, match="n_mfcc"):
        harmonic.mfcc(y, SR, n_mfcc=41, n_mels=40)
    with pytest.raises(ValueError, match="n_mfcc"):
        harmonic.mfcc(y, SR, n_mfcc=0)
    with pytest.raises(ValueError, match="hop_length"):
        harmonic.stft_power(y, hop_length=0)
    with pytest.raises(ValueError, match="win_length"):
        harmonic.stft_power(y, n_fft=256, win_length=300)
    with pytest.raises(ValueError, match="pad_mode"):
        harmonic.stft_power(y, pad_mode="wrap")
    with pytest.raises(ValueError, match="amin"):
        harmonic.spectral_flatness(y, amin=0.0)
    with pytest.raises(TypeError):  # no sample rate: a call written for the former signature fails loudly
        harmonic.spectral_flatness(y, SR)  # type: ignore[misc]
    with pytest.raises(ValueError, match="samples, or a power spectrogram"):
        harmonic.mfcc(None, SR)
    with pytest.raises(ValueError, match="non-negative"):
        harmonic.spectral_centroid(None, SR, S=-np.ones((257, 3)))
    with pytest.raises(ValueError, match="fmin < fmax"):
        mel_filterbank(SR, 512, 40, 4_000.0, 2_000.0)


def test_uncentered_input_shorter_than_a_frame_has_no_frames() -> None:
    assert harmonic.stft_power(np.ones(100), n_fft=512, center=False).shape == (257, 0)
