"""decode_wav / encode_wav: every accepted format against independent decoders, and every rejection."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmonic import Clip, InvalidAudio, WavLimits, decode_wav, encode_wav
from tests.conftest import SPEECH_FILES, read_wav_reference

SR = 16_000
SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]
# One quantization step of each format, the decoder's permitted error against an exact reference.
STEP = {"PCM_U8": 1 / 128, "PCM_16": 1 / 32768, "PCM_24": 2**-23, "PCM_32": 2**-31, "FLOAT": 0, "DOUBLE": 0}


def _signal(rng: np.random.Generator, frames: int = 1600, channels: int = 1) -> np.ndarray:
    t = np.arange(frames) / SR
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = tone[:, None] + 0.2 * rng.uniform(-1, 1, (frames, channels))
    return np.clip(x, -0.99, 0.99)


def _soundfile_wav(x: np.ndarray, subtype: str, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, x, SR, subtype=subtype, format=fmt)
    return buffer.getvalue()


def _soundfile_mono(data: bytes) -> np.ndarray:
    y, _ = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return y.mean(axis=1)


@pytest.mark.parametrize("subtype", SUBTYPES)
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("container", ["WAV", "WAVEX"])
def test_decodes_what_libsndfile_writes(rng, subtype, channels, container) -> None:
    x = _signal(rng, channels=channels)
    data = _soundfile_wav(x, subtype, container)
    clip = decode_wav(data)
    expected = _soundfile_mono(data)
    assert clip.samples.dtype == np.float32
    assert clip.samples.ndim == 1
    assert clip.sample_rate == SR
    assert clip.channels == channels
    assert clip.samples.shape == (x.shape[0],)
    np.testing.assert_allclose(clip.samples, expected, atol=1e-6 + STEP[subtype])


@pytest.mark.parametrize("subtype", SUBTYPES)
@pytest.mark.parametrize("extensible", [False, True])
def test_encode_is_read_back_by_libsndfile(rng, subtype, extensible) -> None:
    x = _signal(rng, channels=2)
    data = encode_wav(x, SR, subtype=subtype, extensible=extensible)
    y, sr = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    info = soundfile.info(io.BytesIO(data))
    assert sr == SR
    assert info.subtype == subtype
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-7 + STEP[subtype])
    np.testing.assert_allclose(decode_wav(data).samples, x.mean(axis=1), atol=1e-7 + STEP[subtype])


def test_speech_fixtures_match_scipy() -> None:
    for path in SPEECH_FILES:
        reference, sr = read_wav_reference(path)
        clip = decode_wav(path.read_bytes())
        assert clip.sample_rate == sr == SR
        np.testing.assert_array_equal(clip.samples, reference.astype(np.float32))
        assert clip.duration_s == pytest.approx(reference.size / sr)
        assert clip.sample_format == "pcm16"


def test_full_scale_integers_map_to_minus_one_and_just_below_one() -> None:
    data = encode_wav(np.array([-1.0, 1.0, 0.0]), SR, subtype="PCM_16")
    np.testing.assert_array_equal(decode_wav(data).samples, [-1.0, 32767 / 32768, 0.0])
    u8 = encode_wav(np.array([-1.0, 0.0, 1.0]), SR, subtype="PCM_U8")
    assert u8[-4:] == bytes([0, 128, 255, 0])  # three samples and the pad byte
    np.testing.assert_array_equal(decode_wav(u8).samples, [-1.0, 0.0, 127 / 128])


def test_24bit_sign_extension() -> None:
    values = np.array([-(2**23), -1, 0, 1, 2**23 - 1], dtype=np.int64)
    payload = b"".join(int(v & 0xFFFFFF).to_bytes(3, "little") for v in values)
    data = _wav(_fmt(1, 1, SR, 24), payload)
    np.testing.assert_array_equal(decode_wav(data).samples, (values / 2**23).astype(np.float32))


def test_float_overs_are_clipped_to_full_scale() -> None:
    data = encode_wav(np.array([0.5, 1.5, -3.0]), SR, subtype="FLOAT")
    np.testing.assert_array_equal(decode_wav(data).samples, [0.5, 1.0, -1.0])


def test_stereo_mixes_down_by_averaging() -> None:
    x = np.array([[0.5, -0.5], [0.25, 0.25], [1.0, 0.0]])
    np.testing.assert_allclose(decode_wav(encode_wav(x, SR, "DOUBLE")).samples, [0.0, 0.25, 0.5])


# --- hand-made headers -------------------------------------------------------------------------------


def _fmt(code: int, channels: int, rate: int, bits: int, block_align: int | None = None) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    return struct.pack("<HHIIHH", code, channels, rate, rate * align, align, bits)


def _chunk(chunk_id: bytes, body: bytes, size: int | None = None) -> bytes:
    pad = b"\x00" if len(body) & 1 else b""
    return chunk_id + struct.pack("<I", len(body) if size is None else size) + body + pad


def _wav(fmt_body: bytes, payload: bytes, *, data_size: int | None = None, riff_size: int | None = None,
         extra: bytes = b"", magic: bytes = b"RIFF") -> bytes:  # fmt: skip
    chunks = _chunk(b"fmt ", fmt_body) + extra + _chunk(b"data", payload, data_size)
    return magic + struct.pack("<I", 4 + len(chunks) if riff_size is None else riff_size) + b"WAVE" + chunks


PCM16 = _fmt(1, 1, SR, 16)
TONE = (np.sin(np.arange(800) * 0.1) * 10_000).astype("<i2").tobytes()


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_streaming_headers_read_to_end_of_file(size) -> None:
    data = _wav(PCM16, TONE, data_size=size, riff_size=size)
    clip = decode_wav(data)
    assert clip.samples.size == 800
    np.testing.assert_array_equal(clip.samples, np.frombuffer(TONE, "<i2") / np.float32(32768))


def test_streaming_data_with_a_dangling_odd_byte_keeps_whole_frames() -> None:
    data = _wav(PCM16, TONE, data_size=0xFFFFFFFF, riff_size=0xFFFFFFFF) + b"\x01"
    assert decode_wav(data).samples.size == 800


def test_skips_other_chunks_with_word_alignment_and_ignores_trailing_bytes() -> None:
    extra = _chunk(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00") + _chunk(b"odd ", b"xyz")
    data = _wav(PCM16, TONE, extra=extra) + b"id3 trailing junk"
    assert decode_wav(data).samples.size == 800


def test_rf64_with_ds64_size() -> None:
    ds64 = _chunk(b"ds64", struct.pack("<QQQI", 0, len(TONE), 400, 0))
    chunks = ds64 + _chunk(b"fmt ", PCM16) + _chunk(b"data", TONE, 0xFFFFFFFF)
    data = b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + chunks
    assert decode_wav(data).samples.size == 800


REJECTIONS = {
    "empty": (b"", "too short"),
    "short": (b"RIFF\x00\x00", "too short"),
    "not wav": (b"ID3\x04" + bytes(200), "not a WAV"),
    "ogg": (b"OggS" + bytes(200), "not a WAV"),
    "rifx": (b"RIFX" + struct.pack("<I", 100) + b"WAVE" + bytes(100), "big-endian"),
    "riff avi": (b"RIFF" + struct.pack("<I", 100) + b"AVI " + bytes(100), "not a WAV"),
    "header only": (b"RIFF" + struct.pack("<I", 4) + b"WAVE", "no fmt chunk"),
    "no data": (b"RIFF" + struct.pack("<I", 28) + b"WAVE" + _chunk(b"fmt ", PCM16), "no data chunk"),
    "data first": (b"RIFF" + struct.pack("<I", 100) + b"WAVE" + _chunk(b"data", TONE), "before its fmt"),
    "short fmt": (_wav(PCM16[:12], TONE), "fmt chunk is 12 bytes"),
    "zero channels": (_wav(_fmt(1, 0, SR, 16, 2), TONE), "zero channels"),
    "zero rate": (_wav(_fmt(1, 1, 0, 16), TONE), "0 Hz"),
    "rate too high": (_wav(_fmt(1, 1, 384_000, 16), TONE), "384000 Hz is outside"),
    "rate too low": (_wav(_fmt(1, 1, 100, 16), TONE), "100 Hz is outside"),
    "mu-law": (_wav(_fmt(7, 1, 8000, 8), TONE), "mu-law"),
    "mp3": (_wav(_fmt(0x55, 1, SR, 0, 1), TONE), "MP3"),
    "unknown codec": (_wav(_fmt(0x1234, 1, SR, 16), TONE), "0x1234"),
    "12-bit": (_wav(_fmt(1, 1, SR, 12, 2), TONE), "12-bit PCM"),
    "16-bit float": (_wav(_fmt(3, 1, SR, 16), TONE), "16-bit IEEE float"),
    "block align": (_wav(_fmt(1, 2, SR, 16, 2), TONE), "block alignment"),
    "empty data": (_wav(PCM16, b""), "no samples"),
    "less than a frame": (_wav(_fmt(1, 2, SR, 16), b"\x01\x02"), "no samples"),
    "truncated data": (_wav(PCM16, TONE, data_size=len(TONE) * 10), "truncated"),
    "lying data size": (_wav(PCM16, TONE, data_size=0xFFFFFFF0), "truncated"),
    "lying chunk size": (_wav(PCM16, TONE, extra=b"LIST" + struct.pack("<I", 0x7FFFFFFF)), "truncated"),
    "too many channels": (_wav(_fmt(1, 65, SR, 16), TONE * 65), "65 channels"),
    "nan": (_wav(_fmt(3, 1, SR, 32), np.array([0.1, np.nan], "<f4").tobytes()), "NaN or infinite"),
    "inf": (_wav(_fmt(3, 1, SR, 64), np.array([np.inf, 0.0], "<f8").tobytes()), "NaN or infinite"),
    "extensible too short": (_wav(_fmt(0xFFFE, 1, SR, 16) + b"\x16\x00", TONE), "too short"),
    "extensible bad guid": (
        _wav(_fmt(0xFFFE, 1, SR, 16) + struct.pack("<HHIH", 22, 16, 4, 1) + bytes(14), TONE),
        "sub-format",
    ),
}


@pytest.mark.parametrize("name", sorted(REJECTIONS))
def test_rejects_with_an_actionable_message(name) -> None:
    data, message = REJECTIONS[name]
    with pytest.raises(InvalidAudio, match=message):
        decode_wav(data)


def test_invalid_audio_is_a_value_error() -> None:
    assert issubclass(InvalidAudio, ValueError)


def test_non_bytes_input_is_invalid_audio() -> None:
    with pytest.raises(InvalidAudio, match="expected the WAV file's bytes"):
        decode_wav("RIFF....WAVE")  # type: ignore[arg-type]


def test_accepts_bytearray_and_memoryview() -> None:
    data = _wav(PCM16, TONE)
    assert decode_wav(bytearray(data)).samples.size == 800
    assert decode_wav(memoryview(data)).samples.size == 800


def test_duration_limit_is_checked_before_decoding() -> None:
    data = _wav(PCM16, TONE)  # 0.05 s
    with pytest.raises(InvalidAudio, match=r"lasts 0\.05 s; the limit is 0\.01 s"):
        decode_wav(data, WavLimits(max_duration_s=0.01))
    assert decode_wav(data, WavLimits(max_duration_s=1)).duration_s == pytest.approx(0.05)


def test_sample_rate_limits_are_configurable() -> None:
    data = _wav(_fmt(1, 1, 96_000, 16), TONE)
    with pytest.raises(InvalidAudio, match=r"outside 1000\.\.48000"):
        decode_wav(data, WavLimits(max_sample_rate=48_000))
    assert decode_wav(data).sample_rate == 96_000


def test_lying_header_allocates_nothing_it_claims() -> None:
    """A 4 GiB data chunk claimed by a 60-byte file: rejected at once, with no large allocation."""
    liar = _wav(_fmt(1, 64, 192_000, 32), b"\x00" * 16, data_size=0xFFFFFFF0)
    streaming = _wav(_fmt(1, 2, SR, 16), b"\x00" * 16, data_size=0, riff_size=0)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(InvalidAudio):
            decode_wav(liar)
        clip = decode_wav(streaming)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clip.samples.size == 4
    assert peak < 64 * 1024, f"peak allocation {peak} bytes"
    assert elapsed < 0.5


def test_decoding_memory_is_proportional_to_the_clip() -> None:
    """The raw bytes are not copied: a 60 s 16-bit stereo clip needs about its float32 output and a
    float64 mixdown buffer, not several copies of the input."""
    frames = 60 * SR
    data = _wav(_fmt(1, 2, SR, 16), bytes(frames * 4))
    tracemalloc.start()
    try:
        clip = decode_wav(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clip.samples.nbytes == frames * 4
    assert peak < frames * (8 + 4) * 1.2, f"peak {peak / 1e6:.1f} MB for {len(data) / 1e6:.1f} MB of input"


def test_clip_is_frozen() -> None:
    clip = decode_wav(_wav(PCM16, TONE))
    assert isinstance(clip, Clip)
    with pytest.raises(AttributeError):
        clip.sample_rate = 8000  # type: ignore[misc]


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown subtype"):
        encode_wav(np.zeros(4), SR, subtype="MP3")
    with pytest.raises(ValueError, match="shape"):
        encode_wav(np.zeros((2, 2, 2)), SR)
    with pytest.raises(ValueError, match="sample_rate"):
        encode_wav(np.zeros(4), 0)


VALID = [
    encode_wav(np.linspace(-1, 1, 64), SR, "PCM_16"),
    encode_wav(np.linspace(-1, 1, 96).reshape(-1, 3), 44_100, "PCM_24"),
    encode_wav(np.linspace(-1, 1, 64).reshape(-1, 2), 8000, "FLOAT", extensible=True),
    encode_wav(np.linspace(-1, 1, 64), SR, "PCM_U8"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(VALID),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 400),
)
def test_fuzz_mutated_headers_only_raise_invalid_audio(base, edits, cut) -> None:
    data = bytearray(base[: max(cut, 0)] if cut < len(base) else base)
    for position, value in edits:
        if position < len(data):
            data[position] = value
    try:
        clip = decode_wav(bytes(data))
    except InvalidAudio as error:
        if not str(error):
            pytest.fail("InvalidAudio without a message")
        return
    assert clip.samples.dtype == np.float32
    assert clip.samples.size > 0
    assert np.isfinite(clip.samples).all()
    assert np.abs(clip.samples).max() <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_fuzz_random_bytes_only_raise_invalid_audio(data) -> None:
    with pytest.raises(InvalidAudio):
        decode_wav(b"RIFF" + data if data[:1] == b"\x00" else data)
