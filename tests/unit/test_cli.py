"""The `harmonic` command against a scripted HTTP server: global options anywhere, the exit codes (0 ok, 1
the invocation failed, 2 usage, 3 API or network), stdin clips, table output, `health`, `patterns get`, and
`configure` with the configuration file and its precedence."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from harmonic_client import __version__
from harmonic_client.cli import main
from tests.unit.conftest import isolate_client_configuration
from tests.unit.conftest import json_response as _json

WAV = (Path(__file__).resolve().parents[1] / "data" / "speech").glob("*.wav").__next__().read_bytes()


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_client_configuration(tmp_path, monkeypatch)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"harmonic {__version__}\n"


def test_global_options_go_before_or_after_the_command(server, capsys: pytest.CaptureFixture[str]) -> None:
    url, script = server
    script.responses += [_json(200, {"status": "ok", "modes": ["pipeline"]})] * 2
    assert main(["--endpoint", url, "health"]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "ok", "modes": ["pipeline"]}
    assert main(["health", "--output", "table", "--endpoint", url]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["status", "ok"]
    assert [r["path"] for r in script.requests] == ["/v1/health", "/v1/health"]


def test_exit_codes(server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, script = server
    script.responses.append(_json(200, {"invocation_id": "i-1", "status": "FAILED", "stages": []}))
    assert main(["--endpoint", url, "status", "i-1"]) == 1  # the invocation failed
    script.responses.append(_json(200, {"invocation_id": "i-2", "status": "SUCCEEDED", "stages": []}))
    assert main(["--endpoint", url, "status", "i-2"]) == 0
    assert main(["--endpoint", url, "frobnicate"]) == 2  # usage
    assert main(["--endpoint", url, "analyze", str(tmp_path / "missing.wav")]) == 2
    script.responses.append(_json(404, {"error": {"code": "not_found", "message": "no invocation x"}}))
    assert main(["--endpoint", url, "status", "x"]) == 3  # the API refused
    capsys.readouterr()
    assert main(["--endpoint", "http://127.0.0.1:9", "health"]) == 3  # nothing listens on port 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert "cannot reach http://127.0.0.1:9" in err


def test_a_clip_from_standard_input(server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = server
    script.responses.append(_json(200, {"matches": []}))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(WAV)))
    assert main(["--endpoint", url, "analyze", "-"]) == 0
    (request,) = script.requests
    assert base64.b64decode(json.loads(request["body"])["audio"]) == WAV
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["--endpoint", url, "analyze", "-"]) == 2  # nothing piped in


def test_patterns_get_and_a_table_of_patterns(server, capsys: pytest.CaptureFixture[str]) -> None:
    url, script = server
    pattern = {"pattern_id": "p-1", "name": "weather", "kind": "template", "shared": True, "duration_s": 0.8}
    script.responses += [_json(200, pattern), _json(200, {"patterns": [pattern], "count": 1})]
    assert main(["--endpoint", url, "patterns", "get", "p-1"]) == 0
    assert json.loads(capsys.readouterr().out) == pattern
    assert main(["--endpoint", url, "--output", "table", "patterns", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["pattern_id", "name", "kind", "shared", "duration_s"]
    assert row.split() == ["p-1", "weather", "template", "true", "0.8"]
    assert [r["path"] for r in script.requests] == ["/v1/patterns/p-1", "/v1/patterns"]


def test_history_pages_and_a_patterns_example(server, capsys: pytest.CaptureFixture[str]) -> None:
    url, script = server
    item = {"invocation_id": "i-1", "status": "SUCCEEDED", "mode": "pipeline", "created_at": "t0"}
    example = {
        "url": "https://bucket/patterns/p-1/example.wav?sig",
        "content_type": "audio/wav",
        "expires_in": 900,
    }
    script.responses += [
        _json(200, {"invocations": [item], "count": 1, "next_token": "n-2"}),
        _json(200, {"invocations": [], "count": 0, "next_token": None}),
        _json(200, example),
    ]
    assert main(["--endpoint", url, "--output", "table", "history", "--limit", "1"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["invocation_id", "mode", "status", "created_at"]
    assert row.split() == ["i-1", "pipeline", "SUCCEEDED", "t0"]
    assert main(["--endpoint", url, "history", "--next-token", "n-2"]) == 0
    assert json.loads(capsys.readouterr().out)["next_token"] is None
    assert main(["--endpoint", url, "patterns", "example", "p-1"]) == 0
    assert json.loads(capsys.readouterr().out) == example
    paths = [r["path"] for r in script.requests]
    assert paths == ["/v1/invocations?limit=1", "/v1/invocations?next_token=n-2", "/v1/patterns/p-1/example"]


def test_configure_from_the_deploy_outputs_then_use_it(
    server, tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, script = server
    outputs = tmp_path / "cdk-outputs.json"
    api_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
    outputs.write_text(json.dumps({"Harmonic": {"ApiUrl": api_url, "AuthMode": "api_key", "ApiKeyId": "k1"}}))
    assert main(["configure", "--from-outputs", str(outputs), "--api-key", "secret-key-1234"]) == 0
    assert "secret-key-1234" not in capsys.readouterr().out  # shown masked
    written = config_file.read_text()
    assert "endpoint = https://abc123.execute-api.eu-west-1.amazonaws.com/prod\n" in written
    assert "auth = api_key\n" in written
    assert "region = eu-west-1\n" in written
    assert "api_key = secret-key-1234\n" in written
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600
    # the file is used; a flag wins over it (here: the scripted server instead of the deployed URL)
    script.responses.append(_json(200, {"status": "ok", "modes": []}))
    assert main(["health", "--endpoint", url]) == 0
    assert script.requests[0]["headers"]["x-api-key"] == "secret-key-1234"


def test_the_environment_wins_over_the_file_and_a_flag_over_both(
    server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, script = server
    assert main(["configure", "--endpoint", "http://127.0.0.1:9", "--output", "table"]) == 0
    monkeypatch.setenv("HARMONIC_ENDPOINT", url)
    script.responses += [_json(200, {"status": "ok"})] * 2
    capsys.readouterr()
    assert main(["health"]) == 0  # the environment's endpoint, the file's table output
    assert capsys.readouterr().out.split() == ["status", "ok"]
    assert main(["health", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "ok"}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("[default]\nauth = kerberos\n", "auth"),
        ("[default]\nendpoint = ftp://x\n", "endpoint"),
        ("[oops", ""),
    ],
)
def test_an_unusable_configuration_is_a_usage_error_naming_the_setting(
    config_file: Path, content: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(content)
    assert main(["health"]) == 2
    err = capsys.readouterr().err
    assert named in err
    assert "error" in err


def test_configure_refuses_outputs_that_are_not_a_harmonic_stack(tmp_path: Path, capsys) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"A": {"ApiUrl": "https://a"}, "B": {"Other": 1}}))
    assert main(["configure", "--from-outputs", str(outputs)]) == 2
    assert "--stack" in capsys.readouterr().err
    assert main(["configure", "--from-outputs", str(outputs), "--stack", "B"]) == 2
    assert "no ApiUrl" in capsys.readouterr().err
    assert main(["configure"]) == 2  # nothing to configure


def test_an_aws_profile_that_does_not_exist_is_one_line_and_exit_code_3(server, capsys) -> None:
    url, _ = server
    assert main(["health", "--endpoint", url, "--auth", "iam", "--profile", "no-such-profile"]) == 3
    err = capsys.readouterr().err
    assert "no-such-profile" in err
    assert err.count("\n") == 1


def test_a_clip_the_plot_cannot_decode_is_a_usage_error(server, tmp_path: Path, capsys) -> None:
    url, script = server
    script.responses.append(_json(200, {"invocation_id": "i-1", "status": "SUCCEEDED", "stages": []}))
    clip = tmp_path / "clip.m4a"
    clip.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    assert main(["--endpoint", url, "plot", "i-1", "--audio", str(clip), "-o", str(tmp_path / "p.png")]) == 2
    assert "cannot plot" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_plot_reads_the_clip_from_standard_input(server, tmp_path: Path, monkeypatch) -> None:
    url, script = server
    script.responses.append(_json(200, {"invocation_id": "i-1", "status": "SUCCEEDED", "stages": []}))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(WAV)))
    png = tmp_path / "p.png"
    assert main(["--endpoint", url, "plot", "i-1", "--audio", "-", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_options_patterns_and_near_duplicates(server) -> None:
    url, script = server
    script.responses += [_json(200, {"matches": []})] * 3
    clip = str(next((Path(__file__).resolve().parents[1] / "data" / "speech").glob("*.wav")))
    assert main(["--endpoint", url, "analyze", clip]) == 0
    assert main(["--endpoint", url, "analyze", clip, "--near-duplicates"]) == 0
    assert main(["--endpoint", url, "analyze", clip, "--patterns", "theme,jingle", "--near-duplicates"]) == 0
    bodies = [json.loads(request["body"]) for request in script.requests]
    assert "options" not in bodies[0]
    assert bodies[1]["options"] == {"near_duplicates": True}
    assert bodies[2]["options"] == {"patterns": ["theme", "jingle"], "near_duplicates": True}


def test_patterns_add_a_keyword_by_its_text(server, tmp_path: Path) -> None:
    url, script = server
    script.responses += [_json(201, {"pattern_id": f"p-{n}"}) for n in range(3)]
    assert main(["--endpoint", url, "patterns", "add", "weather", "--text"]) == 0  # the name is the text
    assert main(["--endpoint", url, "patterns", "add", "greeting", "--text", "good morning"]) == 0
    clip = tmp_path / "k.wav"
    clip.write_bytes(WAV)
    assert main(["--endpoint", url, "patterns", "add", "weather", str(clip), "--text"]) == 0  # both
    bodies = [json.loads(request["body"]) for request in script.requests]
    assert bodies[0] == {"name": "weather", "kind": "keyword", "text": "weather"}
    assert bodies[1] == {"name": "greeting", "kind": "keyword", "text": "good morning"}
    assert (bodies[2]["kind"], bodies[2]["text"], base64.b64decode(bodies[2]["audio"])) == (
        "keyword",
        "weather",
        WAV,
    )
    assert main(["--endpoint", url, "patterns", "add", "weather"]) == 2  # neither a clip nor --text
    assert len(script.requests) == 3


def test_patterns_rebuild_by_id_and_all_of_yours(server, capsys: pytest.CaptureFixture[str]) -> None:
    """`patterns rebuild ID...` posts each id's rebuild (a refusal is exit code 3); `--all` rebuilds every
    pattern of the caller's, leaves the shared ones alone and reports the 409s as skipped, with the
    reason."""
    url, script = server
    mine = {"pattern_id": "p-1", "name": "weather", "kind": "template", "shared": False}
    older = {"pattern_id": "p-2", "name": "music", "kind": "template", "shared": False}
    shared = {"pattern_id": "p-3", "name": "fox", "kind": "fingerprint", "shared": True}
    rebuilt = {**mine, "artifact_bytes": 9000, "rebuilt_at": "2026-12-01T05:00:00Z"}
    no_example = {"error": {"code": "no_example", "message": "registered before examples were kept"}}
    script.responses += [
        _json(200, rebuilt),
        _json(200, {"patterns": [mine, older, shared], "count": 3}),
        _json(200, rebuilt),
        _json(409, no_example),
        _json(409, no_example),
    ]
    assert main(["--endpoint", url, "patterns", "rebuild", "p-1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"rebuilt": [rebuilt]}
    assert main(["--endpoint", url, "--output", "table", "patterns", "rebuild", "--all"]) == 0
    table = capsys.readouterr().out
    assert "p-1" in table.split("skipped:")[0]
    assert "no_example: registered before examples were kept" in table.split("skipped:")[1]
    assert main(["--endpoint", url, "patterns", "rebuild", "p-2"]) == 3
    posted = [r["path"] for r in script.requests if r["method"] == "POST"]
    assert posted == [
        "/v1/patterns/p-1/rebuild",
        "/v1/patterns/p-1/rebuild",
        "/v1/patterns/p-2/rebuild",  # p-3 is a publisher's: not tried
        "/v1/patterns/p-2/rebuild",
    ]
    assert main(["--endpoint", url, "patterns", "rebuild"]) == 2  # ids or --all
    assert main(["--endpoint", url, "patterns", "rebuild", "p-1", "--all"]) == 2
