"""The web console in a real browser: the system Chromium (Debian's ``chromium`` and ``chromium-driver``,
which `make test` installs with apt; nothing downloads a browser), headless, driven by Selenium, against the
local stack, which serves the console at ``/``.

Screenshots land in artifacts/console/ (git-ignored): the console at 1280×800 and at phone width, a finished
pipeline invocation (timeline, spectrogram with the f0 track, the match span), and the API's error shown for a
bad file. The microphone is Chromium's fake capture device playing a WAV file (its fake-media flags).
"""

from __future__ import annotations

import io
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from harmonic_service.stages import STAGE_NAMES
from local import ROOT
from local.spawn import StackProcess

SCREENSHOTS = ROOT / "artifacts" / "console"
DATA = ROOT / "tests" / "data"
KEYWORD = DATA / "keywords" / "enrol_weather_0.wav"
SPEECH = DATA / "speech" / "en_us_m.wav"
KEYWORD_AT_S = 1.5  # where the test clip has the keyword's example
SENTENCE = DATA / "keywords" / "sentence_weather_flite_slt.wav"  # "Tell me what the weather will be like…"
SENTENCE_WEATHER_S = (0.96, 1.22)  # where the service finds "weather" in it
FAKE_MICROPHONE = DATA / "speech" / "en_gb_f.wav"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 120


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            "Chromium and its driver are needed (make test installs Debian's chromium, chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={FAKE_MICROPHONE}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console(browser: webdriver.Chrome, local_stack: StackProcess) -> webdriver.Chrome:
    browser.set_window_size(1280, 800)
    browser.get(local_stack.base_url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    return browser


def _wait(driver: webdriver.Chrome, condition: Any, timeout: float = WAIT_S) -> Any:
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        alert = driver.find_element(By.ID, "alert").text
        progress = driver.find_element(By.ID, "progress").text
        raise AssertionError(f"timed out; alert: {alert!r}, progress: {progress!r}") from None


def _full_page_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, int(height) + 40))
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 800)
    return path


def _tab(driver: webdriver.Chrome, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'.tab[data-tab="{name}"]').click()
    _shown(driver, name)


def _row(driver: webdriver.Chrome, table: str, attribute: str, value: str) -> Any:
    """The row of `table` (a tbody id) whose data-`attribute` is `value`, once it is there."""
    selector = f'#{table} tr[data-{attribute}="{value}"]'
    return _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector))[0]


def _press(driver: webdriver.Chrome, table: str, attribute: str, value: str, button: str) -> None:
    """Click `button` in that row of `table`; the table is re-rendered while it loads, so a row that went
    stale under the click is looked up again."""

    def pressed(d: webdriver.Chrome) -> bool:
        try:
            row = _row(d, table, attribute, value)
            row.find_element(By.XPATH, f".//button[text()='{button}']").click()
        except StaleElementReferenceException:
            return False
        return True

    _wait(driver, pressed)


def _shown(driver: webdriver.Chrome, element_id: str) -> Any:
    """The element, once it is displayed."""
    return _wait(
        driver,
        lambda d: (
            d.find_element(By.ID, element_id) if d.find_element(By.ID, element_id).is_displayed() else None
        ),
    )


def _clip_with_keyword(directory: Path) -> tuple[Path, float]:
    """1.5 s of speech, the keyword's own example, then another second of speech: (WAV, duration)."""
    speech, rate = sf.read(SPEECH, dtype="float32")
    keyword, keyword_rate = sf.read(KEYWORD, dtype="float32")
    assert rate == keyword_rate == 16_000
    at = int(KEYWORD_AT_S * rate)
    samples = np.concatenate([speech[:at], keyword, speech[at : at + rate]])
    path = directory / "clip-with-weather.wav"
    sf.write(path, samples, rate, subtype="PCM_16")
    return path, samples.size / rate


def _drawn_span_s(driver: webdriver.Chrome, name: str, duration: float) -> tuple[Any, float, float]:
    """The one match span drawn for `name` over the spectrogram, and where it starts and ends (seconds),
    measured from its position on the page."""
    (span,) = driver.find_elements(By.CSS_SELECTOR, f'#spans .span[data-name="{name}"]')
    canvas = driver.find_element(By.ID, "spec")
    x, width = canvas.rect["x"], canvas.rect["width"]
    start_s = (span.rect["x"] - x) / width * duration
    end_s = (span.rect["x"] + span.rect["width"] - x) / width * duration
    return span, start_s, end_s


def _submit(driver: webdriver.Chrome, clip: Path, mode: str, patterns: str = "") -> None:
    _tab(driver, "analyze")
    driver.find_element(By.ID, "clip-file").send_keys(str(clip))
    _wait(driver, lambda d: clip.name in d.find_element(By.ID, "clip-name").text)
    Select(driver.find_element(By.ID, "mode")).select_by_value(mode)
    field = driver.find_element(By.ID, "only-patterns")
    field.clear()
    field.send_keys(patterns)
    driver.find_element(By.ID, "submit").click()


def test_the_console_loads_with_every_mode_and_fits_a_phone(console: webdriver.Chrome) -> None:
    assert console.title == "Harmonic console"
    modes = [option.get_attribute("value") for option in Select(console.find_element(By.ID, "mode")).options]
    assert modes == ["sync", "pipeline", "statemachine", "events"]
    assert not console.find_element(By.ID, "key-form").is_displayed()  # the local stack wants no key
    console.save_screenshot(str(SCREENSHOTS / "console-1280x800.png"))
    console.set_window_size(390, 844)
    overflow = console.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{overflow} px wider than a phone"
    console.save_screenshot(str(SCREENSHOTS / "console-phone.png"))


def test_every_control_is_labelled_and_the_tabs_work_from_the_keyboard(console: webdriver.Chrome) -> None:
    unlabelled = console.execute_script(
        "return [...document.querySelectorAll('input, select')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id)"
    )
    assert unlabelled == []
    nameless = console.execute_script(
        "return [...document.querySelectorAll('button')].filter(b => !b.textContent.trim()).length"
    )
    assert nameless == 0
    patterns_tab = console.find_element(By.CSS_SELECTOR, '.tab[data-tab="patterns"]')
    console.execute_script("arguments[0].focus()", patterns_tab)
    active = console.switch_to.active_element
    assert active.get_attribute("data-tab") == "patterns"
    active.send_keys("\n")  # Enter on a focused button
    _shown(console, "patterns")
    assert patterns_tab.get_attribute("aria-pressed") == "true"
    apart = console.execute_script(  # a label whose control is on another line than itself
        "return [...document.querySelectorAll('#pattern-form label')].filter(l => {"
        " const a = l.getBoundingClientRect(), b = l.control.getBoundingClientRect();"
        " return Math.abs(a.top + a.bottom - b.top - b.bottom) / 2 > a.height; }).map(l => l.textContent)"
    )
    assert apart == [], "at 1280 px every label shares its control's line"
    console.set_window_size(390, 844)
    overflow = console.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the patterns tab is {overflow} px wider than a phone"


def test_a_pattern_registered_from_a_file_is_found_and_drawn_at_its_time(
    console: webdriver.Chrome, local_stack: StackProcess, tmp_path: Path
) -> None:
    name = f"weather-{uuid.uuid4().hex[:6]}"
    _tab(console, "patterns")
    console.find_element(By.ID, "pattern-name").send_keys(name)
    Select(console.find_element(By.ID, "pattern-kind")).select_by_value("template")
    console.find_element(By.ID, "pattern-file").send_keys(str(KEYWORD))
    console.find_element(By.CSS_SELECTOR, "#pattern-form button[type=submit]").click()
    row = _wait(console, lambda d: d.find_elements(By.CSS_SELECTOR, f'#pattern-rows tr[data-name="{name}"]'))[
        0
    ]
    assert "template" in row.text

    clip, duration = _clip_with_keyword(tmp_path)
    _submit(console, clip, "pipeline", patterns=name)
    _wait(console, lambda d: "SUCCEEDED" in d.find_element(By.ID, "progress").text)
    _shown(console, "results")

    rows = console.find_elements(By.CSS_SELECTOR, "#timeline .stage")
    assert [r.get_attribute("data-stage") for r in rows] == list(STAGE_NAMES)
    for row in rows:
        status = row.get_attribute("data-status")
        assert status in ("SUCCEEDED", "SKIPPED"), (row.get_attribute("data-stage"), status)
        bars = row.find_elements(By.CLASS_NAME, "bar")
        assert len(bars) == (1 if status == "SUCCEEDED" else 0)
    assert "match" not in {
        r.get_attribute("data-stage") for r in rows if r.get_attribute("data-status") == "SKIPPED"
    }
    assert console.find_element(By.ID, "total").text.startswith("total ")

    span, drawn_start_s, _ = _drawn_span_s(console, name, duration)
    assert abs(drawn_start_s - KEYWORD_AT_S) <= 0.25, drawn_start_s
    canvas = console.find_element(By.ID, "spec")
    label = span.find_element(By.CLASS_NAME, "span-label").text
    assert label == f"{name} {float(span.get_attribute('data-score')):.2f}"
    assert int(canvas.get_attribute("data-f0-points") or 0) > 0  # the f0 track is drawn
    measures = console.find_element(By.ID, "measures").text
    for term in ("Loudness in → out", "HNR", "SNR", "Denoise"):
        assert term in measures
    _full_page_screenshot(console, "finished-invocation.png")

    invocation_id = console.find_element(By.ID, "progress").text.split()[1]
    _tab(console, "history")
    row = _row(console, "history-rows", "invocation-id", invocation_id)
    assert row.get_attribute("data-status") == "SUCCEEDED"
    _press(console, "history-rows", "invocation-id", invocation_id, "Open")
    _shown(console, "timeline-box")
    _wait(console, lambda d: invocation_id in d.find_element(By.ID, "progress").text)

    _tab(console, "patterns")
    _press(console, "pattern-rows", "name", name, "Play")
    player = console.find_element(By.ID, "player")
    _wait(console, lambda d: d.execute_script("return arguments[0].duration > 0", player), timeout=30)
    played = console.execute_script("return arguments[0].duration", player)
    assert abs(played - sf.info(KEYWORD).duration) < 0.05
    _press(console, "pattern-rows", "name", name, "Delete")
    _wait(console, lambda d: not d.find_elements(By.CSS_SELECTOR, f'#pattern-rows tr[data-name="{name}"]'))


def test_a_keyword_registered_by_its_text_is_found_and_drawn(
    console: webdriver.Chrome, local_stack: StackProcess
) -> None:
    """A keyword by its spelling alone (no example, so no Play), found in another voice's sentence; a word
    the pronouncing dictionary lacks shows the API's message naming it."""
    name = f"weather-text-{uuid.uuid4().hex[:6]}"
    _tab(console, "patterns")
    console.find_element(By.ID, "pattern-name").send_keys(name)
    console.find_element(By.ID, "pattern-text").send_keys("weather")
    kind = Select(console.find_element(By.ID, "pattern-kind"))
    assert kind.first_selected_option.get_attribute("value") == "keyword"  # typed text means a keyword
    console.find_element(By.CSS_SELECTOR, "#pattern-form button[type=submit]").click()
    row = _row(console, "pattern-rows", "name", name)
    assert row.find_element(By.CLASS_NAME, "text").text == "weather"
    assert "keyword" in row.text
    assert not row.find_elements(By.XPATH, ".//button[text()='Play']")
    assert row.find_elements(By.XPATH, ".//button[text()='Delete']")

    _submit(console, SENTENCE, "pipeline", patterns=name)
    _wait(console, lambda d: "SUCCEEDED" in d.find_element(By.ID, "progress").text)
    _shown(console, "results")
    span, start_s, end_s = _drawn_span_s(console, name, sf.info(SENTENCE).duration)
    assert abs(start_s - SENTENCE_WEATHER_S[0]) <= 0.25, start_s
    assert abs(end_s - SENTENCE_WEATHER_S[1]) <= 0.25, end_s
    assert span.find_element(By.CLASS_NAME, "span-label").text.startswith(f"{name} ")

    _tab(console, "patterns")
    unknown = f"unknown-{uuid.uuid4().hex[:6]}"
    console.find_element(By.ID, "pattern-name").send_keys(unknown)
    console.find_element(By.ID, "pattern-text").send_keys("zqxwv")
    console.find_element(By.CSS_SELECTOR, "#pattern-form button[type=submit]").click()
    alert = _shown(console, "alert")
    assert alert.text.startswith("unknown_word: "), alert.text
    assert "'zqxwv'" in alert.text, alert.text
    _row(console, "pattern-rows", "name", name)
    _full_page_screenshot(console, "keyword-by-text.png")

    _press(console, "pattern-rows", "name", name, "Delete")
    _wait(console, lambda d: not d.find_elements(By.CSS_SELECTOR, f'#pattern-rows tr[data-name="{name}"]'))
    names = [p["name"] for p in local_stack.client().list_patterns()]
    assert name not in names, names
    assert unknown not in names, names


def test_a_bad_file_shows_the_apis_error(
    console: webdriver.Chrome, local_stack: StackProcess, tmp_path: Path
) -> None:
    bad = tmp_path / "not-audio.wav"
    bad.write_bytes(b"this is not audio at all, only text " * 20)
    _submit(console, bad, "sync")
    alert = _wait(
        console,
        lambda d: d.find_element(By.ID, "alert") if d.find_element(By.ID, "alert").is_displayed() else None,
    )
    from harmonic_client import ApiError

    with pytest.raises(ApiError) as refused:  # the same clip straight to the API
        local_stack.client().analyze(bad.read_bytes())
    assert alert.text == f"{refused.value.code}: {refused.value.message}"
    assert refused.value.code == "invalid_audio"
    _full_page_screenshot(console, "bad-file-error.png")


def test_a_recording_from_the_microphone_is_analyzed(console: webdriver.Chrome) -> None:
    record = console.find_element(By.ID, "record")
    record.click()
    _wait(console, lambda d: record.get_attribute("aria-pressed") == "true")
    time.sleep(2.0)
    record.click()
    _wait(console, lambda d: "recording.wav" in d.find_element(By.ID, "clip-name").text)
    wav = console.execute_script(
        "const b = new Uint8Array(window.harmonicConsole.state.clip); return Array.from(b.slice(0, 44));"
    )
    info = sf.info(io.BytesIO(bytes(wav) + b"\0" * 64))
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    Select(console.find_element(By.ID, "mode")).select_by_value("sync")
    console.find_element(By.ID, "submit").click()
    _wait(console, lambda d: "analyzed in" in d.find_element(By.ID, "progress").text)
    raw = console.find_element(By.ID, "raw").get_attribute("textContent")
    assert '"duration_s"' in raw
    import json

    duration = json.loads(raw)["audio"]["duration_s"]
    assert 1.5 <= duration <= 4.0, duration  # about the two seconds recorded


def test_a_failed_invocation_is_marked_and_resumed_from_the_history(
    console: webdriver.Chrome, local_stack: StackProcess
) -> None:
    """features fails its first 3 attempts (a directed fault, as in test_local_stack): the history offers
    resume, the timeline marks the failure and then shows the fourth attempt succeeding."""
    client = local_stack.client()
    correlation_id = f"e2e-fault-features-fail-3-{uuid.uuid4().hex[:8]}"
    accepted = client.submit(SPEECH.read_bytes(), mode="statemachine", correlation_id=correlation_id)
    invocation_id = accepted["invocation_id"]
    assert client.wait(invocation_id, timeout_s=WAIT_S)["status"] == "FAILED"

    _tab(console, "history")
    row = _row(console, "history-rows", "invocation-id", invocation_id)
    assert row.get_attribute("data-status") == "FAILED"
    _press(console, "history-rows", "invocation-id", invocation_id, "Open")
    _wait(
        console, lambda d: f"{invocation_id} (statemachine): FAILED" in d.find_element(By.ID, "progress").text
    )
    failed = console.find_element(By.CSS_SELECTOR, '#timeline .stage[data-stage="features"]')
    assert failed.get_attribute("data-status") == "FAILED"
    assert "3 attempts" in failed.text
    assert "retries_exhausted" in _shown(console, "alert").text
    _full_page_screenshot(console, "failed-invocation.png")

    _tab(console, "history")
    _press(console, "history-rows", "invocation-id", invocation_id, "Resume")
    _wait(
        console,
        lambda d: f"{invocation_id} (statemachine): SUCCEEDED" in d.find_element(By.ID, "progress").text,
    )
    resumed = console.find_element(By.CSS_SELECTOR, '#timeline .stage[data-stage="features"]')
    assert resumed.get_attribute("data-status") == "SUCCEEDED"
    assert "4 attempts" in resumed.text
