"""Which audio a request carries, from its first bytes: what the API checks before it accepts a clip.

Accepted: WAV (RIFF or RF64 with WAVE data), FLAC, Ogg (Vorbis or Opus) and MP3 (with or without an ID3
tag), the formats the ingest stage decodes (``harmonic.decode_audio``). A few common containers it does not
decode are named in the 400, so that the user knows what to convert (AAC in MP4/M4A or as raw ADTS,
Matroska/WebM, AMR, AIFF); anything else is "not an audio file of a supported format". Pure and light: the
API function imports no DSP.
"""

from __future__ import annotations

SUPPORTED = "WAV, FLAC, Ogg (Vorbis or Opus) or MP3"
HEADER_BYTES = 12  # enough for every signature below
# The media type of each format `sniff` names (what S3 serves a stored clip as).
CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}


def sniff(head: bytes) -> str:
    """ "wav", "flac", "ogg" or "mp3" for the first bytes of a file; ValueError naming what it is (when
    known) and the formats accepted otherwise."""
    if len(head) >= HEADER_BYTES and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or _mpeg_audio_frame(head):
        return "mp3"
    raise ValueError(f"{_what(head)}: send {SUPPORTED}")


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, then a version that exists and layer I, II or III (layer
    bits 00 is AAC's ADTS header, which is not MP3)."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    return version != 0b01 and layer != 0b00


def _what(head: bytes) -> str:
    if head[4:8] == b"ftyp":
        return "an MP4/M4A file (AAC audio or video) is not supported"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM file is not supported"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "raw AAC (ADTS) is not supported"
    if head[:5] == b"#!AMR":
        return "AMR audio is not supported"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF is not supported"
    if head[:4] in (b"RIFF", b"RF64"):
        return f"a RIFF file of {head[8:12]!r} data is not WAV audio"
    return "not an audio file of a supported format"
