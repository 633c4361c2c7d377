"""Generate the cross-speaker keyword-spotting material (issue 14, item 4) with three Debian synthesizers.

Engines (Debian bookworm packages; `make xspeaker-tools` installs them): espeak-ng (formant synthesis, several
accents and voice variants), flite (CMU's diphone/clustergen voices awb, rms, slt, kal16) and festival with
the festvox voices kal_diphone, ked_diphone and cmu_us_slt_arctic_hts. Two physical speakers exist in two
engines (slt: flite and festival; kal: flite and festival); they are kept on one side of each split.

Splits (every voice, keyword and carrier below was fixed before any matcher constant was tuned on this
material; "held_out" was never used to choose anything and is reported separately by bench/eval_keywords.py):

- **tuned**: 12 keywords; enrolled by espeak-ng en-us, flite rms and festival ked_diphone; queried by three
  espeak-ng voices and two flite awb variants (none of the enrolment speakers).
- **held_out**: 10 other keywords, other carriers; enrolled by espeak-ng en-gb-x-rp+f3, flite kal16 and
  festival kal_diphone (two engines of one speaker, kal); queried by two other espeak-ng voices, flite slt and
  festival slt (HTS): speakers used nowhere in "tuned".
- **human**: the recorded human voice that ALSA ships (alsa-utils, GPL-2: /usr/share/sounds/alsa/
  Front_Left.wav etc., "front left", "rear center", ...): keywords front, rear, side, left, right, center
  enrolled by the held-out enrolment voices. Not copied here: the eval reads them from alsa-utils; their word
  spans are found by the energy gap between the two words (:func:`human_spans`).

A query is a carrier sentence synthesized in three parts (before, keyword, after) joined with short seeded
pauses of 40–120 ms, so that the keyword's true span is known. Negatives are sentences without any keyword
(checked), in the query voices. Babble beds are sums of four sentences by four espeak-ng voices used nowhere
else, for the eval to mix under queries.

Usage: .venv/bin/python scripts/make_xspeaker_testdata.py [--out DIR] [--subset]
(default DIR build/xspeaker; --subset writes the small committed subset of tests/data/xspeaker: the held-out
enrolment examples, the held-out queries of two voices and 10 held-out negatives).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
SR = 16_000
ALSA = Path("/usr/share/sounds/alsa")

# (engine, voice, rate, pitch): rate = espeak words per minute or flite/festival duration stretch;
# pitch = espeak 0-99, flite F0 target mean in Hz (0: the voice's own), festival unused
Voice = tuple[str, str, float, float]

SPLITS: dict[str, dict] = {
    "tuned": {
        "keywords": [
            "weather",
            "music",
            "computer",
            "banana",
            "morning",
            "seven",
            "lights",
            "activate",
            "harmonic",
            "stop",
            "yellow",
            "garden",
        ],
        "enrol": [
            ("espeak", "en-us", 150, 50),
            ("flite", "rms", 1.0, 0),
            ("festival", "ked_diphone", 1.0, 0),
        ],
        "query": [
            ("espeak", "en-gb-scotland", 130, 40),
            ("espeak", "en-029+f2", 175, 70),
            ("espeak", "en-gb-x-gbclan+m5", 190, 55),
            ("flite", "awb", 1.0, 0),
            ("flite", "awb", 0.85, 130),
        ],
        "carriers": [
            ("please say", "right now"),
            ("I think", "is the word"),
            ("can you hear", "in this room"),
            ("okay", "thank you"),
            ("did you say", "or not"),
            ("she wrote", "on the card"),
        ],
        "negatives": [
            "the quick brown fox jumps over the lazy dog",
            "we will meet at the station after lunch",
            "nothing in this sentence should be found",
            "she sells sea shells by the sea shore",
            "a cold wind blew across the empty field",
            "my phone battery is almost empty again",
            "the library closes early on sundays",
            "rain is expected later this afternoon",
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
            "the soup needs a little more salt",
            "she bought a new pair of running shoes",
            "the meeting has been moved to friday",
            "my brother lives in a small village",
            "the baby is sleeping in the other room",
            "they painted the kitchen last summer",
            "the post office is across the road",
            "write your name at the top of the page",
            "i would like a cup of tea please",
            "the bridge was closed for repairs",
            "he lost his keys on the way home",
            "the teacher explained the lesson again",
        ],
    },
    "held_out": {
        "keywords": [
            "telephone",
            "window",
            "camera",
            "dinner",
            "purple",
            "engine",
            "holiday",
            "basket",
            "thunder",
            "umbrella",
        ],
        "enrol": [
            ("espeak", "en-gb-x-rp+f3", 145, 60),
            ("flite", "kal16", 1.0, 0),
            ("festival", "kal_diphone", 1.1, 0),
        ],
        "query": [
            ("espeak", "en-us-nyc+f4", 135, 70),
            ("espeak", "en-gb-x-gbcwmd+m7", 165, 35),
            ("flite", "slt", 1.0, 0),
            ("festival", "cmu_us_slt_arctic_hts", 1.0, 0),
        ],
        "carriers": [
            ("we talked about the", "for an hour"),
            ("where is my", "this morning"),
            ("bring the", "to the kitchen"),
            ("I never saw that", "before"),
            ("they sold a", "yesterday"),
        ],
        "negatives": [
            "the clock on the wall is five minutes fast",
            "she carried the boxes up the narrow stairs",
            "the farmer drove his tractor across the field",
            "we ordered pizza for the whole team",
            "a small boat drifted slowly down the river",
            "he fixed the broken chair with some glue",
            "the airport was crowded with travellers",
            "please sign the form and return it by post",
            "the cat slept on the warm windowsill",
            "our neighbours planted a tree in their yard",
            "the bus was late again this evening",
            "he poured a glass of cold milk",
            "the doctor will see you after lunch",
            "a tall man walked into the shop",
            "the river was high after the rain",
            "she laughed at the old joke again",
            "they built a fence around the field",
            "the car would not start after the frost",
            "we played cards until midnight",
            "the printer has run out of ink",
        ],
    },
}
HUMAN_KEYWORDS = ["front", "rear", "side", "left", "right", "center"]
HUMAN_CLIPS = [
    "Front_Left",
    "Front_Right",
    "Front_Center",
    "Rear_Left",
    "Rear_Right",
    "Rear_Center",
    "Side_Left",
    "Side_Right",
]
BABBLE_VOICES: list[Voice] = [
    ("espeak", "en-gb+m2", 160, 45),
    ("espeak", "en-us+f5", 150, 65),
    ("espeak", "en-029+m4", 170, 35),
    ("espeak", "en-gb-scotland+f1", 140, 60),
]
BABBLE_TEXTS = [
    "there was a lot of traffic on the main street this week",
    "the shop assistant counted the coins twice before closing",
    "many people came to the concert in the square",
    "he wrote a long letter to his aunt in the country",
    "the students waited outside the hall for the results",
    "a warm breeze came in through the open door",
    "the old tower can be seen from every part of town",
    "she spent the afternoon reading in the garden shed",
]
BABBLE_BEDS = 6
# Babble that no constant was chosen with (the eval's "unseen noise" rows): other voices, other texts.
UNSEEN_BABBLE_VOICES: list[Voice] = [  # espeak-ng variants that no split and no babble bed uses
    ("espeak", "en-us+m3", 160, 50),
    ("espeak", "en-gb+m6", 150, 40),
    ("espeak", "en-gb-x-gbclan+m1", 170, 65),
    ("espeak", "en-029+klatt", 145, 55),
]
UNSEEN_BABBLE_TEXTS = [
    "the ferry leaves the harbour at half past six every morning",
    "a group of tourists asked the guard for directions to the castle",
    "the baker sold out of bread before noon on saturday",
    "heavy snow closed the mountain pass for most of the week",
    "the orchestra rehearsed the second movement three times",
    "my uncle keeps bees at the bottom of his orchard",
]
SUBSET_QUERY_VOICES = (0, 3)  # held-out query voices whose queries are committed: espeak nyc+f4, festival slt


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """Mono float64 at 16 kHz, leading and trailing silence trimmed (±10 ms kept)."""
    engine, name, rate, pitch = voice
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.wav"
        if engine == "espeak":
            command = [
                "espeak-ng",
                "-v",
                name,
                "-s",
                str(int(rate)),
                "-p",
                str(int(pitch)),
                "-w",
                str(path),
                text,
            ]
            subprocess.run(command, check=True, capture_output=True)
        elif engine == "flite":
            command = ["flite", "-voice", name, "--setf", f"duration_stretch={rate}"]
            if pitch:
                command += ["--setf", f"int_f0_target_mean={pitch}"]
            subprocess.run([*command, "-t", text, "-o", str(path)], check=True, capture_output=True)
        elif engine == "festival":
            evals = ["-eval", f"(voice_{name})", "-eval", f"(Parameter.set 'Duration_Stretch {rate})"]
            subprocess.run(
                ["text2wave", *evals, "-o", str(path)], input=text.encode(), check=True, capture_output=True
            )
        else:
            raise ValueError(engine)
        sr, data = wavfile.read(path)
    y = data.astype(np.float64) / 32768.0
    if y.ndim > 1:
        y = y.mean(axis=1)
    if sr != SR:
        y = resample_poly(y, SR, sr)
    active = np.flatnonzero(np.abs(y) > 0.01 * np.abs(y).max())
    return y[max(active[0] - 160, 0) : active[-1] + 160] if active.size else y


def human_spans(y: np.ndarray, sr: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The spans (s) of the two words of an ALSA channel clip: split at the longest pause (10 ms frames
    more than 35 dB below the loudest) between the first and last sounding frame."""
    hop = sr // 100
    frames = y[: y.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = level > level.max() - 35
    first, last = np.flatnonzero(active)[[0, -1]]
    best, run_start, gap = (0, 0, 0), None, (first, first)
    for k in range(first, last + 1):
        if not active[k] and run_start is None:
            run_start = k
        if active[k] and run_start is not None:
            if k - run_start > best[0]:
                best, gap = (k - run_start, run_start, k), (run_start, k)
            run_start = None
    return (first / 100, gap[0] / 100), (gap[1] / 100, (last + 1) / 100)


def _write(out: Path, name: str, y: np.ndarray) -> str:
    peak = np.abs(y).max()
    y = y / peak * 0.7 if peak > 0 else y
    wavfile.write(out / name, SR, np.round(y * 32767).astype(np.int16))
    return name


def _voice_dict(voice: Voice) -> dict:
    return {"engine": voice[0], "voice": voice[1], "rate": voice[2], "pitch": voice[3]}


def _check_negatives() -> None:
    every = {word for split in SPLITS.values() for word in split["keywords"]} | set(HUMAN_KEYWORDS)
    for split in SPLITS.values():
        for text in split["negatives"]:
            found = every & set(re.findall(r"[a-z]+", text.lower()))
            if found:
                raise SystemExit(f"negative {text!r} holds keywords {sorted(found)}")


def generate(out: Path) -> dict:
    _check_negatives()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    manifest: dict[str, list] = {"enrol": [], "queries": [], "negatives": [], "babble": [], "human": []}
    for split, spec in SPLITS.items():
        for word in spec["keywords"]:
            for index, voice in enumerate(spec["enrol"]):
                name = _write(out, f"enrol_{word}_{index}.wav", synthesize(word, voice))
                manifest["enrol"].append(
                    {"file": name, "keyword": word, "split": split, **_voice_dict(voice)}
                )
        human_words = HUMAN_KEYWORDS if split == "held_out" else []
        for word in human_words:  # the human split is enrolled by the held-out enrolment voices
            for index, voice in enumerate(spec["enrol"]):
                name = _write(out, f"enrol_{word}_{index}.wav", synthesize(word, voice))
                manifest["enrol"].append(
                    {"file": name, "keyword": word, "split": "human", **_voice_dict(voice)}
                )
        for k, word in enumerate(spec["keywords"]):
            for index, voice in enumerate(spec["query"]):
                pause = [np.zeros(int(rng.uniform(0.04, 0.12) * SR)) for _ in range(2)]
                before, after = spec["carriers"][(k + index) % len(spec["carriers"])]
                parts = [synthesize(before, voice), pause[0], synthesize(word, voice), pause[1]]
                start = sum(part.size for part in parts[:2]) / SR
                end = start + parts[2].size / SR
                y = np.concatenate([*parts, synthesize(after, voice)])
                name = _write(out, f"query_{word}_{index}.wav", y)
                manifest["queries"].append(
                    {
                        "file": name,
                        "keyword": word,
                        "split": split,
                        "text": f"{before} {word} {after}",
                        "start_s": round(start, 3),
                        "end_s": round(end, 3),
                        **_voice_dict(voice),
                    }
                )
        for index, text in enumerate(spec["negatives"]):
            voice = spec["query"][index % len(spec["query"])]
            name = _write(out, f"negative_{split}_{index}.wav", synthesize(text, voice))
            manifest["negatives"].append({"file": name, "text": text, "split": split, **_voice_dict(voice)})
    for bed in range(BABBLE_BEDS):
        y = _babble_bed(bed, BABBLE_VOICES, BABBLE_TEXTS)
        manifest["babble"].append({"file": _write(out, f"babble_{bed}.wav", y)})
    if ALSA.is_dir():
        for clip in HUMAN_CLIPS:
            sr, data = wavfile.read(ALSA / f"{clip}.wav")
            spans = human_spans(data.astype(np.float64) / 32768.0, sr)
            words = clip.lower().split("_")
            for word, (start, end) in zip(words, spans, strict=True):
                manifest["human"].append(
                    {
                        "file": str(ALSA / f"{clip}.wav"),
                        "keyword": word,
                        "other": next(w for w in words if w != word),
                        "split": "human",
                        "start_s": round(start, 3),
                        "end_s": round(end, 3),
                    }
                )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def unseen_babble(out: Path) -> list[Path]:
    """Babble beds for the eval's "unseen noise" rows, written once into ``out``: sums of four sentences by
    UNSEEN_BABBLE_VOICES (none of them an eval speaker or a babble voice) saying UNSEEN_BABBLE_TEXTS."""
    paths = [out / f"babble_unseen_{bed}.wav" for bed in range(BABBLE_BEDS)]
    for bed, path in enumerate(paths):
        if not path.exists():
            _write(out, path.name, _babble_bed(bed, UNSEEN_BABBLE_VOICES, UNSEEN_BABBLE_TEXTS))
    return paths


def _babble_bed(bed: int, voices: list[Voice], texts: list[str]) -> np.ndarray:
    """Babble bed number ``bed``: each voice says a sentence (the bed-th onwards), each at the same power,
    the shorter ones looped to the longest."""
    said = [synthesize(texts[(bed + k) % len(texts)], voice) for k, voice in enumerate(voices)]
    length = max(y.size for y in said)
    return sum(np.pad(y / np.sqrt(np.mean(y**2)), (0, length - y.size), mode="wrap") for y in said)


def copy_subset(full: Path, out: Path) -> dict:
    """The committed subset: held-out enrolment examples, the held-out queries of SUBSET_QUERY_VOICES and
    the first 10 held-out negatives, copied from a full build (same bytes)."""
    manifest = json.loads((full / "manifest.json").read_text())
    voices = [_voice_dict(SPLITS["held_out"]["query"][k]) for k in SUBSET_QUERY_VOICES]
    keep = {
        "enrol": [e for e in manifest["enrol"] if e["split"] == "held_out"],
        "queries": [e for e in manifest["queries"] if e["split"] == "held_out" and _voice_of(e) in voices],
        "negatives": [e for e in manifest["negatives"] if e["split"] == "held_out"][:10],
    }
    out.mkdir(parents=True, exist_ok=True)
    for entries in keep.values():
        for entry in entries:
            shutil.copyfile(full / entry["file"], out / entry["file"])
    (out / "manifest.json").write_text(json.dumps(keep, indent=1) + "\n")
    return keep


def _voice_of(entry: dict) -> dict:
    return {key: entry[key] for key in ("engine", "voice", "rate", "pitch")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--subset", action="store_true", help="the small committed subset (tests/data/xspeaker)"
    )
    args = parser.parse_args()
    for tool in ("espeak-ng", "flite", "text2wave"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make xspeaker-tools)")
    full = ROOT / "build" / "xspeaker"
    if args.subset:
        if not (full / "manifest.json").exists():
            generate(full)
        out = args.out or ROOT / "tests" / "data" / "xspeaker"
        manifest = copy_subset(full, out)
    else:
        out = args.out or full
        manifest = generate(out)
    print(f"wrote {sum(len(v) for v in manifest.values())} manifest entries to {out}")


if __name__ == "__main__":
    main()
