"""`harmonic plot` and `harmonic_client.plot`: f0 on its own axis in the voice range, a spectrogram without
-inf gaps, labelled match spans, loudness before and after a gain apart, voiced regions, the summary box,
the three sources (an invocation, a saved or fresh `analyze` result, a local file with no service), the
client-only fallback, and bad input as a one-line usage error."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import harmonic
from harmonic.loudness import loudness_normalization
from harmonic_client import plot
from harmonic_client.cli import main
from tests.unit.conftest import isolate_client_configuration
from tests.unit.conftest import json_response as _json

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RATE = 16_000


@pytest.fixture(autouse=True)
def no_machine_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_client_configuration(tmp_path, monkeypatch)


def _wav(samples: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit mono WAV bytes of `samples` (full scale ±1)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _speech() -> np.ndarray:
    return harmonic.decode_audio(SPEECH.read_bytes()).samples.astype(np.float64)


SILENCE = _wav(np.zeros(2 * RATE))


def _service_result(**loudness: float) -> dict:
    """A result as the service returns it (docs/design.md "Result") for the speech clip."""
    return {
        "audio": {"duration_s": 4.4591, "sample_rate": RATE, "snr_db": 41.5, "clean": True, "warnings": []},
        "denoise": {"applied": False, "reason": "clean clip: estimated SNR 41.5 dB >= 30 dB"},
        "loudness": {
            "input_lufs": -30.25,
            "output_lufs": -23.0,
            "gain_db": 7.25,
            "peak_limited": False,
            "target_lufs": -23.0,
            **loudness,
        },
        "features": {
            "f0_hz": {"median": 102.3, "p10": 90.1, "p90": 121.7},
            "voiced_fraction": 0.6704,
            "hnr_db": 11.82,
        },
        "matches": [
            {
                "pattern_id": "p-7",
                "name": "weather",
                "kind": "template",
                "score": 0.8734,
                "start_s": 0.5,
                "end_s": 1.25,
            },
            {
                "pattern_id": "p-9",
                "name": "evening news",
                "kind": "fingerprint",
                "score": 0.9312,
                "start_s": 31.0,
                "end_s": 35.5,
            },
        ],
    }


def _axes(figure) -> dict:
    return {axis.get_label(): axis for axis in figure.axes}


def _gid(artists, gid: str) -> list:
    return [artist for artist in artists if artist.get_gid() == gid]


def _summary(figure) -> str:
    """The text box, its wrapped lines joined (whitespace collapsed)."""
    (text,) = _gid(_axes(figure)["summary"].texts, "summary")
    return " ".join(text.get_text().split())


def _line(axis, gid: str):
    (line,) = _gid(axis.lines, gid)
    return np.asarray(line.get_ydata(), dtype=np.float64)


# --- the figure --------------------------------------------------------------------------------------------


def test_f0_has_its_own_axis_in_the_voice_range_and_breaks_where_unvoiced() -> None:
    figure = plot.build_figure(SPEECH)
    axes = _axes(figure)
    f0_axis = axes["f0"]
    low, high = f0_axis.get_ylim()
    assert 40 <= low < high <= 1100  # a voice range, not the spectrogram's 0-8000 Hz
    assert axes["spectrogram"].get_ylim()[1] > 4000
    assert f0_axis.get_shared_x_axes().joined(f0_axis, axes["spectrogram"])
    (track,) = [line for line in f0_axis.lines if line.get_label().startswith("f0")]
    values = np.asarray(track.get_ydata(), dtype=np.float64)
    assert np.isnan(values).any()  # unvoiced frames are gaps ...
    assert not np.any(values[np.isfinite(values)] < 40)  # ... never drawn as 0 Hz
    reference = harmonic.f0(harmonic.decode_audio(SPEECH.read_bytes()).samples, RATE, hop_length=160)
    assert low < np.nanmedian(reference) < high
    assert np.nanpercentile(values, 5) > low
    assert np.nanpercentile(values, 95) < high


def test_the_spectrogram_has_no_gaps_and_silence_sits_at_the_floor_80_db_down() -> None:
    speech = _speech()
    gap = np.concatenate((speech[:RATE], np.zeros(RATE), speech[RATE : 2 * RATE]))  # 1 s of digital silence
    figure = plot.build_figure(_wav(gap))
    (image,) = _axes(figure)["spectrogram"].images
    values = np.asarray(image.get_array(), dtype=np.float64)
    assert np.isfinite(values).all()
    assert values.max() - values.min() == pytest.approx(80.0, abs=1e-6)
    floor, _ = image.get_clim()
    assert values.min() == pytest.approx(floor)  # silence is drawn in the floor colour
    frames = np.arange(values.shape[1]) * 160 / RATE
    inside = (frames > 1.1) & (frames < 1.9)  # well inside the silent second (frames are 32 ms)
    assert np.all(values[:, inside] == values.min())


def test_a_digitally_silent_clip_plots_without_error(tmp_path: Path) -> None:
    figure = plot.build_figure(SILENCE)
    axes = _axes(figure)
    (image,) = axes["spectrogram"].images
    values = np.asarray(image.get_array(), dtype=np.float64)
    assert np.isfinite(values).all()
    assert np.all(values == image.get_clim()[0])  # all floor, not the top colour
    assert not _gid(axes["f0"].patches, "voiced")
    assert "digital silence" in _summary(figure)
    output = plot.save_figure(figure, tmp_path / "silent.png")
    assert output.read_bytes()[:8] == PNG_MAGIC


def test_voiced_regions_are_shaded_as_the_f0_track_says() -> None:
    """Measured locally, the track and regions are the features' (``f0_track``, ``voiced_regions``): the
    shading covers the frames where the drawn f0 exists, and only those."""
    figure = plot.build_figure(SPEECH)
    axis = _axes(figure)["f0"]
    spans = _gid(axis.patches, "voiced")
    assert len(spans) >= 3  # a sentence has several voiced stretches
    (line,) = [line for line in axis.get_lines() if line.get_label().startswith("f0")]
    times, hz = np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)
    hop = times[1] - times[0]
    assert hop == pytest.approx(0.01)  # the service's 10 ms frames
    shaded = sum(span.get_width() for span in spans)
    assert shaded == pytest.approx(np.count_nonzero(np.isfinite(hz)) * hop, rel=0.05)
    for span in spans:  # each span covers voiced frames only (± half a hop at its edges)
        start, end = span.get_x(), span.get_x() + span.get_width()
        assert np.isfinite(hz[(times > start + hop) & (times < end - hop)]).all()


def test_a_results_own_f0_track_and_regions_are_drawn() -> None:
    result = _service_result()
    result["features"]["f0_track"] = {"hop_s": 0.5, "hz": [None, 120.0, 130.0, None]}
    result["features"]["voiced_regions"] = [[0.4, 1.1]]
    axis = _axes(plot.build_figure(SPEECH, result))["f0"]
    (line,) = [line for line in axis.get_lines() if line.get_label().startswith("f0")]
    assert list(line.get_xdata()) == [0.0, 0.5, 1.0, 1.5]
    assert np.array_equal(
        np.asarray(line.get_ydata(), dtype=float), [np.nan, 120.0, 130.0, np.nan], equal_nan=True
    )
    (span,) = _gid(axis.patches, "voiced")
    assert (span.get_x(), span.get_x() + span.get_width()) == pytest.approx((0.4, 1.1))


def test_matches_are_labelled_spans_with_name_and_score() -> None:
    figure = plot.build_figure(SPEECH, _service_result())
    axes = _axes(figure)
    labels = [text.get_text() for text in _gid(axes["waveform"].texts, "match")]
    assert labels == ["weather 0.87"]
    (span,) = _gid(axes["waveform"].patches, "match")  # the fingerprint's times are in its recording
    assert (span.get_x(), span.get_x() + span.get_width()) == pytest.approx((0.5, 1.25))
    assert len(_gid(axes["spectrogram"].patches, "match")) == 1
    summary = _summary(figure)
    assert "evening news 0.93" in summary
    assert "of the recording" in summary


def test_the_loudness_panel_shows_input_and_output_the_gain_apart() -> None:
    figure = plot.build_figure(SPEECH, _service_result(gain_db=7.25))
    axis = _axes(figure)["loudness"]
    before, after = _line(axis, "loudness_in"), _line(axis, "loudness_out")
    finite = np.isfinite(before)
    assert finite.sum() > 10
    assert np.allclose(after[finite] - before[finite], 7.25)
    assert axis.get_ylabel() == "LUFS"


def test_the_input_curve_is_bs1770_momentary_loudness_and_local_output_is_the_normalized_gain() -> None:
    """Gating the drawn 400 ms blocks as BS.1770 does gives the clip's integrated loudness; measured
    locally, the output curve sits the normalization's gain above it."""
    x = harmonic.decode_audio(SPEECH.read_bytes()).samples
    _, details = loudness_normalization(x, RATE, -23.0, -1.0)
    figure = plot.build_figure(SPEECH)
    axis = _axes(figure)["loudness"]
    before, after = _line(axis, "loudness_in"), _line(axis, "loudness_out")
    power = 10 ** ((before[np.isfinite(before)] + 0.691) / 10)
    power = power[power > 10 ** ((-70 + 0.691) / 10)]
    power = power[power > 0.1 * power.mean()]
    assert -0.691 + 10 * math.log10(power.mean()) == pytest.approx(
        harmonic.integrated_loudness(x, RATE), abs=0.01
    )
    finite = np.isfinite(before)
    assert np.allclose(after[finite] - before[finite], details["gain_db"])


def _block_loudness(x: np.ndarray) -> np.ndarray:
    """Each 400 ms block (every 100 ms) measured on its own by harmonic.integrated_loudness."""
    return np.array(
        [harmonic.integrated_loudness(x[i : i + 6400], RATE) for i in range(0, x.size - 6399, 1600)]
    )


def test_when_denoise_ran_the_output_is_the_denoised_clip_plus_the_gain() -> None:
    rng = np.random.default_rng(7)
    speech = _speech()
    clip = _wav(speech + 0.02 * rng.standard_normal(speech.size))
    result = _service_result(gain_db=-2.5)
    result["denoise"] = {"applied": True, "snr_db_before": 12.0, "snr_db_after": 25.0}
    result["audio"]["duration_s"] = speech.size / RATE
    axis = _axes(plot.build_figure(clip, result))["loudness"]
    before, after = _line(axis, "loudness_in"), _line(axis, "loudness_out")
    expected = _block_loudness(harmonic.denoise(harmonic.decode_audio(clip).samples, RATE)) - 2.5
    assert after.shape == expected.shape
    audible = np.isfinite(expected) & (expected > -50)
    assert audible.sum() > 10
    assert np.allclose(after[audible], expected[audible], atol=0.2)
    assert np.max(np.abs(after - (before - 2.5))[audible]) > 1.0  # not merely the input's curve + gain


def test_the_summary_box_has_what_the_service_measured() -> None:
    summary = _summary(plot.build_figure(SPEECH, _service_result()))
    assert "measured by the service" in summary
    assert "-30.2 → -23.0 LUFS" in summary  # integrated loudness in and out
    assert "+7.2 dB" in summary  # the gain
    assert "102 Hz" in summary  # median f0
    assert "67 %" in summary  # voiced fraction
    assert "11.8 dB" in summary  # HNR
    assert "41.5 dB" in summary  # SNR
    assert "skipped" in summary  # denoise


def test_a_result_of_another_clip_is_flagged() -> None:
    result = _service_result()
    result["audio"]["duration_s"] = 12.0
    assert "another clip?" in _summary(plot.build_figure(SPEECH, result))


def test_without_the_harmonic_library_the_figure_is_approximate_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = np.nanmedian(harmonic.f0(harmonic.decode_audio(SPEECH.read_bytes()).samples, RATE))
    monkeypatch.setitem(sys.modules, "harmonic", None)  # `import harmonic` raises ImportError
    figure = plot.build_figure(SPEECH)
    axes = _axes(figure)
    summary = _summary(figure)
    assert "APPROXIMATE" in summary
    (track,) = [line for line in axes["f0"].lines if line.get_label().startswith("f0")]
    assert "approximate" in track.get_label()
    assert np.nanmedian(np.asarray(track.get_ydata(), dtype=float)) == pytest.approx(reference, rel=0.1)
    assert axes["loudness"].get_ylabel() == "dBFS"  # not LUFS: no K-weighting
    assert not _gid(axes["loudness"].lines, "loudness_out")  # no gain to derive the output from
    assert _gid(axes["f0"].patches, "voiced")
    # with a service result, the gain is the service's
    figure = plot.build_figure(SPEECH, _service_result(gain_db=-4.0))
    axis = _axes(figure)["loudness"]
    before, after = _line(axis, "loudness_in"), _line(axis, "loudness_out")
    finite = np.isfinite(before)
    assert np.allclose(after[finite] - before[finite], -4.0)
    with pytest.raises(ValueError, match="not a WAV"):
        plot.load_signal(b"fLaC" + bytes(100))


# --- the command line --------------------------------------------------------------------------------------


def test_cli_plots_a_local_file_with_no_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "local.png"
    # nothing listens on port 9: the plot must not need the service
    assert main(["--endpoint", "http://127.0.0.1:9", "plot", str(SPEECH), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert capsys.readouterr().out.strip() == str(png)


def test_a_local_plot_reads_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "config"
    broken.write_text("[default\nendpoint = ")  # not INI: every command that calls the service fails on it
    monkeypatch.setenv("HARMONIC_CONFIG_FILE", str(broken))
    assert main(["health"]) == 2
    png = tmp_path / "local.png"
    assert main(["plot", str(SPEECH), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_cli_plots_a_saved_analyze_result_or_status_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = _capture_figures(monkeypatch)
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(_service_result()))
    png = tmp_path / "saved.png"
    endpoint = ["--endpoint", "http://127.0.0.1:9"]
    assert main([*endpoint, "plot", str(SPEECH), "--result", str(saved), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "weather 0.87" in [t.get_text() for t in _gid(_axes(figures[-1])["waveform"].texts, "match")]
    status = tmp_path / "status.json"
    status.write_text(
        json.dumps({"invocation_id": "i-5", "status": "SUCCEEDED", "stages": [], "result": _service_result()})
    )
    assert main([*endpoint, "plot", str(SPEECH), "--result", str(status), "-o", str(png)]) == 0
    assert "i-5" in figures[-1].get_suptitle()


def test_cli_analyze_plot_draws_the_result_it_printed(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, script = server
    script.responses.append(_json(200, _service_result()))
    figures = _capture_figures(monkeypatch)
    png = tmp_path / "analyze.png"
    assert main(["--endpoint", url, "analyze", str(SPEECH), "--plot", str(png)]) == 0
    assert json.loads(capsys.readouterr().out) == _service_result()  # stdout stays the JSON result
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert [r["path"] for r in script.requests] == ["/v1/analyze"]
    assert "weather 0.87" in [t.get_text() for t in _gid(_axes(figures[-1])["waveform"].texts, "match")]
    assert "measured by the service" in _summary(figures[-1])


def test_cli_plot_of_an_invocation_keeps_its_form(server, tmp_path: Path, monkeypatch) -> None:
    url, script = server
    status = {"invocation_id": "i-1", "status": "SUCCEEDED", "stages": [], "result": _service_result()}
    script.responses.append(_json(200, status))
    figures = _capture_figures(monkeypatch)
    png = tmp_path / "i-1.png"
    assert main(["--endpoint", url, "plot", "i-1", "--audio", str(SPEECH), "-o", str(png)]) == 0
    assert [r["path"] for r in script.requests] == ["/v1/invocations/i-1"]
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "i-1" in figures[-1].get_suptitle()
    assert _gid(_axes(figures[-1])["loudness"].lines, "loudness_out")


@pytest.mark.parametrize(
    "command",
    [
        ["plot", "{bad}", "-o", "{png}"],
        ["plot", "{speech}", "--result", "{bad}", "-o", "{png}"],
        ["plot", "no-such-clip-or-id", "-o", "{png}"],
        ["plot", "i-1", "--audio", "{speech}", "--result", "{bad}", "-o", "{png}"],
    ],
)
def test_bad_input_is_a_one_line_usage_error(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "clip.m4a"
    bad.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    png = tmp_path / "p.png"
    argv = [part.format(bad=bad, png=png, speech=SPEECH) for part in command]
    assert main(["--endpoint", "http://127.0.0.1:9", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("harmonic: error: ")
    assert "Traceback" not in err
    assert not png.exists()


def test_an_undecodable_clip_without_the_library_is_a_usage_error_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "harmonic", None)
    bad = tmp_path / "clip.mp3"
    bad.write_bytes(b"ID3" + bytes(300))
    assert main(["plot", str(bad), "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot plot" in err
    assert "not a WAV" in err


def test_the_cli_imports_neither_matplotlib_nor_numpy_unless_it_plots() -> None:
    code = (
        "import sys\n"
        "from harmonic_client.cli import main\n"
        "main(['--endpoint', 'http://127.0.0.1:9', 'health'])\n"
        "main(['plot', '--help'])\n"
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            code + "print(sorted(m for m in ('numpy', 'matplotlib') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def _capture_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures the CLI saves, kept for inspection (they are still written)."""
    figures: list = []
    save = plot.save_figure

    def keep(figure, output, **kwargs):
        figures.append(figure)
        return save(figure, output, **kwargs)

    monkeypatch.setattr(plot, "save_figure", keep)
    return figures
