"""harmonic: the DSP behind Harmonic, with numpy and scipy only.

Everything public is re-exported here; submodules keep heavy imports (``scipy.signal``) out of
import time so that a Lambda cold start pays only for numpy and ``scipy.fft``.
"""

from harmonic.denoise import denoise, estimate_snr_db
from harmonic.errors import InvalidAudio
from harmonic.features import extract_features
from harmonic.fingerprint import Fingerprint, FingerprintIndex, fingerprint
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
    "chroma",
    "decode_wav",
    "denoise",
    "encode_wav",
    "estimate_snr_db",
    "extract_features",
    "f0",
    "fingerprint",
    "hnr",
    "integrated_loudness",
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
