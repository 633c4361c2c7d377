"""Every route of the local stack over HTTP through the client, the three asynchronous modes (and their
parallel branch), uploads, idempotency, bad input, and the CLI's plot."""

from __future__ import annotations

import base64
import io
import json
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from harmonic_client import ApiError, Client
from harmonic_client.cli import main as cli_main
from harmonic_client.listener import CallbackListener

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"
STAGES = ["ingest", "denoise", "normalize", "features", "match", "respond"]


def _raw(client: Client, method: str, path: str, body: bytes, headers: dict[str, str] | None = None):
    """A request the client would never send (bad JSON, oversized...): status and parsed body."""
    request = urllib.request.Request(client.endpoint + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_health(client: Client) -> None:
    assert client.health()


def test_analyze_returns_the_whole_result(client: Client) -> None:
    result = client.analyze(SPEECH)
    assert {"audio", "loudness", "features", "matches"} <= set(result)
    assert result["loudness"]["output_lufs"] == pytest.approx(-23.0, abs=0.5)
    assert 60 < result["features"]["f0_hz"]["median"] < 250  # a male espeak voice
    assert len(result["features"]["mfcc_mean"]) == 13


ASYNC_MODES = ["pipeline", "statemachine", "events"]


@pytest.mark.parametrize("mode", ASYNC_MODES)
def test_invoke_and_wait_in_each_mode(client: Client, mode: str) -> None:
    progress: list[str] = []
    final = client.invoke(SPEECH, mode=mode, wait=True, on_progress=lambda s: progress.append(s["status"]))
    assert final["status"] == "SUCCEEDED", final
    assert final["mode"] == mode
    assert [stage["name"] for stage in final["stages"]] == STAGES
    assert {stage["status"] for stage in final["stages"]} <= {"SUCCEEDED", "SKIPPED"}
    assert final["result"]["features"]["voiced_fraction"] > 0.2
    assert progress[-1] == "SUCCEEDED"
    again = client.status(final["invocation_id"])
    assert again["status"] == "SUCCEEDED"


def test_same_analysis_in_every_mode(client: Client) -> None:
    sync = client.analyze(SPEECH)
    pipeline = client.invoke(SPEECH, mode="pipeline", wait=True)["result"]
    statemachine = client.invoke(SPEECH, mode="statemachine", wait=True)["result"]
    events = client.invoke(SPEECH, mode="events", wait=True)["result"]
    for result in (pipeline, statemachine, events):
        assert result["features"]["mfcc_mean"] == pytest.approx(sync["features"]["mfcc_mean"], abs=1e-3)
        assert result["loudness"]["output_lufs"] == pytest.approx(sync["loudness"]["output_lufs"], abs=1e-3)


def test_large_stereo_upload_goes_through_uploads(client: Client, tmp_path: Path) -> None:
    """A 30 MB stereo 44.1 kHz clip: over the inline limit, so the client uploads it to the presigned URL."""
    sr, seconds = 44_100, 180
    rng = np.random.default_rng(5)
    t = np.arange(sr * seconds) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    stereo = np.stack([tone, 0.8 * tone], axis=1) + 0.01 * rng.standard_normal((t.size, 2))
    path = tmp_path / "long.wav"
    wavfile.write(path, sr, (stereo * 32767).astype(np.int16))
    assert path.stat().st_size > 30_000_000
    final = client.invoke(path, mode="pipeline", wait=True)
    assert final["status"] == "SUCCEEDED", final.get("error")
    audio = final["result"]["audio"]
    assert audio["channels"] == 2
    assert audio["sample_rate"] == sr
    assert audio["duration_s"] == pytest.approx(seconds, abs=0.01)
    assert final["result"]["features"]["f0_hz"]["median"] == pytest.approx(220, rel=0.03)


def test_presigned_upload_then_analyze_by_key(client: Client) -> None:
    key = client.upload(SPEECH.read_bytes())
    result = client.request("POST", "/v1/analyze", {"audio_key": key}).body
    assert result["features"]["duration_s"] > 1.0


def test_idempotency_key_returns_the_same_invocation(client: Client) -> None:
    key = str(uuid.uuid4())
    first = client.submit(SPEECH, idempotency_key=key)
    second = client.submit(SPEECH, idempotency_key=key)
    assert first["invocation_id"] == second["invocation_id"]
    with pytest.raises(ApiError) as refused:
        client.submit(SPEECH, idempotency_key=key, steps=["features"])
    assert refused.value.status == 409
    assert client.wait(first["invocation_id"])["status"] == "SUCCEEDED"


def test_garbage_audio_is_a_400_for_sync_and_a_failed_invocation_never_a_500(client: Client) -> None:
    garbage = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)
    with pytest.raises(ApiError) as refused:
        client.analyze(garbage)
    assert refused.value.status == 400
    assert refused.value.code == "invalid_audio"
    with pytest.raises(ApiError) as not_wav:
        client.submit(b"this is not audio at all")
    assert not_wav.value.status == 400
    accepted = client.submit(garbage, mode="pipeline")
    final = client.wait(accepted["invocation_id"])
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "invalid_audio"
    assert final["error"]["stage"] == "ingest"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (json.dumps({"audio": "%%%not base64%%%"}).encode(), 400),
        (
            json.dumps(
                {"audio": base64.b64encode(SPEECH.read_bytes()).decode(), "mode": "carrier-pigeon"}
            ).encode(),
            400,
        ),
        (json.dumps({"audio": base64.b64encode(b"x").decode(), "unexpected": 1}).encode(), 400),
        (json.dumps({}).encode(), 400),
    ],
)
def test_bad_requests_are_json_400s(client: Client, body: bytes, status: int) -> None:
    code, payload = _raw(client, "POST", "/v1/invocations", body, {"Content-Type": "application/json"})
    assert code == status
    assert payload["error"]["code"]
    assert payload["error"]["message"]


def test_oversized_body_is_413(client: Client) -> None:
    body = b"{" + b" " * (11 * 1024 * 1024) + b"}"
    code, payload = _raw(client, "POST", "/v1/invocations", body, {"Content-Type": "application/json"})
    assert code == 413
    assert payload["error"]["code"] == "payload_too_large"


def test_unknown_invocation_is_404_and_resume_of_a_success_is_409(client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.status(str(uuid.uuid4()))
    assert missing.value.status == 404
    done = client.invoke(SPEECH, wait=True)
    with pytest.raises(ApiError) as conflict:
        client.resume(done["invocation_id"])
    assert conflict.value.status == 409


def test_cli_invoke_status_and_plot(local_stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = ["--endpoint", local_stack.base_url]
    assert cli_main([*endpoint, "invoke", str(SPEECH), "--wait", "--mode", "statemachine"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["status"] == "SUCCEEDED"
    assert cli_main([*endpoint, "status", final["invocation_id"]]) == 0
    assert json.loads(capsys.readouterr().out)["invocation_id"] == final["invocation_id"]
    output = tmp_path / "plot.png"
    assert (
        cli_main([*endpoint, "plot", final["invocation_id"], "--audio", str(SPEECH), "-o", str(output)]) == 0
    )
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert output.stat().st_size > 10_000
    assert cli_main([*endpoint, "status", "no-such-id"]) == 3  # the API refused: exit code 3
    assert "404" in capsys.readouterr().err


def test_logs_carry_the_correlation_id_and_duration_per_stage(local_stack, client: Client) -> None:
    final = client.invoke(SPEECH, mode="pipeline", wait=True)
    invocation_id = final["invocation_id"]
    records = [json.loads(line) for line in local_stack.log().splitlines() if line.startswith("{")]
    lines = [record for record in records if record.get("invocation_id") == invocation_id]
    stage_lines = [line for line in lines if "duration_ms" in line and line.get("stage")]
    ran = {stage["name"] for stage in final["stages"] if stage["status"] == "SUCCEEDED"}
    assert {line["stage"] for line in stage_lines} >= ran
    correlation_ids = {line.get("correlation_id") for line in lines}
    assert len(correlation_ids) == 1
    assert None not in correlation_ids


@pytest.mark.parametrize("mode", ASYNC_MODES)
def test_resume_after_an_injected_failure(client: Client, mode: str) -> None:
    """features fails on its first 3 attempts (a directed fault): retries run out, the invocation is FAILED
    and resumable; resume reruns only features and what follows."""
    correlation_id = f"e2e-fault-features-fail-3-{uuid.uuid4().hex[:8]}"
    accepted = client.submit(SPEECH, mode=mode, correlation_id=correlation_id)
    failed = client.wait(accepted["invocation_id"], timeout_s=120)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "retries_exhausted"
    assert failed["error"]["stage"] == "features"
    stages = {stage["name"]: stage for stage in failed["stages"]}
    assert stages["features"]["attempts"] == 3
    assert stages["ingest"]["status"] == "SUCCEEDED"

    resumed = client.resume(accepted["invocation_id"])
    assert resumed["resumed_from"] == "features"
    final = client.wait(accepted["invocation_id"], timeout_s=120)
    assert final["status"] == "SUCCEEDED", final.get("error")
    stages = {stage["name"]: stage for stage in final["stages"]}
    assert stages["ingest"]["attempts"] == 1  # not redone
    assert stages["features"]["attempts"] == 4
    assert "error" not in final, final["error"]


KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"


def test_patterns_registry_and_matching_in_every_mode(client: Client, local_stack, capsys) -> None:
    endpoint = ["--endpoint", local_stack.base_url]
    assert cli_main([*endpoint, "patterns", "add", "music", str(KEYWORDS / "enrol_music_0.wav")]) == 0
    keyword = json.loads(capsys.readouterr().out)
    assert keyword["kind"] == "template"
    recording = client.add_pattern("espeak fox", SPEECH, kind="fingerprint")
    listed = {pattern["pattern_id"]: pattern for pattern in client.list_patterns()}
    assert {keyword["pattern_id"], recording["pattern_id"]} <= set(listed)
    assert client.request("GET", f"/v1/patterns/{recording['pattern_id']}").body["name"] == "espeak fox"

    query = KEYWORDS / "query_music_0.wav"
    for mode in ASYNC_MODES:
        final = client.invoke(query, mode=mode, wait=True)
        assert final["status"] == "SUCCEEDED"
        assert {s["name"]: s["status"] for s in final["stages"]}["match"] == "SUCCEEDED"
        assert final["result"]["matches"][0]["pattern_id"] == keyword["pattern_id"]
    found = client.analyze(SPEECH)["matches"]
    assert found[0]["pattern_id"] == recording["pattern_id"]
    assert found[0]["kind"] == "fingerprint"
    # options.patterns narrows the match stage: the keyword alone leaves the recording out
    assert cli_main([*endpoint, "analyze", str(SPEECH), "--patterns", "music"]) == 0
    narrowed = json.loads(capsys.readouterr().out)["matches"]
    assert recording["pattern_id"] not in {found["pattern_id"] for found in narrowed}
    final = client.invoke(SPEECH, mode="statemachine", wait=True, options={"patterns": ["espeak fox"]})
    assert [found["pattern_id"] for found in final["result"]["matches"]] == [recording["pattern_id"]]
    with pytest.raises(ApiError) as unknown:
        client.submit(SPEECH, mode="pipeline", options={"patterns": ["never registered"]})
    assert (unknown.value.status, unknown.value.code) == (400, "bad_request")

    with pytest.raises(ApiError) as bad:
        client.add_pattern("noise", b"RIFF....WAVEjunk", kind="fingerprint")
    assert bad.value.status == 400
    assert cli_main([*endpoint, "patterns", "rm", keyword["pattern_id"]]) == 0
    client.remove_pattern(recording["pattern_id"])
    remaining = {pattern["pattern_id"] for pattern in client.list_patterns()}
    assert not {keyword["pattern_id"], recording["pattern_id"]} & remaining
    with pytest.raises(ApiError) as missing:
        client.remove_pattern(recording["pattern_id"])
    assert missing.value.status == 404
    final = client.invoke(query, mode="pipeline", wait=True)
    assert {s["name"]: s for s in final["stages"]}["match"]["status"] == "SKIPPED"


def test_the_readme_keyword_example_matches(local_stack, capsys) -> None:
    """README "Quickstart": a keyword registered by its spelling is found in a sentence spoken by a voice of
    another engine (flite slt), in every mode, where it is spoken (0.96-1.22 s)."""
    endpoint = ["--endpoint", local_stack.base_url]
    assert cli_main([*endpoint, "patterns", "add", "weather", "--text"]) == 0
    keyword = json.loads(capsys.readouterr().out)
    assert (keyword["kind"], keyword["text"]) == ("keyword", "weather")
    query = str(KEYWORDS / "sentence_weather_flite_slt.wav")
    try:
        assert cli_main([*endpoint, "analyze", query, "--patterns", "weather"]) == 0
        (found,) = json.loads(capsys.readouterr().out)["matches"]
        assert (found["name"], found["kind"]) == ("weather", "keyword")
        assert abs(found["start_s"] - 0.96) <= 0.25
        assert abs(found["end_s"] - 1.22) <= 0.25
        client = Client(local_stack.base_url)
        for mode in ASYNC_MODES:
            final = client.invoke(query, mode=mode, wait=True, options={"patterns": ["weather"]})
            assert [m["pattern_id"] for m in final["result"]["matches"]] == [keyword["pattern_id"]], mode
        assert cli_main([*endpoint, "patterns", "add", "k", "--text", "zqxwv"]) == 3  # the API refused
        assert "zqxwv" in capsys.readouterr().err
    finally:
        assert cli_main([*endpoint, "patterns", "rm", keyword["pattern_id"]]) == 0


def _clip(seconds: float) -> bytes:
    """`seconds` of the committed speech clip, tiled: long enough that features and match take a while."""
    sr, samples = wavfile.read(SPEECH)
    tiled = np.tile(samples, int(np.ceil(seconds * sr / len(samples))))[: int(seconds * sr)]
    buffer = io.BytesIO()
    wavfile.write(buffer, sr, tiled)
    return buffer.getvalue()


def _interval(final: dict, stage: str) -> tuple[datetime, datetime]:
    found = next(s for s in final["stages"] if s["name"] == stage)
    return datetime.fromisoformat(found["started_at"]), datetime.fromisoformat(found["finished_at"])


@pytest.mark.parametrize("mode", ["statemachine", "events"])
def test_features_and_match_run_at_the_same_time(client: Client, mode: str) -> None:
    """The modes with a parallel branch start features and match together when normalize is done: their
    intervals overlap, and respond starts after both have finished. (The local stack's stage functions
    run in worker processes, as Lambda's execution environments; the first invocation warms a second one.)"""
    pattern = client.add_pattern("overlap keyword", KEYWORDS / "enrol_music_0.wav", kind="template")
    try:
        audio = _clip(5.0)
        client.invoke(audio, mode=mode, wait=True)  # warm a second worker
        final = client.invoke(audio, mode=mode, wait=True)
    finally:
        client.remove_pattern(pattern["pattern_id"])
    assert final["status"] == "SUCCEEDED", final
    features, match = _interval(final, "features"), _interval(final, "match")
    normalize, respond = _interval(final, "normalize"), _interval(final, "respond")
    assert features[0] < match[1]
    assert match[0] < features[1], (features, match)
    assert min(features[0], match[0]) >= normalize[1]
    assert respond[0] >= max(features[1], match[1])


def test_burst_beyond_the_throttle_is_shed_with_429_and_retry_after(local_stack) -> None:
    """More requests at once than the stage's burst: some get 429 + Retry-After; the client's retries
    (which honour Retry-After) then get every one of them through."""
    from concurrent.futures import ThreadPoolExecutor

    def bare(_: int) -> tuple[int, str | None]:
        request = urllib.request.Request(local_stack.base_url + "/v1/health")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, None
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Retry-After")

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(bare, range(400)))
    throttled = [retry for status, retry in statuses if status == 429]
    assert throttled, "a burst of 400 should exceed the burst of 100"
    assert set(throttled) == {"1"}
    assert {status for status, _ in statuses} <= {200, 429}

    patient = local_stack.client(max_retries=6)
    with ThreadPoolExecutor(max_workers=32) as pool:
        healths = list(pool.map(lambda _: patient.health()["status"], range(200)))
    assert healths == ["ok"] * 200


def test_logs_never_contain_audio_or_presigned_urls(local_stack, client: Client) -> None:
    client.upload(SPEECH.read_bytes())
    client.analyze(SPEECH)
    log = local_stack.log()
    assert "UklGR" not in log  # base64 of "RIFF": no inline audio
    assert "X-Amz-Signature" not in log
    assert "X-Amz-Credential" not in log


def _signing_secret(local_stack) -> bytes:
    """The local stack's notification signing secret, from its Secrets Manager (moto)."""
    secrets = local_stack.aws("secretsmanager")
    (listed,) = secrets.list_secrets()["SecretList"]
    return secrets.get_secret_value(SecretId=listed["ARN"])["SecretString"].encode()


@pytest.mark.parametrize("mode", ASYNC_MODES)
def test_completion_notification_reaches_a_listener_signed(client: Client, local_stack, mode: str) -> None:
    """A callback_url on 127.0.0.1 gets the final status document, signed with the stack's secret (the
    listener answers 401 to anything else and keeps nothing of it)."""
    with CallbackListener(secret=_signing_secret(local_stack)) as listener:
        accepted = client.submit(SPEECH, mode=mode, callback_url=listener.url)
        notified = listener.wait_for(accepted["invocation_id"], timeout_s=60)
    assert notified is not None, "no notification in 60 s"
    assert listener.refused == 0
    assert notified["status"] == "SUCCEEDED"
    assert notified["mode"] == mode
    assert notified == client.status(accepted["invocation_id"])


def test_cli_waits_by_listening(local_stack, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = ["--endpoint", local_stack.base_url]
    assert cli_main([*endpoint, "invoke", str(SPEECH), "--mode", "events", "--wait", "--listen"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["status"] == "SUCCEEDED"
    assert final["result"]["features"]["voiced_fraction"] > 0.2


def test_a_callback_url_the_service_cannot_use_is_a_400(client: Client) -> None:
    with pytest.raises(ApiError) as refused:
        client.submit(SPEECH, mode="events", callback_url="ftp://127.0.0.1/x")
    assert refused.value.status == 400
    assert "callback_url" in str(refused.value)


def test_two_api_keys_are_two_callers_who_see_only_their_own(local_stack) -> None:
    """The local front gives an X-Api-Key an apiKeyId, as API Gateway does: each key is a caller."""
    alice = local_stack.client(auth="api_key", api_key="alice-local-key")
    bob = local_stack.client(auth="api_key", api_key="bob-local-key")
    pattern = alice.add_pattern("music", KEYWORDS / "enrol_music_0.wav")
    accepted = alice.submit(KEYWORDS / "query_music_0.wav", mode="pipeline")
    assert pattern["pattern_id"] not in {p["pattern_id"] for p in bob.list_patterns()}
    for call in (
        lambda: bob.status(accepted["invocation_id"]),
        lambda: bob.remove_pattern(pattern["pattern_id"]),
    ):
        with pytest.raises(ApiError) as hidden:
            call()
        assert (hidden.value.status, hidden.value.code) == (404, "not_found")
    final = alice.wait(accepted["invocation_id"])
    assert final["result"]["matches"][0]["pattern_id"] == pattern["pattern_id"]
    alice.remove_pattern(pattern["pattern_id"])


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW"])
def test_undeclared_methods_get_a_json_error_as_api_gateway_answers(local_stack, method: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(local_stack.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.request(method, "/v1/health")
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 403
    assert response.getheader("Content-Type") == "application/json"
    assert body["error"]["code"] == "forbidden"


def test_the_cli_analyzes_flac_and_mp3_and_refuses_m4a(local_stack, tmp_path: Path, capsys) -> None:
    import soundfile

    samples, rate = soundfile.read(SPEECH, dtype="float32")
    endpoint = ["--endpoint", local_stack.base_url]
    durations = []
    for suffix, container in ((".flac", "FLAC"), (".mp3", "MP3")):
        path = tmp_path / f"speech{suffix}"
        soundfile.write(path, samples, rate, format=container)
        assert cli_main([*endpoint, "analyze", str(path)]) == 0
        durations.append(json.loads(capsys.readouterr().out)["features"]["duration_s"])
    assert durations[0] == pytest.approx(durations[1], abs=0.01)
    m4a = tmp_path / "voice.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(2000))
    assert cli_main([*endpoint, "analyze", str(m4a)]) == 3
    assert "MP4/M4A" in capsys.readouterr().err


def test_swagger_ui_at_docs_over_the_committed_contract(local_stack) -> None:
    """Swagger UI from node_modules (the pinned swagger-ui-dist) over docs/: nothing from outside."""
    import urllib.request

    from local import ROOT

    def get(path: str) -> tuple[int, str, bytes]:
        with urllib.request.urlopen(local_stack.base_url + path, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()

    status, kind, page = get("/docs")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert b"SwaggerUIBundle" in page
    assert b"http" not in page.replace(b"http-equiv", b"")  # every asset from this stack
    status, kind, document = get("/docs/openapi.json")
    assert json.loads(document) == json.loads((ROOT / "docs" / "openapi.json").read_text())
    status, kind, bundle = get("/docs/swagger-ui-bundle.js")
    assert (status, kind) == (200, "application/javascript")
    assert len(bundle) > 100_000


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nope"), ("GET", "/health"), ("PUT", "/v1/patterns/p-1"), ("GET", "/v1/invocations/a/b")],
)
def test_undeclared_paths_get_api_gateways_403_before_the_function(
    local_stack, method: str, path: str
) -> None:
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(local_stack.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 403
    assert body["error"]["code"] == "forbidden"


def test_the_client_reads_its_history_and_a_patterns_example(local_stack) -> None:
    """A caller of its own (an API key): its history is exactly what it submitted, newest first, and a
    pattern's example comes back byte for byte from the presigned URL."""
    client = local_stack.client(auth="api_key", api_key=f"history-{uuid.uuid4().hex[:8]}")
    first = client.submit(SPEECH, mode="pipeline")["invocation_id"]
    second = client.submit(SPEECH, mode="events")["invocation_id"]
    for invocation_id in (first, second):
        assert client.wait(invocation_id, timeout_s=120)["status"] == "SUCCEEDED"
    page = client.history(limit=1)
    assert [item["invocation_id"] for item in page["invocations"]] == [second]
    rest = client.history(next_token=page["next_token"])
    assert [item["invocation_id"] for item in rest["invocations"]] == [first]
    assert rest["next_token"] is None
    assert {item["mode"] for item in [*page["invocations"], *rest["invocations"]]} == {"pipeline", "events"}

    example = (KEYWORDS / "enrol_music_0.wav").read_bytes()
    pattern = client.add_pattern(f"music-{uuid.uuid4().hex[:6]}", example)
    where = client.pattern_example(pattern["pattern_id"])
    assert where["content_type"] == "audio/wav"
    with urllib.request.urlopen(where["url"], timeout=30) as response:
        assert response.read() == example
    client.remove_pattern(pattern["pattern_id"])
