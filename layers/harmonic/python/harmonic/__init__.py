"""harmonic: the DSP behind Harmonic, with numpy and scipy only.

Everything public is re-exported here; submodules keep heavy imports (``scipy.signal``) out of
import time so that a Lambda cold start pays only for numpy and ``scipy.fft``.

Every function here that takes samples refuses bad ones (wrong shape, empty, NaN or infinite values, not
numbers) with :class:`InvalidAudio`, a permanent error, through one shared check; bad parameters raise a
plain ``ValueError``.
"""

from harmonic.audio import decode_audio
from harmonic.denoise import denoise, estimate_snr_db
from harmonic.errors import InvalidAudio
from harmonic.features import extract_features
from harmonic.fingerprint import Fingerprint, FingerprintIndex, can_fingerprint, fingerprint
from harmonic.jsonsafe import json_safe
from harmonic.loudness import integrated_loudness, normalize_loudness
from harmonic.matching import Match
from harmonic.pitch import f0, hnr
from harmonic.resample import resample
from harmonic.spectral import (
    chroma,
    melspectrogram,
    mfcc,
    power_to_db,
    spectral_centroid,
    spectral_flatness,
    stft_power,
)
from harmonic.templates import Template, make_template, match_templates
from harmonic.wav import Clip, WavLimits, decode_wav, encode_wav

__all__ = [
    "Clip",
    "Fingerprint",
    "FingerprintIndex",
    "InvalidAudio",
    "Match",
    "Template",
    "WavLimits",
    "can_fingerprint",
    "chroma",
    "decode_audio",
    "decode_wav",
    "denoise",
    "encode_wav",
    "estimate_snr_db",
    "extract_features",
    "f0",
    "fingerprint",
    "hnr",
    "integrated_loudness",
    "json_safe",
    "make_template",
    "match_templates",
    "melspectrogram",
    "mfcc",
    "normalize_loudness",
    "power_to_db",
    "resample",
    "spectral_centroid",
    "spectral_flatness",
    "stft_power",
]
