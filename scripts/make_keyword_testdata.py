"""Regenerate the keyword-spotting material under tests/data/keywords with espeak-ng (Debian: espeak-ng).

The WAVs and manifest.json are committed, so tests and `make eval` need no espeak-ng; this script documents
exactly how they were made. Enrolment examples and queries use disjoint voices and speaking rates, so the
evaluation measures generalization to voices it was never tuned on. A query is a carrier phrase around the
keyword, synthesized in three parts joined with short pauses, so the keyword's true position is known.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "keywords"
SR = 16_000
KEYWORDS = ["harmonic", "activate", "lights", "music", "weather", "stop", "computer", "banana"]
# voice, words per minute, pitch (0-99)
ENROL = [("en-us", 150, 50), ("en-gb+f3", 140, 60), ("en-gb-x-rp+m3", 165, 45)]
QUERY = [("en-gb-scotland", 125, 40), ("en-us+f4", 180, 70), ("en-029+m2", 150, 30)]
CARRIERS = [("please say", "right now"), ("I think", "is the word"), ("can you hear", "in this room")]
NEGATIVES = [
    "the quick brown fox jumps over the lazy dog",
    "we will meet at the station after lunch",
    "nothing in this sentence should be found",
    "she sells sea shells by the sea shore",
    "a cold wind blew across the empty field",
    "turn left at the second traffic signal",
    "my phone battery is almost empty again",
    "the library closes early on sundays",
    "rain is expected later this afternoon",
    "he painted the fence a bright shade of green",
]
NEGATIVE_VOICES = QUERY + ENROL[:1]
PAUSE_S = 0.12


def speak(text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(path), text], check=True
        )
        sr, data = wavfile.read(path)
    y = data.astype(np.float64) / 32768.0
    y = resample_poly(y, SR, sr) if sr != SR else y
    active = np.flatnonzero(np.abs(y) > 0.01)  # trim espeak's leading/trailing silence
    return y[max(active[0] - 160, 0) : active[-1] + 160] if active.size else y


def write(name: str, y: np.ndarray) -> str:
    wavfile.write(OUT / name, SR, np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16))
    return name


def main() -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    OUT.mkdir(parents=True, exist_ok=True)
    pause = np.zeros(int(PAUSE_S * SR))
    manifest: dict[str, list] = {"enrol": [], "queries": [], "negatives": []}
    for word in KEYWORDS:
        for index, (voice, wpm, pitch) in enumerate(ENROL):
            name = write(f"enrol_{word}_{index}.wav", speak(word, voice, wpm, pitch))
            manifest["enrol"].append({"file": name, "keyword": word, "voice": voice, "wpm": wpm})
        for index, (voice, wpm, pitch) in enumerate(QUERY):
            before, after = CARRIERS[(KEYWORDS.index(word) + index) % len(CARRIERS)]
            parts = [speak(before, voice, wpm, pitch), pause, speak(word, voice, wpm, pitch), pause]
            start = sum(part.size for part in parts[:2]) / SR
            end = start + parts[2].size / SR
            y = np.concatenate([*parts, speak(after, voice, wpm, pitch)])
            name = write(f"query_{word}_{index}.wav", y)
            manifest["queries"].append(
                {
                    "file": name,
                    "keyword": word,
                    "voice": voice,
                    "wpm": wpm,
                    "start_s": round(start, 3),
                    "end_s": round(end, 3),
                }
            )
    for index, text in enumerate(NEGATIVES):
        voice, wpm, pitch = NEGATIVE_VOICES[index % len(NEGATIVE_VOICES)]
        name = write(f"negative_{index}.wav", speak(text, voice, wpm, pitch))
        manifest["negatives"].append({"file": name, "text": text, "voice": voice})
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(list(OUT.glob('*.wav')))} WAVs to {OUT}")


if __name__ == "__main__":
    main()
