"""FLAC, Ogg (Vorbis, Opus) and MP3 beside WAV: each decodes to the signal of the WAV it was made from
(FLAC exactly, the lossy ones above 15 dB of waveform SNR, same length); corrupt files and containers
Harmonic does not decode (AAC/M4A, WebM, AMR, AIFF) are InvalidAudio or a 400 naming the accepted
formats."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

import harmonic
from harmonic import InvalidAudio, WavLimits
from harmonic_service.audio_formats import sniff
from tests.conftest import SPEECH_FILES

WAV = SPEECH_FILES[0].read_bytes()
ENCODINGS = [
    ("FLAC", "PCM_16", "flac"),
    ("OGG", "VORBIS", "ogg"),
    ("OGG", "OPUS", "ogg"),
    ("MP3", "MPEG_LAYER_III", "mp3"),
]


def _encoded(
    container: str, subtype: str, samples: np.ndarray | None = None, rate: int | None = None
) -> bytes:
    reference = harmonic.decode_wav(WAV)
    buffer = io.BytesIO()
    soundfile.write(
        buffer,
        reference.samples if samples is None else samples,
        reference.sample_rate,
        format=container,
        subtype=subtype,
    )
    return buffer.getvalue()


@pytest.mark.parametrize(("container", "subtype", "kind"), ENCODINGS)
def test_each_format_decodes_to_the_signal_of_its_wav(container: str, subtype: str, kind: str) -> None:
    reference = harmonic.decode_wav(WAV)
    data = _encoded(container, subtype)
    assert sniff(data[:12]) == kind
    clip = harmonic.decode_audio(data)
    assert clip.sample_format == kind
    assert clip.sample_rate == reference.sample_rate
    assert clip.samples.shape == reference.samples.shape
    assert clip.samples.dtype == np.float32
    error = clip.samples - reference.samples
    if subtype == "PCM_16":  # lossless
        assert np.max(np.abs(error)) < 1 / 32768
    else:
        snr_db = 10 * np.log10(np.sum(reference.samples**2) / np.sum(error**2))
        assert snr_db > 15.0, snr_db


def test_stereo_is_mixed_to_mono_and_wav_still_takes_its_own_decoder() -> None:
    reference = harmonic.decode_wav(WAV).samples
    stereo = np.stack([reference, np.zeros_like(reference)], axis=1)
    clip = harmonic.decode_audio(_encoded("FLAC", "PCM_16", stereo))
    assert clip.channels == 2
    assert np.max(np.abs(clip.samples - reference / 2)) < 1 / 16384
    assert harmonic.decode_audio(WAV).sample_format == harmonic.decode_wav(WAV).sample_format


@pytest.mark.parametrize(("container", "subtype", "kind"), ENCODINGS)
def test_a_corrupt_or_truncated_file_is_invalid_audio(container: str, subtype: str, kind: str) -> None:
    data = _encoded(container, subtype)
    rng = np.random.default_rng(7)
    for damaged in (data[:40], data[:4] + rng.bytes(5000), data[:16] + bytes(len(data) - 16)):
        with pytest.raises(InvalidAudio, match=r"WAV, FLAC, Ogg \(Vorbis or Opus\) and MP3"):
            harmonic.decode_audio(damaged)


def test_limits_bound_every_format() -> None:
    data = _encoded("OGG", "VORBIS")
    with pytest.raises(InvalidAudio, match="the limit is 1 s"):
        harmonic.decode_audio(data, WavLimits(max_duration_s=1.0))
    with pytest.raises(InvalidAudio, match="sample rate"):
        harmonic.decode_audio(data, WavLimits(max_sample_rate=8000))


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "MP4/M4A"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00", "MP4/M4A"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81", "Matroska/WebM"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc\x21\x00\x00\x00\x00", "ADTS"),
        (b"#!AMR\n\x3c\x00\x00\x00\x00\x00", "AMR"),
        (b"FORM\x00\x00\x10\x00AIFF", "AIFF"),
        (b"RIFF\x00\x00\x10\x00AVI ", "not WAV"),
        (b"plain text, no", "not an audio file"),
    ],
)
def test_the_api_names_what_it_does_not_decode_and_what_it_does(head: bytes, named: str) -> None:
    with pytest.raises(ValueError, match=named) as refused:
        sniff(head)
    assert "WAV, FLAC, Ogg (Vorbis or Opus) or MP3" in str(refused.value)
    with pytest.raises(InvalidAudio, match="WAV, FLAC, Ogg"):
        harmonic.decode_audio(head + bytes(200))


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"), (b"\xff\xfb\x90\x64", "mp3"), (b"\xff\xf3\x88\xc4", "mp3")],
)
def test_mp3_with_or_without_an_id3_tag(head: bytes, kind: str) -> None:
    assert sniff(head) == kind
