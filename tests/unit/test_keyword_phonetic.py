"""harmonic.phonetic (PocketSphinx, optional dependency) and the cross-speaker material generator."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

import harmonic
from harmonic import InvalidAudio, Match, phonetic

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "xspeaker"
KEYWORDS = ROOT / "tests" / "data" / "keywords"
SR = 16_000


def _read(name: str) -> np.ndarray:
    sr, data = wavfile.read(DATA / name)
    assert sr == SR
    return data.astype(np.float64) / 32768.0


def _entry(kind: str, **where: str) -> dict:
    manifest = json.loads((DATA / "manifest.json").read_text())
    return next(e for e in manifest[kind] if all(e[k] == v for k, v in where.items()))


def test_import_harmonic_does_not_import_pocketsphinx() -> None:
    assert phonetic.available()
    assert "phonetic" not in harmonic.__all__
    layer = ROOT / "layers" / "harmonic" / "python"
    code = f"import sys; sys.path.insert(0, {str(layer)!r}); import harmonic"
    code += "; print('pocketsphinx' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "False"


def test_pronounce_from_the_bundled_dictionary() -> None:
    assert phonetic.pronounce("weather") == "W EH DH ER"
    assert phonetic.pronounce("Umbrella!") == "AH M B R EH L AH"
    assert phonetic.pronounce("red light") == "R EH D L AY T"
    assert phonetic.pronounce("xqzzyv") is None
    assert phonetic.pronounce("weather xqzzyv") is None
    assert phonetic.pronounce("  ") is None


def test_frame_score_is_linear_per_frame_and_clipped() -> None:
    assert phonetic.frame_score(0.0, 20) == 1.0
    assert phonetic.frame_score(-50 * 20, 20) == pytest.approx(0.5)
    assert phonetic.frame_score(-100 * 30, 30) == pytest.approx(0.0)
    assert phonetic.frame_score(-1e9, 10) == 0.0
    assert phonetic.frame_score(10.0, 1) == 1.0


def test_stationary_noise_tells_white_noise_from_babble_music_and_silence() -> None:
    rng = np.random.default_rng(3)
    speech = _read(_entry("queries", keyword="window", engine="festival")["file"])
    white = speech + rng.standard_normal(speech.size) * np.sqrt(np.mean(speech**2) / 10)
    assert phonetic.stationary_noise(white)
    babble = speech + 0.3 * np.roll(speech, SR // 3) + 0.3 * np.roll(speech, SR)
    assert not phonetic.stationary_noise(babble)
    t = np.arange(speech.size) / SR
    chords = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.05
    assert not phonetic.stationary_noise(speech + chords)
    assert not phonetic.stationary_noise(np.concatenate([np.zeros(SR), speech]))  # digital silence


def test_phones_of_example_hears_phones_and_refuses_silence() -> None:
    phones = phonetic.phones_of_example(
        _read(_entry("enrol", keyword="telephone", engine="flite")["file"]), SR
    )
    assert 2 <= len(phones.split()) <= 12
    arpabet = (
        "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
    )
    assert set(phones.split()) <= set(arpabet.split())  # no silence or noise unit
    with pytest.raises(InvalidAudio, match="silent"):
        phonetic.phones_of_example(np.zeros(SR), SR)
    with pytest.raises(InvalidAudio, match="long"):
        phonetic.phones_of_example(np.zeros(100), SR)


def test_spotter_finds_a_spelled_keyword_where_it_is_said_by_an_unseen_voice() -> None:
    entry = _entry("queries", keyword="telephone", engine="festival")
    spotter = phonetic.KeywordSpotter(
        {"tel": [phonetic.pronounce("telephone")], "cam": [phonetic.pronounce("camera")]}
    )
    matches = spotter.match(_read(entry["file"]), SR)
    assert matches
    assert isinstance(matches[0], Match)
    best = matches[0]
    assert best.pattern_id == "tel"
    assert phonetic.DEFAULT_MIN_SCORE <= best.score <= 1.0
    assert best.start_s == pytest.approx(entry["start_s"], abs=0.25)
    assert best.end_s == pytest.approx(entry["end_s"], abs=0.25)
    # resampled queries are accepted; one match per pattern id, best first
    at_8k = spotter.match(_read(entry["file"])[::2], 8_000)
    assert len({m.pattern_id for m in at_8k}) == len(at_8k)
    assert [m.score for m in at_8k] == sorted((m.score for m in at_8k), reverse=True)


def test_spotter_rejects_nothing_to_search_and_bad_audio() -> None:
    with pytest.raises(ValueError, match="no keyword"):
        phonetic.KeywordSpotter({})
    spotter = phonetic.KeywordSpotter({"w": [phonetic.pronounce("window")]})
    assert spotter.match(np.zeros(SR), SR) == []
    with pytest.raises(InvalidAudio, match="NaN"):
        spotter.match(np.full(SR, np.nan), SR)


# --- the generator (scripts/make_xspeaker_testdata.py): its splits and helpers, no synthesizer needed ------


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location(
        "make_xspeaker_testdata", ROOT / "scripts" / "make_xspeaker_testdata.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_xspeaker_testdata"] = module
    spec.loader.exec_module(module)
    return module


def _speaker(voice: tuple) -> str:
    """The physical speaker of a voice: flite and festival share slt and kal."""
    name = voice[1]
    for shared in ("slt", "kal"):
        if shared in name:
            return shared
    return f"{voice[0]}:{name.split('+')[0] if voice[0] != 'espeak' else name}"


def test_splits_keep_enrolment_and_query_speakers_apart(generator) -> None:
    splits = generator.SPLITS
    seen: dict[str, set[str]] = {}
    for name, spec in splits.items():
        enrol = {_speaker(v) for v in spec["enrol"]}
        query = {_speaker(v) for v in spec["query"]}
        assert enrol.isdisjoint(query), name
        assert {v[0] for v in spec["enrol"]} == {"espeak", "flite", "festival"}
        assert len(spec["keywords"]) >= 10
        seen[name] = enrol | query
    assert set(splits["tuned"]["keywords"]).isdisjoint(splits["held_out"]["keywords"])
    non_espeak = {s for s in seen["held_out"] if not s.startswith("espeak")}
    assert non_espeak.isdisjoint(seen["tuned"])  # held-out flite/festival speakers never tuned on


def test_unseen_babble_uses_no_voice_or_sentence_of_the_eval(generator) -> None:
    used = {v[1] for spec in generator.SPLITS.values() for v in spec["enrol"] + spec["query"]}
    used |= {v[1] for v in generator.BABBLE_VOICES}
    variants = {name.split("+")[1] for name in used if "+" in name}
    for _, name, _, _ in generator.UNSEEN_BABBLE_VOICES:
        assert name not in used
        assert name.split("+")[1] not in variants  # no voice variant of an eval speaker or babble bed
    sentences = set(generator.BABBLE_TEXTS)
    for spec in generator.SPLITS.values():
        sentences |= set(spec["negatives"])
    assert sentences.isdisjoint(generator.UNSEEN_BABBLE_TEXTS)
    assert len(generator.UNSEEN_BABBLE_VOICES) == len(generator.BABBLE_VOICES)  # four talkers, as the beds


def test_negatives_hold_no_keyword(generator) -> None:
    generator._check_negatives()
    every = {w for spec in generator.SPLITS.values() for w in spec["keywords"]}
    for spec in generator.SPLITS.values():
        for text in spec["negatives"]:
            assert every.isdisjoint(text.split())


def test_human_spans_split_two_words_at_the_pause(generator) -> None:
    sr = 48_000
    t = np.arange(int(0.4 * sr)) / sr
    word = 0.3 * np.sin(2 * np.pi * 220 * t)
    y = np.concatenate([np.zeros(sr // 10), word, np.zeros(sr // 4), word, np.zeros(sr // 10)])
    (a0, a1), (b0, b1) = generator.human_spans(y, sr)
    assert a0 == pytest.approx(0.1, abs=0.02)
    assert a1 == pytest.approx(0.5, abs=0.02)
    assert b0 == pytest.approx(0.75, abs=0.02)
    assert b1 == pytest.approx(1.15, abs=0.02)


def test_pronounce_text_names_every_word_it_cannot_pronounce() -> None:
    assert phonetic.pronounce_text("Weather, report!") == "W EH DH ER R IY P AO R T"
    assert phonetic.pronounce_text("check-in") == "CH EH K IH N"  # a hyphen joins two words
    with pytest.raises(phonetic.UnknownWords) as missing:
        phonetic.pronounce_text("weather zqxwv qqqz")
    assert missing.value.words == ["zqxwv", "qqqz"]
    assert "'zqxwv'" in str(missing.value)
    assert "example" in str(missing.value)
    with pytest.raises(phonetic.UnknownWords) as foreign:
        phonetic.pronounce_text("météo demain")
    assert foreign.value.words == ["météo"]
    assert "en-us" in str(foreign.value)
    with pytest.raises(phonetic.UnknownWords):
        phonetic.pronounce_text(" ,; ")
    with pytest.raises(phonetic.UnknownWords, match="at most 8"):
        phonetic.pronounce_text("the " * 9)


def test_a_keyword_artifact_round_trips_and_a_bad_one_is_refused() -> None:
    keyword = phonetic.Keyword("weather", ("W EH DH ER", "W AE DH ER"))
    assert phonetic.Keyword.from_bytes(keyword.to_bytes()) == keyword
    from harmonic.serialization import pack

    for meta in (
        {"text": "x", "pronunciations": []},  # nothing to search
        {"text": "x", "pronunciations": ["W EH XX ER"]},  # not a phone of the model
        {"text": "x", "pronunciations": [" ".join(["AH"] * 65)]},  # longer than 64 phones
        {"text": "x", "pronunciations": ["AH"] * 17},  # more than 16 pronunciations
        {"text": 5, "pronunciations": ["AH"]},
        {"text": "x", "pronunciations": "AH"},
    ):
        with pytest.raises(ValueError, match=r"keyword|pronunciation"):
            phonetic.Keyword.from_bytes(pack(b"HKWD", meta, {}))
    with pytest.raises(ValueError, match="wrong tag"):
        phonetic.Keyword.from_bytes(b"TMPL" + keyword.to_bytes()[4:])  # another artifact's tag


def test_a_keyword_keeps_its_examples_speech_embeddings() -> None:
    """A keyword registered from an example keeps the example's speech embeddings (the match stage joins
    them to its margin); one by spelling, or stored before they were kept, has none and still reads."""
    import sys
    from pathlib import Path

    from harmonic.serialization import pack

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))
    from harmonic_service.logic.patterns import build_keyword

    example = (Path(__file__).resolve().parents[1] / "data" / "keywords" / "enrol_weather_0.wav").read_bytes()
    spelled = phonetic.Keyword.from_bytes(build_keyword("weather", None)[0])
    assert spelled.embedding is None
    heard = phonetic.Keyword.from_bytes(build_keyword("weather", example)[0])
    assert heard.embedding is not None
    assert heard.embedding.shape[1] == 96
    assert np.allclose(np.linalg.norm(heard.embedding, axis=1), 1.0, atol=1e-5)
    assert 3 <= heard.embedding.shape[0] <= 20  # a word of about half a second: one row per 80 ms
    older = pack(b"HKWD", {"text": "weather", "pronunciations": ["W EH DH ER"]}, {})
    assert phonetic.Keyword.from_bytes(older).embedding is None
    meta = {"text": "weather", "pronunciations": ["W EH DH ER"]}
    for bad in (np.zeros((3, 95)), np.full((3, 96), np.nan), np.zeros((257, 96)), np.zeros(96)):
        with pytest.raises(ValueError, match="keyword embedding"):
            phonetic.Keyword.from_bytes(pack(b"HKWD", meta, {"embedding": bad.astype("<f4")}))


def test_check_speech_refuses_silence_and_noise_and_accepts_a_spoken_word() -> None:
    rng = np.random.default_rng(3)
    for samples in (np.zeros(SR), 0.3 * rng.standard_normal(SR), np.cumsum(rng.standard_normal(SR)) / 300):
        with pytest.raises(InvalidAudio, match="speech"):
            phonetic.check_speech(samples, SR)
    for entry in json.loads((DATA / "manifest.json").read_text())["enrol"]:  # every engine's examples
        phonetic.check_speech(_read(entry["file"]), SR)
        assert phonetic.voiced_seconds(_read(entry["file"]), SR) >= 0.1


def _synth_music():
    """bench/eval_matching.py's synthetic music (melody of harmonic notes, chord bed, drum hits)."""
    spec = importlib.util.spec_from_file_location("eval_matching", ROOT / "bench" / "eval_matching.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synth_music


def _melody(semitones: list[int], note_s: float = 0.25) -> np.ndarray:
    """A piano-like melody: each note struck (8 harmonic partials at 1/k) and decaying."""
    t = np.arange(int(note_s * SR)) / SR
    envelope = np.minimum(1.0, t / 0.005) * np.exp(-4.0 * t)
    notes = []
    for step in semitones:
        f = 440.0 * 2 ** (step / 12)
        notes.append(envelope * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 9)))
    y = np.concatenate(notes)
    return 0.5 * y / np.max(np.abs(y))


def test_check_speech_refuses_music_and_says_so() -> None:
    synth_music = _synth_music()
    # seeds >= 1000 were not used to choose the constants (bench/eval_speech_check.py tunes on 0-49)
    music = [synth_music(seed, 5.0, SR) for seed in range(1000, 1005)]
    music += [_melody([-9, -7, -5, -4, -2, 0]), _melody([3, 7, 10, 7, 3, 0, 3, 7], note_s=0.15)]
    for samples in music:
        with pytest.raises(InvalidAudio, match="music, not speech"):
            phonetic.check_speech(samples, SR)
        assert phonetic.longest_note_seconds(samples, SR) >= phonetic.NOTE_MIN_S


def _plucked_string(note_hz: float, seconds: float, seed: int) -> np.ndarray:
    """A plucked string by Karplus & Strong (1983): a noise burst circulating in a delay line of one
    period, averaged and damped on every pass (what sox's ``synth pluck`` does; no sox in CI)."""
    period = round(SR / note_hz)
    line = np.random.default_rng(seed).uniform(-1.0, 1.0, period)
    out = np.empty(int(seconds * SR))
    for start in range(0, out.size, period):
        chunk = out[start : start + period]
        chunk[:] = line[: chunk.size]
        line = 0.996 * 0.5 * (line + np.roll(line, -1))
    return out


def test_check_speech_refuses_a_plucked_string_melody() -> None:
    """A generator the constants were not chosen on (bench/eval_speech_check.py tunes on synth_music and
    its instrument generator)."""
    notes = [_plucked_string(f, 0.3, k) for k, f in enumerate([130.8, 164.8, 196.0, 261.6, 196.0])]
    with pytest.raises(InvalidAudio, match="music, not speech"):
        phonetic.check_speech(0.5 * np.concatenate(notes), SR)


# Refused by the voicing test, not as music, since before the music test existed: the vowel glides from
# 99 to 71 Hz within 0.1 s, too fast for the 64 ms frames of voiced_seconds (0.02 s voiced).
_VOICING_MISSES = {"keywords/enrol_stop_2.wav"}


def _committed_examples() -> list[Path]:
    return sorted(DATA.glob("enrol_*.wav")) + sorted(KEYWORDS.glob("*.wav"))


def test_check_speech_accepts_every_committed_spoken_example() -> None:
    refused = {}
    for path in _committed_examples():
        name = f"{path.parent.name}/{path.name}"
        sr, data = wavfile.read(path)
        try:
            phonetic.check_speech(data.astype(np.float64) / 32768.0, sr)
        except InvalidAudio as error:
            refused[name] = str(error)
    assert not [message for message in refused.values() if "music" in message]
    assert set(refused) == _VOICING_MISSES, refused
