"""Settings: cdk.json defaults, parsing of `-c` strings, and clear errors for bad values."""

from __future__ import annotations

import pytest

from harmonic_service.stages import STAGES
from infra.settings import Settings, SettingsError
from infra.stack import cdk_json_context


def test_cdk_json_holds_every_setting_with_the_dataclass_default() -> None:
    context = cdk_json_context()
    defaults = Settings()
    for name in Settings.__dataclass_fields__:
        assert name in context, f"cdk.json context lacks {name}"
    assert Settings.from_mapping(context) == defaults
    assert (defaults.orchestration, defaults.auth, defaults.architecture, defaults.python_runtime) == (
        "all",
        "iam",
        "arm64",
        "3.13",
    )


def test_command_line_strings_are_parsed() -> None:
    settings = Settings.from_mapping(
        {
            "auth": "api_key",
            "architecture": "x86_64",
            "python_runtime": "3.12",
            "stage_memory_mb": '{"features": 2048}',
            "retention_days": "3",
            "api_throttle_rate": "12.5",
            "api_throttle_burst": "40",
            "max_duration_s": "30",
            "state_machine_type": "express",
            "shared_pattern_owners": "apikey:k1, arn:aws:iam::123456789012:role/Publisher",
        }
    )
    assert settings.auth == "api_key"
    assert settings.architecture == "x86_64"
    assert settings.python_runtime == "3.12"
    assert settings.retention_days == 3
    assert settings.api_throttle_rate == 12.5
    assert settings.api_throttle_burst == 40
    assert settings.max_duration_s == 30.0
    assert settings.state_machine_type == "EXPRESS"
    assert settings.stage_memory("features") == 2048
    assert settings.shared_pattern_owners == ("apikey:k1", "arn:aws:iam::123456789012:role/Publisher")


def test_stage_memory_defaults_to_stages_py_and_takes_overrides() -> None:
    settings = Settings.from_mapping({"stage_memory_mb": {"denoise": 3008}})
    for spec in STAGES:
        expected = 3008 if spec.name == "denoise" else spec.memory_mb
        assert settings.stage_memory(spec.name) == expected
    with pytest.raises(KeyError):
        settings.stage_memory("nope")


def test_python_runtime_given_as_a_number_in_cdk_json() -> None:
    assert Settings.from_mapping({"python_runtime": 3.12}).python_runtime == "3.12"
    assert Settings.from_mapping({"python_runtime": 3.13}).python_runtime == "3.13"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"orchestration": "lambda"}, "orchestration must be one of pipeline, statemachine, events, all"),
        ({"auth": "cognito"}, "auth must be one of iam, api_key"),
        ({"architecture": "arm"}, "architecture must be one of arm64, x86_64"),
        ({"python_runtime": "3.11"}, "python_runtime must be one of 3.12, 3.13"),
        ({"stage_memory_mb": {"transcode": 1024}}, "unknown stage(s) transcode"),
        ({"stage_memory_mb": {"features": 64}}, "stage_memory_mb.features must be between 128 and 10240"),
        ({"stage_memory_mb": "[1, 2]"}, "stage_memory_mb: cannot use"),
        ({"retention_days": "a week"}, "retention_days: cannot use 'a week'"),
        ({"retention_days": 0}, "retention_days must be between 1 and 3650"),
        ({"log_retention_days": 10}, "log_retention_days must be one of"),
        ({"api_timeout_s": 60}, "api_timeout_s must be between 3 and 29"),
        ({"api_throttle_burst": True}, "api_throttle_burst: cannot use True"),
        ({"max_inline_bytes": 8 * 1024 * 1024}, "max_inline_bytes must be between"),
        (
            {"max_upload_bytes": 2048, "max_inline_bytes": 4096},
            "max_upload_bytes must be at least max_inline_bytes",
        ),
        ({"state_machine_type": "FAST"}, "state_machine_type must be one of STANDARD, EXPRESS"),
        ({"alarm_email": "ops"}, "alarm_email must be an e-mail address"),
        ({"breaker_threshold": 0}, "breaker_threshold must be between 1 and 10000"),
        ({"shared_pattern_owners": ["alice"]}, "shared_pattern_owners: 'alice' is not an owner id"),
        ({"breaker_cooldown_s": 1800}, "breaker_cooldown_s must be between 1 and 900"),  # SQS's longest delay
    ],
)
def test_bad_values_are_refused_with_the_setting_named(context: dict, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_mapping(context)
    assert message in str(raised.value)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.auth = "api_key"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.stage_memory_mb["features"] = 1  # type: ignore[index]
