"""RIFF/WAVE decoding and encoding with strict validation.

What is accepted (Microsoft "Multimedia Programming Interface and Data Specifications 1.0" and
"WAVE_FORMAT_EXTENSIBLE", plus EBU Tech 3306 RF64 for files over 4 GiB):

- integer PCM: 8-bit unsigned, 16-, 24- and 32-bit signed little-endian;
- IEEE float: 32- and 64-bit;
- ``WAVE_FORMAT_EXTENSIBLE`` whose sub-format GUID is PCM or IEEE float;
- any channel count (mixed down to mono by averaging the channels);
- streaming writers' headers whose RIFF or ``data`` size is 0 or 0xFFFFFFFF ("until end of file").

Everything else raises :class:`InvalidAudio` with a message a user can act on. The decoder never
allocates from a size a header claims: sizes are checked against the bytes actually present, and the
samples are read zero-copy from the input buffer before being converted once to float32.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from harmonic._samples import checked
from harmonic.errors import InvalidAudio

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# The 14 bytes that follow the format code in a KSDATAFORMAT_SUBTYPE_* GUID.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_STREAMING_SIZES = (0, 0xFFFFFFFF)
_KNOWN_CODECS = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
    0xF1AC: "FLAC",
}
_FULL_SCALE = {8: 128.0, 16: 32768.0, 24: 8388608.0, 32: 2147483648.0}


@dataclass(frozen=True)
class WavLimits:
    """Bounds a decoded clip must respect; exceeding one is InvalidAudio."""

    max_duration_s: float = 600.0
    min_sample_rate: int = 1000
    max_sample_rate: int = 192_000
    max_channels: int = 64


@dataclass(frozen=True)
class Clip:
    """Decoded audio: float32 mono samples in [-1, 1], with what the file declared."""

    samples: np.ndarray
    sample_rate: int
    channels: int
    sample_format: str = "pcm16"

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / self.sample_rate


@dataclass(frozen=True)
class _Format:
    code: int  # WAVE_FORMAT_PCM or WAVE_FORMAT_IEEE_FLOAT after resolving EXTENSIBLE
    channels: int
    sample_rate: int
    block_align: int
    bits: int

    @property
    def name(self) -> str:
        return f"float{self.bits}" if self.code == WAVE_FORMAT_IEEE_FLOAT else f"pcm{self.bits}"


def decode_wav(data: bytes | bytearray | memoryview, limits: WavLimits | None = None) -> Clip:
    """Decode a RIFF/WAVE (or RF64) byte string to a mono float32 :class:`Clip`.

    Raises :class:`InvalidAudio` for anything that is not a supported, sane, non-empty WAV within
    ``limits``; never another exception.
    """
    limits = limits or WavLimits()
    try:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
    except (TypeError, ValueError):
        raise InvalidAudio(f"expected the WAV file's bytes, got {type(data).__name__}") from None
    fmt, payload = _parse(view, limits)
    n_frames = len(payload) // fmt.block_align
    if n_frames == 0:
        raise InvalidAudio("the WAV file contains no samples (empty data chunk)")
    duration_s = n_frames / fmt.sample_rate
    if duration_s > limits.max_duration_s:
        raise InvalidAudio(
            f"the clip lasts {duration_s:.2f} s; the limit is {limits.max_duration_s:g} s; send a shorter one"
        )
    samples = _to_mono_float32(payload[: n_frames * fmt.block_align], fmt, n_frames)
    return Clip(samples=samples, sample_rate=fmt.sample_rate, channels=fmt.channels, sample_format=fmt.name)


def _parse(view: memoryview, limits: WavLimits) -> tuple[_Format, memoryview]:
    """Walk the chunks: the format (validated) and the data bytes actually present."""
    size = len(view)
    if size < 12:
        raise InvalidAudio(f"the data is {size} bytes long: too short to be a WAV file")
    magic, riff_size, wave = struct.unpack_from("<4sI4s", view, 0)
    if magic not in (b"RIFF", b"RF64") or wave != b"WAVE":
        if magic == b"RIFX":
            raise InvalidAudio("big-endian WAV (RIFX) is not supported; convert to little-endian RIFF/WAVE")
        raise InvalidAudio(
            "not a WAV file: expected a RIFF/WAVE header; send WAV, FLAC, Ogg (Vorbis or Opus) or MP3"
        )
    end = size
    if magic == b"RIFF" and riff_size not in _STREAMING_SIZES and riff_size + 8 < size:
        end = riff_size + 8  # trailing bytes after the RIFF chunk are ignored, as players do
    ds64_data_size: int | None = None
    fmt: _Format | None = None
    offset = 12
    while offset + 8 <= end:
        chunk_id, chunk_size = struct.unpack_from("<4sI", view, offset)
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise InvalidAudio("the WAV data chunk comes before its fmt chunk; the file is malformed")
            if magic == b"RF64" and chunk_size == 0xFFFFFFFF and ds64_data_size is not None:
                chunk_size = ds64_data_size
            available = end - body
            if chunk_size in _STREAMING_SIZES:
                chunk_size = available  # a streaming writer never came back to fill the size in
            elif chunk_size > available:
                raise InvalidAudio(
                    f"the WAV data chunk declares {chunk_size} bytes but only {available} are present: "
                    "the file is truncated"
                )
            return fmt, view[body : body + chunk_size]
        if chunk_size > end - body:
            raise InvalidAudio(
                f"the WAV {_chunk_name(chunk_id)} chunk declares {chunk_size} bytes but only {end - body} "
                "remain: the file is truncated or corrupt"
            )
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(view[body : body + chunk_size], limits)
        elif chunk_id == b"ds64" and chunk_size >= 24:
            ds64_data_size = struct.unpack_from("<Q", view, body + 8)[0]
        offset = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    if fmt is None:
        raise InvalidAudio("the WAV file has no fmt chunk (truncated header)")
    raise InvalidAudio("the WAV file has no data chunk (truncated or header only)")


def _chunk_name(chunk_id: bytes) -> str:
    text = chunk_id.decode("latin-1")
    return repr(text) if text.isprintable() else "binary"


def _parse_fmt(body: memoryview, limits: WavLimits) -> _Format:
    if len(body) < 16:
        raise InvalidAudio(f"the WAV fmt chunk is {len(body)} bytes; at least 16 are required")
    code, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if code == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise InvalidAudio("the WAVE_FORMAT_EXTENSIBLE fmt chunk is too short (needs 40 bytes)")
        sub_code = struct.unpack_from("<H", body, 24)[0]
        if bytes(body[26:40]) != _GUID_TAIL:
            raise InvalidAudio("the WAVE_FORMAT_EXTENSIBLE sub-format is not a standard audio GUID")
        code = sub_code
    if code not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        codec = _KNOWN_CODECS.get(code, f"format code 0x{code:04X}")
        raise InvalidAudio(
            f"the WAV is encoded as {codec}; only PCM (8/16/24/32-bit) and IEEE float (32/64-bit) "
            "are supported — re-encode it as 16-bit PCM"
        )
    if channels == 0:
        raise InvalidAudio("the WAV header declares zero channels")
    if channels > limits.max_channels:
        raise InvalidAudio(f"the WAV has {channels} channels; at most {limits.max_channels} are accepted")
    if rate == 0:
        raise InvalidAudio("the WAV header declares a sample rate of 0 Hz")
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise InvalidAudio(
            f"the sample rate {rate} Hz is outside {limits.min_sample_rate}..{limits.max_sample_rate} Hz"
        )
    valid_bits = (8, 16, 24, 32) if code == WAVE_FORMAT_PCM else (32, 64)
    if bits not in valid_bits:
        kind = "PCM" if code == WAVE_FORMAT_PCM else "IEEE float"
        raise InvalidAudio(f"{bits}-bit {kind} is not supported; use one of {valid_bits} bits")
    if block_align != channels * bits // 8:
        raise InvalidAudio(
            f"the WAV block alignment is {block_align} bytes; {channels} channel(s) of {bits}-bit samples "
            f"need {channels * bits // 8} (corrupt header)"
        )
    return _Format(code=code, channels=channels, sample_rate=rate, block_align=block_align, bits=bits)


def _to_mono_float32(payload: memoryview, fmt: _Format, n_frames: int) -> np.ndarray:
    """Samples as float32 mono in [-1, 1]; one pass per channel, no copy of the raw bytes."""
    if fmt.code == WAVE_FORMAT_IEEE_FLOAT:
        raw = np.frombuffer(payload, dtype="<f4" if fmt.bits == 32 else "<f8").reshape(n_frames, fmt.channels)
        if not np.isfinite(raw).all():
            raise InvalidAudio("the WAV contains NaN or infinite samples")
        mono = _channel_sum(raw)
        if fmt.channels > 1:
            mono /= fmt.channels
        # Float WAVs may exceed full scale; the contract is [-1, 1], so overs are clipped there.
        return np.clip(mono, -1.0, 1.0, out=mono).astype(np.float32)
    scale = _FULL_SCALE[fmt.bits]
    if fmt.bits == 24:
        raw24 = np.frombuffer(payload, dtype=np.uint8).reshape(n_frames * fmt.channels, 3)
        ints = (
            raw24[:, 0].astype(np.int32)
            | (raw24[:, 1].astype(np.int32) << 8)
            | (raw24[:, 2].astype(np.int8).astype(np.int32) << 16)
        ).reshape(n_frames, fmt.channels)
    else:
        dtype = {8: np.uint8, 16: "<i2", 32: "<i4"}[fmt.bits]
        ints = np.frombuffer(payload, dtype=dtype).reshape(n_frames, fmt.channels)
    offset = 128.0 if fmt.bits == 8 else 0.0
    mono = _channel_sum(ints)
    mono -= offset * fmt.channels
    mono /= scale * fmt.channels
    return mono.astype(np.float32)


def _channel_sum(frames: np.ndarray) -> np.ndarray:
    """Sum of the channels of ``(n, channels)`` in float64, one channel at a time (no full-size cast)."""
    total = frames[:, 0].astype(np.float64)
    for channel in range(1, frames.shape[1]):
        total += frames[:, channel]
    return total


_SUBTYPES = {
    "PCM_U8": (WAVE_FORMAT_PCM, 8),
    "PCM_16": (WAVE_FORMAT_PCM, 16),
    "PCM_24": (WAVE_FORMAT_PCM, 24),
    "PCM_32": (WAVE_FORMAT_PCM, 32),
    "FLOAT": (WAVE_FORMAT_IEEE_FLOAT, 32),
    "DOUBLE": (WAVE_FORMAT_IEEE_FLOAT, 64),
}


def encode_wav(
    samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16", extensible: bool | None = None
) -> bytes:
    """Encode float samples in [-1, 1] (mono ``(n,)`` or channel-last ``(n, channels)``) as a WAV.

    ``subtype`` is one of PCM_U8, PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE (soundfile's names). Integer
    formats are rounded and clipped to full scale. ``extensible`` writes WAVE_FORMAT_EXTENSIBLE
    (default: only when there are more than two channels or more than 16 bits, as the format asks).

    Raises :class:`InvalidAudio` for samples that are not ``(n,)`` or ``(n, channels)``, empty, non-finite or
    not numbers (:func:`decode_wav` would refuse such a file), ``ValueError`` for a bad subtype or rate.
    """
    if subtype not in _SUBTYPES:
        raise ValueError(f"unknown subtype {subtype!r}; choose one of {sorted(_SUBTYPES)}")
    code, bits = _SUBTYPES[subtype]
    x = np.asarray(checked(samples, name="encode_wav", channels=True), dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if not 0 < int(sample_rate) <= 0xFFFFFFFF:
        raise ValueError(f"sample_rate must be a positive integer; got {sample_rate}")
    channels = x.shape[1]
    if code == WAVE_FORMAT_IEEE_FLOAT:
        payload = x.astype("<f4" if bits == 32 else "<f8").tobytes()
    else:
        scale = _FULL_SCALE[bits]
        ints = np.clip(np.round(x * scale), -scale, scale - 1).astype(np.int64)
        if bits == 8:
            payload = (ints + 128).astype(np.uint8).tobytes()
        elif bits == 24:
            payload = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        else:
            payload = ints.astype("<i2" if bits == 16 else "<i4").tobytes()
    block_align = channels * bits // 8
    if extensible is None:
        extensible = channels > 2 or bits > 16
    if extensible:
        mask = (1 << channels) - 1 if channels <= 18 else 0
        fmt_body = (
            struct.pack(
                "<HHIIHHHHI",
                WAVE_FORMAT_EXTENSIBLE,
                channels,
                sample_rate,
                sample_rate * block_align,
                block_align,
                bits,
                22,
                bits,
                mask,
            )
            + struct.pack("<H", code)
            + _GUID_TAIL
        )
    else:
        fmt_body = struct.pack(
            "<HHIIHH", code, channels, sample_rate, sample_rate * block_align, block_align, bits
        )
    pad = b"\x00" if len(payload) & 1 else b""
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    chunks += b"data" + struct.pack("<I", len(payload)) + payload + pad
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
