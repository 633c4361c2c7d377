"""DSP benchmark: the harmonic chain against the reference ("anchor") libraries, and cold-import time.

Prints per-step and whole-chain milliseconds on a 10 s, 16 kHz speech-in-noise clip for

    ours:    decode_wav -> denoise -> normalize_loudness -> extract_features
    anchors: soundfile  -> noisereduce (stationary) -> pyloudnorm -> librosa mfcc + yin + chroma_stft
             + spectral_centroid + spectral_flatness

(same process, same clip, warm: median of several runs after a warm-up), the ratio ours/anchors (goal <= 0.5),
and the cold-import time of `import harmonic` against `import numpy, scipy.fft` in fresh processes
(goal <= 1.3x). Run with `make bench`.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "harmonic" / "python"
sys.path.insert(0, str(LAYER))

import harmonic  # noqa: E402

SR = 16_000
DURATION_S = 10.0
RUNS = 7


def make_clip() -> bytes:
    """10 s of the committed espeak-ng sentences (looped) with white noise at 15 dB SNR, as 16-bit WAV."""
    from scipy.io import wavfile

    speech = []
    for path in sorted((ROOT / "tests" / "data" / "speech").glob("*.wav")):
        sr, data = wavfile.read(path)
        assert sr == SR
        speech.append(data.astype(np.float64) / 32768.0)
    joined = np.concatenate(speech)
    n = int(DURATION_S * SR)
    clean = np.resize(joined, n)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(n)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (15 / 10))
    mix = 0.5 * (clean + noise) / np.max(np.abs(clean + noise))
    return harmonic.encode_wav(mix.astype(np.float32), SR)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000.0, out


def run_chain(steps: list[tuple[str, Callable[[object], object]]], first_input: object) -> dict[str, float]:
    """Run the steps once, each fed the previous output; milliseconds per step."""
    times: dict[str, float] = {}
    value = first_input
    for name, step in steps:
        times[name], value = timed(lambda step=step, value=value: step(value))
    return times


Steps = list[tuple[str, Callable[[object], object]]]


def median_times(steps: Steps, first_input: object) -> dict[str, float]:
    run_chain(steps, first_input)  # warm-up: caches, numba JIT, filter designs
    runs = [run_chain(steps, first_input) for _ in range(RUNS)]
    return {name: statistics.median(run[name] for run in runs) for name, _ in steps}


def ours() -> list[tuple[str, Callable[[object], object]]]:
    return [
        ("decode", lambda data: harmonic.decode_wav(data).samples),
        ("denoise", lambda y: harmonic.denoise(y, SR)),
        ("normalize", lambda y: harmonic.normalize_loudness(y, SR, target_lufs=-23.0)),
        ("features", lambda y: harmonic.extract_features(y, SR)),
    ]


def anchors() -> list[tuple[str, Callable[[object], object]]]:
    import librosa
    import noisereduce
    import pyloudnorm
    import soundfile

    meter = pyloudnorm.Meter(SR)

    def loudness(y: np.ndarray) -> np.ndarray:
        return pyloudnorm.normalize.loudness(y, meter.integrated_loudness(y), -23.0)

    def features(y: np.ndarray) -> object:
        y = y.astype(np.float32)
        return (
            librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40),
            librosa.yin(y, fmin=65.0, fmax=1000.0, sr=SR, frame_length=1024, hop_length=160),
            librosa.feature.chroma_stft(y=y, sr=SR),
            librosa.feature.spectral_centroid(y=y, sr=SR, n_fft=512, hop_length=160),
            librosa.feature.spectral_flatness(y=y, n_fft=512, hop_length=160),
        )

    return [
        ("decode", lambda data: soundfile.read(io.BytesIO(data), dtype="float32")[0]),
        ("denoise", lambda y: noisereduce.reduce_noise(y=y, sr=SR, stationary=True)),
        ("normalize", loudness),
        ("features", features),
    ]


def cold_import_ms(statement: str, repeats: int = 9) -> float:
    """Median wall time of `python -c statement` in a fresh interpreter, minus bare interpreter start-up."""
    env_path = str(LAYER)

    def run(code: str) -> float:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            env = {"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            samples.append((time.perf_counter() - start) * 1000.0)
        return statistics.median(samples)

    return run(statement) - run("pass")


def main() -> None:
    data = make_clip()
    ours_ms = median_times(ours(), data)
    anchor_ms = median_times(anchors(), data)

    print(f"DSP chain on a {DURATION_S:.0f} s, {SR} Hz clip (median of {RUNS} warm runs, ms)")
    print(f"{'step':<11}{'harmonic':>10}{'anchors':>10}{'ratio':>8}")
    for name in ours_ms:
        ratio = ours_ms[name] / anchor_ms[name]
        print(f"{name:<11}{ours_ms[name]:>10.1f}{anchor_ms[name]:>10.1f}{ratio:>8.2f}")
    total_ours, total_anchor = sum(ours_ms.values()), sum(anchor_ms.values())
    ratio = total_ours / total_anchor
    print(f"{'chain':<11}{total_ours:>10.1f}{total_anchor:>10.1f}{ratio:>8.2f}   (goal <= 0.50)")

    harmonic_ms = cold_import_ms("import harmonic")
    baseline_ms = cold_import_ms("import numpy, scipy.fft")
    print(
        f"cold import: harmonic {harmonic_ms:.0f} ms, numpy+scipy.fft {baseline_ms:.0f} ms, "
        f"ratio {harmonic_ms / baseline_ms:.2f}   (goal <= 1.30)"
    )


if __name__ == "__main__":
    main()
