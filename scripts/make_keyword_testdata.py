"""Regenerate the keyword-spotting material under tests/data/keywords with espeak-ng (Debian: espeak-ng).

The WAVs and manifest.json are committed, so tests and `make eval` need no espeak-ng; this script documents
exactly how they were made (espeak-ng 1.51 output is deterministic: rerunning it reproduces the files bit for
bit). Enrolment examples and queries use disjoint voices, pitches and speaking rates, so the evaluation
measures generalization to voices the templates never heard. A query is a carrier phrase around the keyword,
synthesized in three parts joined with short pauses, so the keyword's true position is known. Negatives are
sentences without any keyword, in the query voices.

Material: 10 keywords × 3 enrolment voices; 10 × 8 queries (8 unseen voices, 125–200 wpm); 50 negatives.
Split "tuned": the queries of voices 0–5 and negatives 0–39, on which the matcher's constants and default
threshold were chosen. Split "held_out": voices 6–7 and negatives 40–49, generated after the tuning and
reported separately by `make eval`, to show how the chosen constants generalize.

Usage: .venv/bin/python scripts/make_keyword_testdata.py [output directory]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "keywords"
SR = 16_000
KEYWORDS = [
    "harmonic",
    "activate",
    "lights",
    "music",
    "weather",
    "stop",
    "computer",
    "banana",
    "morning",
    "seven",
]
# voice, words per minute, pitch (0-99)
ENROL = [("en-us", 150, 50), ("en-gb+f3", 140, 60), ("en-gb-x-rp+m3", 165, 45)]
QUERY = [
    ("en-gb-scotland", 125, 40),
    ("en-us+f4", 180, 70),
    ("en-029+m2", 150, 30),
    ("en-gb-x-gbclan+m5", 195, 55),
    ("en-us-nyc+f2", 135, 65),
    ("en-gb-x-gbcwmd+m7", 160, 35),
    # held out: generated after the constants were chosen on the six above
    ("en-gb-x-rp+f5", 170, 75),
    ("en-us+m4", 140, 45),
]
# query voice i uses carrier (keyword index + i) % 3 of its group of three
CARRIERS = [
    ("please say", "right now"),
    ("I think", "is the word"),
    ("can you hear", "in this room"),
    ("okay", "thank you"),
    ("did you say", "or not"),
    ("she wrote", "on the card"),
    ("listen to", "carefully"),
    ("we need", "today"),
    ("is it", "again"),
]
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
    "could you pass me the salt and pepper",
    "our train was delayed by twenty minutes",
    "the children played football in the park",
    "please close the door when you leave",
    "i forgot to water the plants yesterday",
    "the museum opens at nine on weekdays",
    "there is a small cafe around the corner",
    "we need more paper for the printer",
    "the dog barked at the postman all day",
    "he reads the newspaper every evening",
    "let us go for a walk by the lake",
    "the soup needs a little more salt",
    "she bought a new pair of running shoes",
    "the meeting has been moved to friday",
    "my brother lives in a small village",
    "the baby is sleeping in the other room",
    "they painted the kitchen last summer",
    "the post office is across the road",
    "write your name at the top of the page",
    "the garden is full of red flowers",
    "i would like a cup of tea please",
    "the bridge was closed for repairs",
    "he lost his keys on the way home",
    "the teacher explained the lesson again",
    "we watched a film about old ships",
    "the shop sells fresh bread and cheese",
    "her sister plays the violin very well",
    "the road was wet after the storm",
    "put the books back on the shelf",
    "the hotel room had a view of the sea",
    # held out
    "the clock on the wall is five minutes fast",
    "she carried the boxes up the narrow stairs",
    "the farmer drove his tractor across the field",
    "we ordered pizza for the whole team",
    "a small boat drifted slowly down the river",
    "he fixed the broken chair with some glue",
    "the airport was crowded with holiday travellers",
    "please sign the form and return it by post",
    "the cat slept on the warm windowsill",
    "our neighbours planted a tree in their yard",
]
# negatives 0-9 (the original ten) cycle over these four voices, 10-39 over query voices 0-5, 40-49 over
# the held-out voices 6-7
NEGATIVE_VOICES = QUERY[:3] + ENROL[:1]
TUNED_VOICES = 6
TUNED_NEGATIVES = 40
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


def write(out: Path, name: str, y: np.ndarray) -> str:
    wavfile.write(out / name, SR, np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16))
    return name


def main() -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.mkdir(parents=True, exist_ok=True)
    pause = np.zeros(int(PAUSE_S * SR))
    manifest: dict[str, list] = {"enrol": [], "queries": [], "negatives": []}
    for word in KEYWORDS:
        for index, (voice, wpm, pitch) in enumerate(ENROL):
            name = write(out, f"enrol_{word}_{index}.wav", speak(word, voice, wpm, pitch))
            manifest["enrol"].append({"file": name, "keyword": word, "voice": voice, "wpm": wpm})
        for index, (voice, wpm, pitch) in enumerate(QUERY):
            before, after = CARRIERS[(KEYWORDS.index(word) + index) % 3 + 3 * (index // 3)]
            parts = [speak(before, voice, wpm, pitch), pause, speak(word, voice, wpm, pitch), pause]
            start = sum(part.size for part in parts[:2]) / SR
            end = start + parts[2].size / SR
            y = np.concatenate([*parts, speak(after, voice, wpm, pitch)])
            name = write(out, f"query_{word}_{index}.wav", y)
            manifest["queries"].append(
                {
                    "file": name,
                    "keyword": word,
                    "voice": voice,
                    "wpm": wpm,
                    "split": "tuned" if index < TUNED_VOICES else "held_out",
                    "start_s": round(start, 3),
                    "end_s": round(end, 3),
                }
            )
    for index, text in enumerate(NEGATIVES):
        if index < 10:
            voice, wpm, pitch = NEGATIVE_VOICES[index % 4]
        elif index < TUNED_NEGATIVES:
            voice, wpm, pitch = QUERY[index % TUNED_VOICES]
        else:
            voice, wpm, pitch = QUERY[TUNED_VOICES + index % (len(QUERY) - TUNED_VOICES)]
        name = write(out, f"negative_{index}.wav", speak(text, voice, wpm, pitch))
        manifest["negatives"].append(
            {
                "file": name,
                "text": text,
                "voice": voice,
                "split": "tuned" if index < TUNED_NEGATIVES else "held_out",
            }
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(list(out.glob('*.wav')))} WAVs to {out}")


if __name__ == "__main__":
    main()
