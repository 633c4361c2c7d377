"""Pure service logic: options and steps, skip rules, the stage functions, the in-process chain, the envelope,
settings and the DynamoDB value codec. No AWS here (the integration tests cover the adapters)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest

import harmonic
from harmonic import InvalidAudio, json_safe
from harmonic_service import config
from harmonic_service.dal.attributes import from_av, to_av
from harmonic_service.errors import PoisonMessage
from harmonic_service.logic import MemoryContext, Options, parse_options, resolve_steps, run_chain
from harmonic_service.logic.patterns import Pattern, PatternSet
from harmonic_service.models import Envelope, Invocation
from harmonic_service.stages import STAGE_NAMES, STAGES, get_stage, skip_reason
from harmonic_service.stages.denoise import denoise
from harmonic_service.stages.features import features
from harmonic_service.stages.ingest import ingest
from harmonic_service.stages.match import match
from harmonic_service.stages.normalize import normalize
from harmonic_service.stages.respond import respond
from tests.conftest import SPEECH_FILES

SR = 16_000


def pcm16_wav(samples: np.ndarray, sr: int) -> bytes:
    from scipy.io import wavfile

    buffer = io.BytesIO()
    wavfile.write(buffer, sr, np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return buffer.getvalue()


def float_wav(samples: np.ndarray, sr: int) -> bytes:
    from scipy.io import wavfile

    buffer = io.BytesIO()
    wavfile.write(buffer, sr, samples.astype(np.float32))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def noisy_speech() -> np.ndarray:
    from tests.conftest import read_wav_reference

    speech, _ = read_wav_reference(SPEECH_FILES[0])
    rng = np.random.default_rng(11)
    noise = rng.standard_normal(speech.size) * np.sqrt(np.mean(speech**2)) / 10 ** (8 / 20)
    return (speech + noise).astype(np.float32)


# --- options, steps, skip rules --------------------------------------------------------------------------


def test_parse_options_defaults_and_overrides() -> None:
    assert parse_options(None) == Options()
    assert parse_options({}) == Options(target_lufs=-23.0, peak_dbfs=-1.0, clean_snr_db=30.0)
    parsed = parse_options({"target_lufs": -16, "peak_dbfs": -2.5, "clean_snr_db": 45})
    assert parsed == Options(target_lufs=-16.0, peak_dbfs=-2.5, clean_snr_db=45.0)
    assert isinstance(parsed.target_lufs, float)
    assert parse_options(parsed) is parsed
    assert parsed.to_dict() == {"target_lufs": -16.0, "peak_dbfs": -2.5, "clean_snr_db": 45.0}
    assert parsed.denoiser == "deepfilternet3"
    gated = parse_options({"denoiser": "spectral_gating"})
    assert gated.to_dict()["denoiser"] == "spectral_gating"
    assert parse_options(gated.to_dict()) == gated
    assert parsed.near_duplicates is False
    assert "near_duplicates" not in parsed.to_dict()  # a default request reads the same to older stages
    near = parse_options({"near_duplicates": True})
    assert near.near_duplicates is True
    assert near.to_dict()["near_duplicates"] is True
    assert parse_options(near.to_dict()) == near


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"loudness": -16}, "unknown options loudness"),
        ({"target_lufs": 0}, "target_lufs must be between -70 and -5"),
        ({"peak_dbfs": 1.0}, "peak_dbfs must be between"),
        ({"clean_snr_db": -1}, "clean_snr_db must be between"),
        ({"denoiser": "rnnoise"}, "denoiser must be one of deepfilternet3, spectral_gating, got 'rnnoise'"),
        ({"denoiser": None}, "denoiser must be one of"),
        ({"near_duplicates": "yes"}, "near_duplicates must be true or false, got 'yes'"),
        ({"near_duplicates": 1}, "near_duplicates must be true or false"),
        ({"target_lufs": "-16"}, "must be a number"),
        ({"target_lufs": True}, "must be a number"),
        ({"target_lufs": math.nan}, "must be a number"),
        ([("target_lufs", -16)], "options must be an object"),
    ],
)
def test_parse_options_rejects(raw, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_options(raw)


def test_parse_options_patterns() -> None:
    parsed = parse_options({"patterns": [" weather ", "p-1", "weather"]})
    assert parsed.patterns == ("weather", "p-1")  # stripped, duplicates dropped, order kept
    assert parsed.to_dict()["patterns"] == ["weather", "p-1"]
    assert parse_options(parsed.to_dict()) == parsed  # the envelope's copy parses back the same
    assert "patterns" not in Options().to_dict()


@pytest.mark.parametrize(
    ("patterns", "fragment"),
    [
        ("weather", "must be a list"),
        ({"weather": 1}, "must be a list"),
        ([], "omit it to match every registered pattern"),
        (["ok", 3], "every entry must be a pattern id or name"),
        (["  "], "every entry must be a pattern id or name"),
        (["x" * 65], "every entry must be a pattern id or name"),
        ([f"p{k}" for k in range(101)], "at most 100"),
    ],
)
def test_parse_options_rejects_bad_pattern_selectors(patterns, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_options({"patterns": patterns})


def test_resolve_steps() -> None:
    required = ["ingest", "normalize", "features", "respond"]
    assert resolve_steps(None) == list(STAGE_NAMES)
    assert resolve_steps([]) == required
    assert resolve_steps(["match", "ingest", "denoise"]) == list(STAGE_NAMES)
    assert resolve_steps(["match", "match"]) == ["ingest", "normalize", "features", "match", "respond"]
    with pytest.raises(ValueError, match="unknown steps echo"):
        resolve_steps(["denoise", "echo"])
    with pytest.raises(ValueError, match="list of stage names"):
        resolve_steps("denoise")


@pytest.mark.parametrize(
    ("stage", "steps", "snr_db", "patterns", "expected"),
    [
        ("ingest", [], 10.0, 0, None),
        ("normalize", [], 10.0, 0, None),
        ("denoise", ["denoise"], 10.0, 0, None),
        ("denoise", ["denoise"], None, 0, None),
        ("denoise", ["denoise"], 30.0, 0, "clean clip: estimated SNR 30.0 dB >= 30 dB"),
        ("denoise", [], 10.0, 0, "excluded by steps"),
        ("match", ["match"], 10.0, 0, "no patterns registered"),
        ("match", ["match"], 10.0, 2, None),
        ("match", ["denoise"], 10.0, 2, "excluded by steps"),
    ],
)
def test_skip_reason(stage: str, steps: list[str], snr_db, patterns: int, expected: str | None) -> None:
    context = skip_context(resolve_steps(steps), Options(), snr_db, patterns)
    assert skip_reason(get_stage(stage), context) == expected


def skip_context(steps, options: Options, snr_db: float | None, pattern_count: int) -> MemoryContext:
    """An in-memory context after ingest, with `pattern_count` registered patterns of the request's."""
    names = {
        f"p-{i}": name for i, name in enumerate(options.patterns or [f"w{i}" for i in range(pattern_count)])
    }
    names = dict(list(names.items())[:pattern_count])
    patterns = PatternSet(names=names, kinds=dict.fromkeys(names, "template"))
    context = MemoryContext(b"", options, steps, patterns=patterns)
    context.record("ingest", {"snr_db": snr_db})
    return context


def test_skip_reason_names_an_empty_selection() -> None:
    reason = skip_reason(get_stage("match"), skip_context(STAGE_NAMES, Options(patterns=("gone",)), None, 0))
    assert reason == "no selected pattern is registered"


def test_skip_reason_threshold_follows_options() -> None:
    denoise_stage = get_stage("denoise")
    assert skip_reason(denoise_stage, skip_context(STAGE_NAMES, Options(clean_snr_db=50.0), 40.0, 0)) is None
    reason = skip_reason(denoise_stage, skip_context(STAGE_NAMES, Options(clean_snr_db=35.0), 40.0, 0))
    assert reason.startswith("clean clip")


def test_json_safe() -> None:
    value = {
        "a": np.float32(1.23456789),
        "b": [np.nan, np.inf, -np.inf, 2],
        "c": np.arange(3, dtype=np.int64),
        "d": (np.bool_(True), None, "x"),
        1: {"nested": float("-inf")},
    }
    safe = json_safe(value)
    assert safe == {
        "a": 1.2346,
        "b": [None, None, None, 2],
        "c": [0, 1, 2],
        "d": [True, None, "x"],
        "1": {"nested": None},
    }
    json.dumps(safe, allow_nan=False)
    assert type(safe["c"][0]) is int


# --- stages ---------------------------------------------------------------------------------------------


def test_ingest_downmixes_resamples_and_describes() -> None:
    sr = 44_100
    t = np.arange(int(1.5 * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, 0.5 * tone], axis=1)
    output = ingest(pcm16_wav(stereo, sr))

    assert output.audio.dtype == np.float32
    assert output.audio.ndim == 1
    assert output.audio.size == pytest.approx(1.5 * SR, abs=2)
    spectrum = np.abs(np.fft.rfft(output.audio))
    assert np.fft.rfftfreq(output.audio.size, 1 / SR)[np.argmax(spectrum)] == pytest.approx(440, abs=1)
    summary = output.summary
    assert summary["duration_s"] == pytest.approx(1.5)
    assert summary["sample_rate"] == sr
    assert summary["channels"] == 2
    assert summary["analysis_sample_rate"] == SR
    assert summary["peak_dbfs"] == pytest.approx(20 * np.log10(0.375), abs=0.05)  # mean of the channels
    assert summary["clipped_fraction"] == 0.0
    assert summary["snr_db"] >= 30
    assert summary["clean"] is True
    assert summary["warnings"] == []
    json.dumps(summary, allow_nan=False)


def test_ingest_flags_noise_and_mild_clipping(noisy_speech: np.ndarray) -> None:
    loud = noisy_speech / np.quantile(np.abs(noisy_speech), 0.99)  # about 1 % of the samples clip
    output = ingest(pcm16_wav(loud, SR))
    assert output.summary["clean"] is False
    assert output.summary["snr_db"] < 20
    assert 0.001 < output.summary["clipped_fraction"] < 0.2
    assert any("clipped" in w for w in output.summary["warnings"])
    assert np.array_equal(output.audio, ingest(pcm16_wav(loud, SR)).audio)  # deterministic
    assert ingest(pcm16_wav(loud, SR), clean_snr_db=0.0).summary["clean"] is True


def test_ingest_silence_is_valid_but_flagged() -> None:
    output = ingest(pcm16_wav(np.zeros(SR), SR))
    assert output.summary["peak_dbfs"] is None
    assert output.summary["snr_db"] is None
    assert output.summary["clean"] is False
    assert output.summary["warnings"] == ["the clip is digital silence"]


@pytest.mark.parametrize(
    ("wav", "fragment"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEnot a fmt chunk", ""),
        (b"", ""),
        (float_wav(np.array([0.1, np.nan] * 4000), SR), "NaN"),
        (float_wav(np.array([0.1, np.inf] * 4000), SR), ""),
        (pcm16_wav(np.full(800, 0.1), SR), "0.050 s long"),
        (pcm16_wav(np.sign(np.sin(np.arange(SR) * 0.05)), SR), "clipped"),
    ],
)
def test_ingest_rejects_unusable_audio(wav: bytes, fragment: str) -> None:
    with pytest.raises(InvalidAudio, match=fragment or None) as caught:
        ingest(wav)
    assert str(caught.value)


def test_denoise_raises_the_snr(noisy_speech: np.ndarray) -> None:
    output = denoise(noisy_speech, SR)
    assert output.audio.dtype == np.float32
    assert output.audio.shape == noisy_speech.shape
    assert output.summary["applied"] is True
    assert output.summary["snr_db_after"] > output.summary["snr_db_before"] + 3
    given = denoise(noisy_speech, SR, snr_db_before=12.5)
    assert given.summary["snr_db_before"] == 12.5
    np.testing.assert_array_equal(given.audio, output.audio)


def test_normalize_reaches_the_target_measured_independently(noisy_speech: np.ndarray) -> None:
    import pyloudnorm

    quiet = 0.05 * noisy_speech
    output = normalize(quiet, SR, target_lufs=-20.0, peak_dbfs=-1.0)
    info = output.summary
    assert info["target_lufs"] == -20.0
    assert {"input_lufs", "output_lufs", "gain_db", "peak_limited"} <= set(info)
    assert not info["peak_limited"]
    measured = pyloudnorm.Meter(SR).integrated_loudness(output.audio.astype(np.float64))
    assert measured == pytest.approx(-20.0, abs=0.2)
    assert info["output_lufs"] == pytest.approx(measured, abs=0.2)
    assert info["gain_db"] == pytest.approx(info["output_lufs"] - info["input_lufs"], abs=0.2)
    assert output.audio.dtype == np.float32


def test_normalize_silence_is_json_safe() -> None:
    output = normalize(np.zeros(SR, dtype=np.float32), SR)
    assert output.summary["input_lufs"] is None
    json.dumps(output.summary, allow_nan=False)
    assert not np.any(output.audio)


def test_features_are_json_safe_and_describe_a_tone() -> None:
    t = np.arange(SR) / SR
    output = features((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    assert output.audio is None
    summary = output.summary
    json.dumps(summary, allow_nan=False)
    assert summary["f0_hz"]["median"] == pytest.approx(220, rel=0.01)
    assert summary["voiced_fraction"] > 0.8
    assert len(summary["mfcc_mean"]) == 13
    assert len(summary["chroma_mean"]) == 12


def test_match_without_patterns_is_empty() -> None:
    audio = np.zeros(SR, dtype=np.float32)
    assert match(audio, SR).summary == {"matches": []}
    assert match(audio, SR, ()).audio is None


def test_match_finds_registered_keywords_and_recordings() -> None:
    from harmonic_service.logic.patterns import build_artifact

    keywords = Path(__file__).resolve().parents[1] / "data" / "keywords"
    template, _ = build_artifact("template", (keywords / "enrol_music_0.wav").read_bytes())
    other, _ = build_artifact("template", (keywords / "enrol_banana_0.wav").read_bytes())
    speech_wav = (Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav").read_bytes()
    recording, seconds = build_artifact("fingerprint", speech_wav)
    assert seconds > 1.0
    patterns = (
        Pattern("p-music", "music", "template", template),
        Pattern("p-banana", "banana", "template", other),
        Pattern("p-speech", "speech", "fingerprint", recording),
    )
    query = _read_wav(keywords / "query_music_0.wav")
    summary = match(query, SR, patterns).summary
    assert summary["matches"][0]["name"] == "music"
    assert summary["matches"][0]["kind"] == "template"
    speech = _read_wav(Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav")
    found = match(speech[SR : 3 * SR], SR, patterns).summary["matches"]
    assert found[0]["pattern_id"] == "p-speech"
    assert found[0]["start_s"] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="kind"):
        build_artifact("melody", speech_wav)


def test_matches_of_different_kinds_are_ordered_by_their_margin_over_each_kinds_threshold() -> None:
    """Scores of different kinds have different scales: the service returns a template from 0.575, a keyword
    from 0.5 and a fingerprint from 0.5 (docs/design.md), and orders matches by how far above that they
    are."""
    from harmonic_service.logic.patterns import margin, threshold_of

    assert (threshold_of("template"), threshold_of("keyword"), threshold_of("fingerprint")) == (
        0.575,
        0.5,
        0.5,
    )
    with pytest.raises(ValueError, match="kind"):
        threshold_of("melody")
    assert margin({"kind": "template", "score": 0.6}) == pytest.approx(0.025)
    assert margin({"kind": "keyword", "score": 0.6}) == pytest.approx(0.1)
    pattern_set = PatternSet(names={"t": "t", "f": "f"}, kinds={"t": "template", "f": "fingerprint"})
    pattern_set.index = _FixedIndex([harmonic.Match("f", 0.56, 0.0, 1.0)])  # margin 0.06
    templates = [harmonic.Match("t", 0.6, 0.0, 1.0)]  # a higher score, but a margin of 0.025
    with patch.object(harmonic, "match_templates", return_value=templates):
        pattern_set.templates = {"t": harmonic.Template.from_bytes(_template_without_embedding())}
        found = pattern_set.match(np.ones(SR), SR)
    assert [entry["pattern_id"] for entry in found] == ["f", "t"]


class _FixedIndex:
    """A fingerprint index that answers every query with the same hits."""

    def __init__(self, hits: list) -> None:
        self.hits = hits

    def __len__(self) -> int:
        return len(self.hits)

    def query(self, fp, max_results: int = 5, near_duplicates: bool = False, denoised: bool = False) -> list:
        return self.hits


def test_match_considers_only_the_selected_patterns() -> None:
    from harmonic_service.logic.patterns import PatternSet, build_artifact

    keywords = Path(__file__).resolve().parents[1] / "data" / "keywords"
    artifacts = {
        word: build_artifact("template", (keywords / f"enrol_{word}_0.wav").read_bytes())[0]
        for word in ("music", "banana")
    }
    speech_path = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"
    recording, _ = build_artifact("fingerprint", speech_path.read_bytes())
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("p-music", "music", "template", artifacts["music"]),
            Pattern("p-banana", "banana", "template", artifacts["banana"]),
            Pattern("p-speech", "speech", "fingerprint", recording),
        ]
    )
    assert pattern_set.selected(None) == {"p-music", "p-banana", "p-speech"}
    assert pattern_set.selected(["banana", "p-speech", "nothing"]) == {"p-banana", "p-speech"}
    query = _read_wav(keywords / "query_music_0.wav")
    assert match(query, SR, pattern_set).summary["matches"][0]["name"] == "music"
    narrowed = match(query, SR, pattern_set, ["banana"]).summary["matches"]
    assert all(found["name"] == "banana" for found in narrowed)
    speech = _read_wav(speech_path)[SR : 3 * SR]
    assert match(speech, SR, pattern_set, ["speech"]).summary["matches"][0]["pattern_id"] == "p-speech"
    assert match(speech, SR, pattern_set, ["music"]).summary["matches"] == []  # the recording is not chosen
    # a clip shorter than one fingerprint frame (0.11 s: ingest accepts ≥ 0.1 s) matches nothing, no error
    assert match(speech[: int(0.11 * SR)], SR, pattern_set, ["speech"]).summary["matches"] == []


def test_fingerprints_are_matched_on_the_clip_before_the_enhancer() -> None:
    """After DeepFilterNet3 (`enhanced`) the match stage hands over a way to fetch ingest's audio, and the
    fingerprint query runs on that: the enhancer keeps speech and takes music out. It is fetched only when
    a fingerprint is selected."""
    from harmonic_service.logic.patterns import PatternSet, build_artifact

    speech_path = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"
    recording, _ = build_artifact("fingerprint", speech_path.read_bytes())
    keywords = Path(__file__).resolve().parents[1] / "data" / "keywords"
    template, _ = build_artifact("template", (keywords / "enrol_music_0.wav").read_bytes())
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("p-speech", "speech", "fingerprint", recording),
            Pattern("p-music", "music", "template", template),
        ]
    )
    before = _read_wav(speech_path)[SR : 4 * SR]
    after = np.zeros_like(before)  # as if the enhancer had taken the recording out
    fetched: list[bool] = []

    def fetch() -> np.ndarray:
        fetched.append(True)
        return before

    assert match(after, SR, pattern_set, ["speech"], enhanced=True).summary["matches"] == []
    found = match(after, SR, pattern_set, ["speech"], enhanced=True, audio_before_enhancer=fetch)
    assert [m["pattern_id"] for m in found.summary["matches"]] == ["p-speech"]
    assert fetched == [True]
    unenhanced = match(after, SR, pattern_set, ["speech"], audio_before_enhancer=fetch)
    assert unenhanced.summary["matches"] == []  # not enhanced: the clip is the clip
    match(after, SR, pattern_set, ["music"], enhanced=True, audio_before_enhancer=fetch)
    assert fetched == [True]  # no fingerprint selected: nothing fetched


def _read_wav(path: Path) -> np.ndarray:
    from scipy.io import wavfile

    _, data = wavfile.read(path)
    return (data / 32768.0).astype(np.float32)


def test_respond_assembles_the_result() -> None:
    matches = [
        {"pattern_id": "a", "score": 0.2},
        {"pattern_id": "b", "score": 0.9},
        {"pattern_id": "c", "score": None},
    ]
    summaries = {
        "ingest": {"duration_s": 1.0},
        "normalize": {"output_lufs": -23.0},
        "features": {"hnr_db": 10.0},
        "match": {"matches": matches},
    }
    result = respond(STAGES[:-1], summaries)
    assert set(result) == {"audio", "denoise", "loudness", "features", "matches"}
    assert result["audio"] == {"duration_s": 1.0}
    assert result["denoise"] == {"applied": False, "reason": "excluded by steps"}
    assert result["loudness"] == {"output_lufs": -23.0}
    assert [m["pattern_id"] for m in result["matches"]] == ["b", "a", "c"]
    assert summaries["match"]["matches"][0]["pattern_id"] == "a"  # the input is not mutated


# --- the chain ------------------------------------------------------------------------------------------


def test_run_chain_on_noisy_speech(noisy_speech: np.ndarray) -> None:
    timings: dict[str, float] = {}
    result = run_chain(pcm16_wav(noisy_speech, SR), timings=timings)
    json.dumps(result, allow_nan=False)
    assert set(result) == {"audio", "denoise", "loudness", "features", "matches"}
    assert result["denoise"]["applied"] is True
    assert result["matches"] == []
    assert result["loudness"]["output_lufs"] == pytest.approx(-23.0, abs=0.5)
    assert set(timings) == {"ingest", "denoise", "normalize", "features", "respond"}
    assert all(ms >= 0 for ms in timings.values())


def test_run_chain_skips_and_options() -> None:
    clean = SPEECH_FILES[1].read_bytes()
    timings: dict[str, float] = {}
    result = run_chain(clean, timings=timings)
    assert result["denoise"]["applied"] is False
    assert result["denoise"]["reason"].startswith("clean clip")
    assert "denoise" not in timings
    forced = run_chain(clean, steps=["denoise"], options={"clean_snr_db": 200, "target_lufs": -30})
    assert forced["denoise"]["applied"] is True
    assert forced["loudness"]["target_lufs"] == -30.0
    with pytest.raises(ValueError, match="unknown steps"):
        run_chain(clean, steps=["reverb"])
    with pytest.raises(InvalidAudio):
        run_chain(b"RIFF\x24\x00\x00\x00WAVEjunkjunk")


# --- envelope, settings, item codec ---------------------------------------------------------------------


def test_envelope_round_trip_and_next_stage() -> None:
    envelope = Envelope(
        invocation_id="abc",
        correlation_id="corr",
        stage="denoise",
        input_key="invocations/abc/ingest.npz",
        options={"target_lufs": -16.0},
        attempt=2,
    )
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert json.loads(envelope.to_json())["steps"] == list(STAGE_NAMES)
    following = envelope.for_stage("normalize", "invocations/abc/denoise.npz")
    assert following.stage == "normalize"
    assert following.input_key == "invocations/abc/denoise.npz"
    assert following.attempt == 1
    assert following.correlation_id == "corr"
    assert Envelope.from_dict(json.loads(envelope.to_json())) == envelope


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"invocation_id": "a", "correlation_id": "c", "stage": "reverb"}),
        json.dumps({"invocation_id": "", "correlation_id": "c", "stage": "ingest"}),
        json.dumps({"invocation_id": "a", "correlation_id": "c", "stage": "ingest", "schema_version": -1}),
        json.dumps({"invocation_id": "a", "correlation_id": "c", "stage": "ingest", "steps": ["echo"]}),
        json.dumps({"invocation_id": "a", "correlation_id": "c", "stage": "ingest", "mode": "sync"}),
    ],
)
def test_malformed_envelopes_are_poison(body: str) -> None:
    """(Unknown fields are not malformed: readers ignore them, tests/integration/test_schema_evolution.py.)"""
    with pytest.raises(PoisonMessage, match="malformed envelope"):
        Envelope.from_json(body)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config.get_settings.cache_clear()
    monkeypatch.setenv("STAGE_QUEUE_URLS", json.dumps({"ingest": "https://sqs/ingest"}))
    monkeypatch.setenv("ORCHESTRATION", "both")
    monkeypatch.setenv("MAX_DURATION_S", "30.5")
    monkeypatch.setenv("MAX_INLINE_BYTES", "")
    try:
        settings = config.get_settings()
        assert settings.stage_queue_urls["ingest"] == "https://sqs/ingest"
        assert settings.modes == ("pipeline", "statemachine")
        assert settings.max_duration_s == 30.5
        assert settings.max_inline_bytes == 4 * 1024 * 1024
        assert config.get_settings() is settings  # read once
        with pytest.raises(TypeError):
            settings.stage_queue_urls["x"] = "y"
        monkeypatch.setenv("ORCHESTRATION", "carrier-pigeon")
        config.get_settings.cache_clear()
        with pytest.raises(ValueError, match="ORCHESTRATION"):
            config.get_settings()
        monkeypatch.setenv("ORCHESTRATION", "statemachine")
        monkeypatch.setenv("STAGE_QUEUE_URLS", "[1, 2]")
        config.get_settings.cache_clear()
        with pytest.raises(ValueError, match="STAGE_QUEUE_URLS"):
            config.get_settings()
    finally:
        config.get_settings.cache_clear()


def test_dynamodb_value_codec_round_trips() -> None:
    value = {"s": "x", "n": 3, "f": 1.5, "neg": -7, "b": False, "none": None, "l": [1, "a", {"m": [True]}]}
    encoded = to_av(value)
    assert encoded["M"]["n"] == {"N": "3"}
    assert from_av(encoded) == value
    with pytest.raises(ValueError, match="NaN"):
        to_av(float("nan"))
    with pytest.raises(TypeError):
        to_av(object())


def test_audio_key_for_follows_the_last_completed_audio_stage() -> None:
    def item(**statuses: str) -> Invocation:
        stages = {name: {"status": "PENDING"} for name in STAGE_NAMES}
        for name, status in statuses.items():
            key = f"k/{name}.npz" if status == "SUCCEEDED" else None
            stages[name] = {"status": status, "output_key": key}
        return Invocation.model_validate(
            {
                "invocation_id": "k",
                "status": "RUNNING",
                "mode": "pipeline",
                "created_at": "t",
                "updated_at": "t",
                "input_key": "k/input.wav",
                "stages": stages,
            }
        )

    assert item().audio_key_for("ingest") == "k/input.wav"
    assert item(ingest="SUCCEEDED").audio_key_for("denoise") == "k/ingest.npz"
    assert item(ingest="SUCCEEDED", denoise="SKIPPED").audio_key_for("normalize") == "k/ingest.npz"
    done = item(ingest="SUCCEEDED", denoise="SUCCEEDED", normalize="SUCCEEDED", features="SUCCEEDED")
    assert done.audio_key_for("match") == "k/normalize.npz"  # features and match produce no audio
    assert done.audio_key_for("respond") == "k/normalize.npz"
    assert done.next_stage_to_run("features") == "match"
    assert item(match="SKIPPED").next_stage_to_run("features") == "respond"
    assert item(ingest="SUCCEEDED", denoise="SKIPPED").first_pending_stage() == "normalize"


def test_a_template_and_a_keyword_of_one_name_report_the_one_furthest_above_its_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Template scores are returned from 0.575, keyword scores from 0.5: a keyword at 0.55 (0.05 above)
    speaks for the name before a template at 0.60 (0.025 above); another name is reported on its own."""
    from harmonic import Match, phonetic

    pattern_set = PatternSet()
    keyword = phonetic.Keyword("weather", ("W EH DH ER",)).to_bytes()
    # without speech embeddings: only the detections' margins speak (the next test adds the embeddings)
    template = _template_without_embedding()
    for pattern in (
        Pattern("t-weather", "weather", "template", template),
        Pattern("k-weather", "weather", "keyword", keyword),
        Pattern("t-music", "music", "template", template),
    ):
        pattern_set.add(pattern)

    class Spotter:
        min_score = 0.5

        def match(self, audio: np.ndarray, sr: int, min_score: float) -> list[Match]:
            return [m for m in [Match("k-weather", scores["k-weather"], 1.0, 1.3)] if m.score >= min_score]

    scores = {"t-weather": 0.60, "t-music": 0.58, "k-weather": 0.55}
    monkeypatch.setattr(pattern_set, "spotter", Spotter)
    _templates_score(monkeypatch, scores)
    found = pattern_set.match(np.zeros(16_000), 16_000)
    assert [(m["pattern_id"], m["kind"], m["score"]) for m in found] == [
        ("k-weather", "keyword", 0.55),  # 0.05 above its threshold: first, before a higher raw score
        ("t-music", "template", 0.58),  # 0.005 above
    ]
    scores["t-weather"] = 0.70  # now 0.125 above its threshold: the template speaks for "weather"
    found = pattern_set.match(np.zeros(16_000), 16_000)
    assert [m["pattern_id"] for m in found] == ["t-weather", "t-music"]
    # both below their thresholds: nothing for "weather", unless weaker evidence is asked for (as the eval
    # does to rank every keyword); then the keyword (0.05 under) speaks before the template (0.075 under)
    scores.update({"k-weather": 0.45, "t-weather": 0.50})
    assert [m["pattern_id"] for m in pattern_set.match(np.zeros(16_000), 16_000)] == ["t-music"]
    weaker = pattern_set.match(np.zeros(16_000), 16_000, min_margin=-0.1)
    assert [m["pattern_id"] for m in weaker] == ["t-music", "k-weather"]


def _template_without_embedding() -> bytes:
    import dataclasses

    import harmonic

    template = harmonic.make_template(np.sin(np.arange(8000) * 0.05) * np.hanning(8000), 16_000)
    return dataclasses.replace(template, embedding=None, whisper=None).to_bytes()  # the DTW alone


def _templates_score(monkeypatch: pytest.MonkeyPatch, scores: dict[str, float]) -> None:
    """Replace the template matcher by one that detects each template at ``scores[its id]`` (0.2–0.5 s)."""
    import harmonic

    monkeypatch.setattr(
        harmonic,
        "match_templates",
        lambda audio, sr, templates, threshold: [
            harmonic.Match(i, scores[i], 0.2, 0.5) for i in templates if scores[i] >= threshold
        ],
    )


def _spotter_finds(
    monkeypatch: pytest.MonkeyPatch, pattern_set: PatternSet, *matches: harmonic.Match
) -> None:
    """Replace the set's PocketSphinx search by one that detects exactly ``matches`` in any clip."""

    class Spotter:
        def match(self, audio: np.ndarray, sr: int, min_score: float) -> list[harmonic.Match]:
            return list(matches)

    monkeypatch.setattr(pattern_set, "spotter", Spotter)


def _score_embeddings_by_cosine_times(monkeypatch: pytest.MonkeyPatch, factor: float) -> None:
    """Make speech_embedding.best_scores return ``factor ×`` its plain-cosine score (background weight 0):
    the examples still go through the real comparison, and the join's arithmetic stays clear of the 0..1
    clip (an example found exactly would score 1 − 0.5·b·q with the background, which the test would have to
    recompute)."""
    from harmonic import speech_embedding

    plain = speech_embedding.best_scores
    monkeypatch.setattr(
        speech_embedding,
        "best_scores",
        lambda query, examples: factor * plain(query, examples, background_weight=0.0),
    )


def test_speech_embeddings_move_a_names_margin_by_twice_their_score_past_the_neutral_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/matching.md, "Speech embeddings": a name whose templates carry speech embeddings has its best
    detection's margin moved by 2 × (e − 0.476), e the templates' best embedding score against the clip; the
    reported score is the kind's threshold plus that margin, so it is returned exactly when that is ≥ 0."""
    import dataclasses

    import harmonic
    from harmonic import speech_embedding

    clip = np.random.default_rng(3).standard_normal(32_000) * 0.1
    query = speech_embedding.embed(clip, 16_000)
    template = harmonic.Template.from_bytes(_template_without_embedding())
    exact = dataclasses.replace(template, embedding=query[5:12])  # found in the clip: e = 1 (cosine)
    unrelated = dataclasses.replace(template, embedding=-query[5:12])  # pointing away: e = 0 (clipped)
    _score_embeddings_by_cosine_times(monkeypatch, 0.6)  # e = 0.6 and 0: clear of the 0..1 clip below
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("t-found", "found", "template", exact.to_bytes()),
            Pattern("t-absent", "absent", "template", unrelated.to_bytes()),
            Pattern("t-plain", "plain", "template", _template_without_embedding()),
        ]
    )
    scores = {"t-found": 0.55, "t-absent": 0.90, "t-plain": 0.60}
    _templates_score(monkeypatch, scores)
    found = {m["pattern_id"]: m for m in pattern_set.match(clip, 16_000, min_margin=-1.0)}
    # 0.55 is 0.025 under the template threshold 0.575; the embedding adds 2 × (0.6 − 0.476) = 0.248
    assert found["t-found"]["score"] == pytest.approx(0.575 - 0.025 + 0.248, abs=1e-3)
    # 0.90 is 0.325 over; the embedding takes 2 × 0.476 = 0.952 off: clipped at 0
    assert found["t-absent"]["score"] == 0.0
    assert found["t-plain"]["score"] == 0.60  # no embeddings: the detection's own score
    returned = [m["pattern_id"] for m in pattern_set.match(clip, 16_000)]
    assert returned == ["t-found", "t-plain"]  # margins 0.223 and 0.025; "absent" is not returned


def _whisper_rows_are(monkeypatch: pytest.MonkeyPatch, rows: np.ndarray) -> list[np.ndarray]:
    """Make whisper_encoder.encode return ``rows`` for any clip (recording each clip it is given, in the
    list returned) and best_scores map the real comparison's score onto 0.1..0.5: an example found at
    cosine 1 scores 0.5, one at cosine 0 scores 0.1, so the join's arithmetic is plain."""
    from harmonic import whisper_encoder

    encoded: list[np.ndarray] = []

    def encode(samples: np.ndarray, sr: int) -> np.ndarray:
        encoded.append(samples)
        return rows

    monkeypatch.setattr(whisper_encoder, "encode", encode)
    real_best_scores = whisper_encoder.best_scores
    monkeypatch.setattr(
        whisper_encoder,
        "best_scores",
        lambda query, examples: 0.5 + 0.5 * (real_best_scores(query, examples) - 1.0) * 0.8,
    )
    return encoded


def test_whisper_rows_move_a_names_margin_by_twice_their_score_past_the_neutral_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/matching.md, "The encoder's fifth layer, and the synthesized examples' rows": a name whose
    templates keep Whisper's encoder rows has its margin moved by 2 × (w − 0.38), w its templates' best
    score against the clip's rows. After
    the enhancer the rows are those of the clip as it was before it (fetched once, even with a fingerprint
    selected as well); a clip over 29.5 s gets no such evidence."""
    import dataclasses

    import harmonic

    clip = np.random.default_rng(4).standard_normal(32_000) * 0.1
    plain = _template_without_embedding()
    template = harmonic.Template.from_bytes(plain)
    rows = np.eye(6, 512, dtype=np.float32)
    heard = dataclasses.replace(template, whisper=rows)
    other = dataclasses.replace(template, whisper=np.roll(rows, 100, axis=1))
    # the clip's rows are those of "heard" exactly: "heard" fits at cosine 1, "other" at 0, scoring 0.5, 0.1
    encoded = _whisper_rows_are(monkeypatch, rows)
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("t-heard", "heard", "template", heard.to_bytes()),
            Pattern("t-other", "other", "template", other.to_bytes()),
            Pattern("t-plain", "plain", "template", plain),
        ]
    )
    scores = {"t-heard": 0.55, "t-other": 0.60, "t-plain": 0.60}
    _templates_score(monkeypatch, scores)
    found = {m["pattern_id"]: m for m in pattern_set.match(clip, 16_000, min_margin=-1.0)}
    # 0.55 is 0.025 under the template threshold 0.575; w = 0.5 adds 2 × (0.5 − 0.38) = 0.24
    assert found["t-heard"]["score"] == pytest.approx(0.575 - 0.025 + 0.24, abs=1e-3)
    # 0.60 is 0.025 over; w = 0.1 takes 2 × 0.28 = 0.56 off
    assert found["t-other"]["score"] == pytest.approx(0.575 + 0.025 - 0.56, abs=1e-3)
    assert found["t-plain"]["score"] == 0.60  # no rows: the detection's own score
    assert len(encoded) == 1
    assert encoded[0] is clip
    # after the enhancer: the rows of the clip before it, fetched once
    before = clip * 2.0
    fetches: list[bool] = []

    def fetch() -> np.ndarray:
        fetches.append(True)
        return before

    pattern_set.match(clip, 16_000, min_margin=-1.0, enhanced=True, audio_before_enhancer=fetch)
    assert encoded[-1] is before
    assert fetches == [True]
    # a clip over 29.5 s: no rows computed, the detections' own scores (here: all three plain)
    encoded.clear()
    long_clip = np.zeros(31 * 16_000)
    found = {m["pattern_id"]: m for m in pattern_set.match(long_clip, 16_000, min_margin=-1.0)}
    assert encoded == []
    assert found["t-heard"]["score"] == 0.55


def test_a_keywords_synthesized_encoder_rows_join_a_recorded_examples_and_never_stand_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rows a keyword's synthesized examples keep count with the name's recorded examples' rows (the
    best of them all is w), for a name that has a recorded example with rows (a template, or a keyword
    registered from one); a keyword by spelling alone gets no encoder evidence and costs no encoding."""
    import dataclasses

    import harmonic
    from harmonic import Match, phonetic

    clip = np.random.default_rng(4).standard_normal(32_000) * 0.1
    rows = np.eye(6, 512, dtype=np.float32)  # the clip's rows: found at cosine 1, scoring 0.5
    elsewhere = np.roll(rows, 100, axis=1)  # fits the clip at cosine 0, scoring 0.1
    encoded = _whisper_rows_are(monkeypatch, rows)
    template = dataclasses.replace(
        harmonic.Template.from_bytes(_template_without_embedding()), whisper=elsewhere
    )
    spelled = phonetic.Keyword("weather", ("W EH DH ER",), synthesized_whisper=(elsewhere, rows))
    from_example = phonetic.Keyword("music", ("M Y UW Z IH K",), whisper=elsewhere)
    alone = phonetic.Keyword("stop", ("S T AA P",), synthesized_whisper=(rows,))
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("t-weather", "weather", "template", template.to_bytes()),
            Pattern("k-weather", "weather", "keyword", spelled.to_bytes()),
            Pattern("k-music", "music", "keyword", from_example.to_bytes()),
            Pattern("k-stop", "stop", "keyword", alone.to_bytes()),
        ]
    )
    _templates_score(monkeypatch, {"t-weather": 0.0})
    _spotter_finds(
        monkeypatch,
        pattern_set,
        Match("k-weather", 0.5, 1.0, 1.3),
        Match("k-music", 0.5, 0.2, 0.6),
        Match("k-stop", 0.5, 2.0, 2.3),
    )
    encoded.clear()  # (making the template encoded its example)
    found = {m["pattern_id"]: m["score"] for m in pattern_set.match(clip, 16_000, min_margin=-1.0)}
    # weather: its template's rows score 0.1, a synthesized example's 0.5: w = 0.5, + 2 × 0.12 on 0.5
    # music: its example's rows alone (no synthesized ones), w = 0.1: 2 × (0.1 − 0.38) = −0.56 off 0.5
    # stop: a keyword by spelling alone, its synthesized rows unread: the detection's own score
    assert found == {
        "k-weather": pytest.approx(0.74, abs=1e-3),
        "k-music": 0.0,
        "k-stop": 0.5,
    }
    assert len(encoded) == 1
    assert encoded[0] is clip
    # only keywords by spelling selected: no encoding at all
    encoded.clear()
    assert [m["pattern_id"] for m in pattern_set.match(clip, 16_000, selectors=["stop"])] == ["k-stop"]
    assert encoded == []


def test_a_keyword_registered_from_an_example_is_moved_by_its_embeddings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same rule for the keyword kind: its example's embeddings move its margin by 2 × (e − 0.476)."""
    from harmonic import Match, phonetic, speech_embedding

    clip = np.random.default_rng(4).standard_normal(32_000) * 0.1
    query = speech_embedding.embed(clip, 16_000)
    heard = phonetic.Keyword("weather", ("W EH DH ER",), query[3:9])  # e = 1 (cosine)
    _score_embeddings_by_cosine_times(monkeypatch, 0.7)  # e = 0.7
    spelled = phonetic.Keyword("music", ("M Y UW Z IH K",))
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("k-heard", "weather", "keyword", heard.to_bytes()),
            Pattern("k-spelled", "music", "keyword", spelled.to_bytes()),
        ]
    )

    _spotter_finds(
        monkeypatch, pattern_set, Match("k-heard", 0.45, 1.0, 1.3), Match("k-spelled", 0.55, 0.2, 0.6)
    )
    found = {m["pattern_id"]: m["score"] for m in pattern_set.match(clip, 16_000)}
    # 0.45 is 0.05 under the keyword threshold 0.5; + 2 × (0.7 − 0.476) = 0.448 -> 0.898; the spelled as is
    assert found == {"k-heard": pytest.approx(0.898, abs=1e-3), "k-spelled": 0.55}


def test_a_keywords_synthesized_examples_raise_its_margin_and_never_lower_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/matching.md, "Synthesized examples": the best score s of the examples synthesized from a keyword's
    spelling raises its margin by 10 × (s − 0.515) when s is above 0.515 and leaves it alone below, so a
    voice unlike the synthetic ones loses nothing; a recorded example's evidence stays two-sided. (0.515:
    the fixed neutral point of keywords stored before their level on background speech was measured.)"""
    from harmonic import Match, phonetic, speech_embedding

    clip = np.random.default_rng(5).standard_normal(32_000) * 0.1
    query = speech_embedding.embed(clip, 16_000)
    _score_embeddings_by_cosine_times(monkeypatch, 0.55)  # an example found in the clip scores 0.55
    # two voices, one found in the clip (s = 0.55) and one pointing away (0): the best speaks
    voiced = phonetic.Keyword("weather", ("W EH DH ER",), None, (-query[2:8], query[2:8]))
    away = phonetic.Keyword("music", ("M Y UW Z IH K",), None, (-query[4:9],))
    # both kinds of evidence: a recorded example pointing away (e = 0) and a synthesized one found
    both = phonetic.Keyword("camera", ("K AE M ER AH",), -query[1:6], (query[1:6],))
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("k-voiced", "weather", "keyword", voiced.to_bytes()),
            Pattern("k-away", "music", "keyword", away.to_bytes()),
            Pattern("k-both", "camera", "keyword", both.to_bytes()),
        ]
    )

    _spotter_finds(
        monkeypatch,
        pattern_set,
        Match("k-voiced", 0.45, 1.0, 1.3),
        Match("k-away", 0.6, 0.2, 0.6),
        Match("k-both", 0.9, 0, 1),
    )
    found = {m["pattern_id"]: m["score"] for m in pattern_set.match(clip, 16_000, min_margin=-1.0)}
    # 0.45 + 10 × (0.55 − 0.515) = 0.80; 0.6 with s = 0 < 0.515: unchanged;
    # 0.9 + 2 × (0 − 0.476) + 10 × (0.55 − 0.515) = 0.298
    assert found == {
        "k-voiced": pytest.approx(0.80, abs=1e-3),
        "k-away": 0.6,
        "k-both": pytest.approx(0.298, abs=1e-3),
    }


def test_a_keywords_synthesized_evidence_is_measured_from_its_own_level_on_background_speech(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/matching.md, "Calibrated synthesized evidence": a keyword whose synthesized examples carry their
    level on background speech L is raised by 10 × (s − (L + 0.034)) when s is above L + 0.034: the same
    score raises a keyword that finds little like itself in ordinary speech more than one that finds much;
    under one name with two keywords by spelling, the larger raise counts."""
    from harmonic import Match, phonetic, speech_embedding

    clip = np.random.default_rng(6).standard_normal(32_000) * 0.1
    query = speech_embedding.embed(clip, 16_000)
    real_scores = speech_embedding.best_scores
    _score_embeddings_by_cosine_times(monkeypatch, 0.55)  # every example below is found: s = 0.55
    rare = phonetic.Keyword("umbrella", ("AH M B R EH L AH",), None, (query[2:8],), 0.44)
    common = phonetic.Keyword("stop", ("S T AA P",), None, (query[2:8],), 0.52)
    # one name, two keywords by spelling, levels 0.53 and 0.45: the second's raise counts
    plain = phonetic.Keyword("lights", ("L AY T S",), None, (query[3:8],), 0.53)
    lit = phonetic.Keyword("lights on", ("L AY T S AA N",), None, (query[3:8],), 0.45)
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("k-rare", "umbrella", "keyword", rare.to_bytes()),
            Pattern("k-common", "stop", "keyword", common.to_bytes()),
            Pattern("k-plain", "lights", "keyword", plain.to_bytes()),
            Pattern("k-lit", "lights", "keyword", lit.to_bytes()),
        ]
    )

    _spotter_finds(
        monkeypatch,
        pattern_set,
        Match("k-rare", 0.45, 1.0, 1.3),
        Match("k-common", 0.45, 0.2, 0.6),
        Match("k-plain", 0.40, 0.5, 0.9),
        Match("k-lit", 0.30, 0.5, 1.0),
    )
    found = {m["pattern_id"]: m["score"] for m in pattern_set.match(clip, 16_000, min_margin=-1.0)}
    # s = 0.55: 0.45 + 10 × (0.55 − 0.474) = 1.21 -> 1.0 (scores stay within 0..1); 0.55 < 0.554: 0.45 as
    # it is; "lights" (its best detection, 0.40) + 10 × (0.55 − 0.484) = 1.06 -> 1.0
    assert found == {"k-rare": 1.0, "k-common": 0.45, "k-plain": 1.0}
    monkeypatch.setattr(speech_embedding, "best_scores", real_scores)
    _score_embeddings_by_cosine_times(monkeypatch, 0.49)  # a weaker score, the raise below the clip
    found = {m["pattern_id"]: m["score"] for m in pattern_set.match(clip, 16_000, min_margin=-1.0)}
    # 0.45 + 10 × (0.49 − 0.474) = 0.61; 0.45; 0.40 + 10 × (0.49 − 0.484) = 0.46
    assert found == {
        "k-rare": pytest.approx(0.61, abs=1e-3),
        "k-common": 0.45,
        "k-plain": pytest.approx(0.46, abs=1e-3),
    }


def test_a_name_raised_by_its_synthesized_examples_is_placed_where_they_lie(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/matching.md, "Calibrated synthesized evidence": when the synthesized examples raise a name, its
    span is where the best of them lies in the clip (speech_embedding.best_span), not the detection's,
    which may be PocketSphinx's guess elsewhere; a name they do not raise keeps its detection's span."""
    from harmonic import Match, phonetic, speech_embedding

    clip = np.random.default_rng(7).standard_normal(48_000) * 0.1
    query = speech_embedding.embed(clip, 16_000)
    found_here = query[10:18].copy()  # rows 10-17: 0.80 s to 17 · 0.08 + 0.015 = 1.375 s
    raised = phonetic.Keyword("weather", ("W EH DH ER",), None, (found_here,), 0.40)
    not_raised = phonetic.Keyword("music", ("M Y UW Z IH K",), None, (query[20:26].copy(),), 0.60)
    pattern_set = PatternSet.from_patterns(
        [
            Pattern("k-raised", "weather", "keyword", raised.to_bytes()),
            Pattern("k-not", "music", "keyword", not_raised.to_bytes()),
        ]
    )

    _spotter_finds(
        monkeypatch, pattern_set, Match("k-raised", 0.45, 2.0, 2.4), Match("k-not", 0.55, 0.3, 0.7)
    )
    # the scores say s = 0.5 for both: above 0.40 + 0.034, under 0.60 + 0.034; the span is the real DTW's
    monkeypatch.setattr(speech_embedding, "best_scores", lambda q, examples: np.full(len(examples), 0.5))
    spans = {m["pattern_id"]: (m["start_s"], m["end_s"]) for m in pattern_set.match(clip, 16_000)}
    assert spans["k-raised"] == pytest.approx((0.80, 1.375))
    assert spans["k-not"] == (0.3, 0.7)
