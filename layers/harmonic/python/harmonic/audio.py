"""Decoding the audio formats phones, browsers and tools produce: WAV, FLAC, Ogg (Vorbis or Opus) and MP3.

WAV goes through this package's own decoder (:func:`harmonic.wav.decode_wav`: exact, with error messages
about the header). FLAC, Ogg and MP3 go through libsndfile (1.2, by way of ``soundfile``, whose wheels carry
the library for x86_64 and aarch64 Linux, with its FLAC, Vorbis, Opus and mpg123 decoders): the clip is
decoded to float32, mixed to mono by the mean of its channels, like a WAV. The same
:class:`~harmonic.wav.WavLimits` bound every format; anything libsndfile cannot read is
:class:`~harmonic.errors.InvalidAudio` naming the formats that are accepted.

Lossy formats decode to a different signal than the one encoded (tests/unit/test_audio_formats.py
bounds the difference against the WAV of the same speech); the rest of the chain sees them as it sees a
WAV of the decoded samples.
"""

from __future__ import annotations

import io

import numpy as np

from harmonic.errors import InvalidAudio
from harmonic.wav import Clip, WavLimits, decode_wav

SUPPORTED = "WAV, FLAC, Ogg (Vorbis or Opus) and MP3"
# libsndfile's container names → what the clip's `sample_format` says
_FORMATS = {"FLAC": "flac", "OGG": "ogg", "MP3": "mp3", "MPEG": "mp3"}


def decode_audio(data: bytes | bytearray | memoryview, limits: WavLimits | None = None) -> Clip:
    """Decode a WAV, FLAC, Ogg (Vorbis or Opus) or MP3 file to a mono float32 :class:`Clip`.

    Raises :class:`InvalidAudio` for anything else (an AAC/M4A or video container, a corrupt or truncated
    file) and for a clip outside ``limits``; never another exception.
    """
    limits = limits or WavLimits()
    raw = bytes(data)
    if raw[:4] in (b"RIFF", b"RF64", b"RIFX"):
        return decode_wav(raw, limits)
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(raw))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise InvalidAudio(f"not a supported audio file ({SUPPORTED}): {_reason(error)}") from None
    kind = _FORMATS.get(str(info.format).upper())
    if kind is None:
        raise InvalidAudio(f"{info.format_info or info.format} audio is not supported; send {SUPPORTED}")
    if info.channels < 1 or info.channels > limits.max_channels:
        raise InvalidAudio(f"the clip has {info.channels} channels; 1 to {limits.max_channels} are accepted")
    if not limits.min_sample_rate <= info.samplerate <= limits.max_sample_rate:
        raise InvalidAudio(
            f"the sample rate {info.samplerate} Hz is outside "
            f"{limits.min_sample_rate}..{limits.max_sample_rate} Hz"
        )
    # bound the decode by the declared length first (an MP3 may not declare one: checked after)
    _check_duration(info.frames, info.samplerate, limits)
    try:
        frames, rate = soundfile.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise InvalidAudio(
            f"the {kind.upper()} file cannot be decoded (corrupt?): {_reason(error)}"
        ) from None
    if frames.size == 0:
        raise InvalidAudio(f"the {kind.upper()} file contains no samples")
    _check_duration(frames.shape[0], rate, limits)
    samples = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    samples = np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)
    return Clip(samples=samples, sample_rate=int(rate), channels=int(frames.shape[1]), sample_format=kind)


def _check_duration(frames: int, rate: int, limits: WavLimits) -> None:
    duration_s = frames / rate if rate else 0.0
    if duration_s > limits.max_duration_s:
        raise InvalidAudio(
            f"the clip lasts {duration_s:.2f} s; the limit is {limits.max_duration_s:g} s; send a shorter one"
        )


def _reason(error: BaseException) -> str:
    """libsndfile's message without the path of the in-memory file it was given."""
    text = str(error).strip()
    return text.replace("<_io.BytesIO object", "the data").split(" at 0x")[0] or type(error).__name__
