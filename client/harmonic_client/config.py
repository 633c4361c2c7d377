"""The CLI's configuration file, as the AWS CLI keeps its own: INI sections of settings, one per named
configuration (``default`` unless ``HARMONIC_CONFIG_NAME`` or ``--config-name`` says otherwise).

    # ~/.harmonic/config (HARMONIC_CONFIG_FILE elsewhere); written by `harmonic configure`, mode 0600
    [default]
    endpoint = https://abc123.execute-api.eu-west-1.amazonaws.com/prod
    auth = iam
    profile = dev
    region = eu-west-1
    output = table

Precedence, highest first: a command-line flag, an environment variable (``HARMONIC_ENDPOINT``,
``HARMONIC_API_KEY``, ``HARMONIC_AUTH``, ``AWS_PROFILE``, ``AWS_REGION``), the file, the defaults.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEYS = ("endpoint", "auth", "api_key", "profile", "region", "output")
ENVIRONMENT = {
    "endpoint": "HARMONIC_ENDPOINT",
    "auth": "HARMONIC_AUTH",
    "api_key": "HARMONIC_API_KEY",
    "profile": "AWS_PROFILE",
    "region": "AWS_REGION",
    "output": "HARMONIC_OUTPUT",
}
AUTH_MODES = ("none", "iam", "api_key")
OUTPUTS = ("json", "table")


class ConfigError(ValueError):
    """A configuration (file, outputs file, value) that cannot be used; the message says which and why."""


def config_path() -> Path:
    return Path(os.environ.get("HARMONIC_CONFIG_FILE") or Path.home() / ".harmonic" / "config")


def config_name(given: str | None = None) -> str:
    return given or os.environ.get("HARMONIC_CONFIG_NAME") or "default"


def read(name: str, path: Path | None = None) -> dict[str, str]:
    """The settings of configuration `name` in the file (empty when there is no file or no such section)."""
    path = path or config_path()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise ConfigError(f"the configuration file {path} cannot be read: {error}") from None
    if not parser.has_section(name):
        return {}
    return {key: value for key, value in parser.items(name) if key in KEYS and value}


def write(name: str, settings: Mapping[str, str | None], path: Path | None = None) -> Path:
    """Store `settings` (None or "" removes a key) as configuration `name`, keeping the others; 0600."""
    path = path or config_path()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    if not parser.has_section(name):
        parser.add_section(name)
    for key, value in settings.items():
        if key not in KEYS:
            raise ConfigError(f"unknown setting {key!r}; settings are {', '.join(KEYS)}")
        if value:
            parser.set(name, key, str(value))
        else:
            parser.remove_option(name, key)
    check(dict(parser.items(name)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        parser.write(out)
    return path


def check(settings: Mapping[str, str]) -> None:
    """ConfigError naming the setting whose value is not allowed."""
    if settings.get("auth") and settings["auth"] not in AUTH_MODES:
        raise ConfigError(f"auth must be one of {', '.join(AUTH_MODES)}, got {settings['auth']!r}")
    if settings.get("output") and settings["output"] not in OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {settings['output']!r}")
    endpoint = settings.get("endpoint")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint must be an http(s) URL, got {endpoint!r}")


@dataclass
class Resolved:
    """The settings in effect, and where each came from (flag, environment, file, default)."""

    values: dict[str, str | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def resolve(flags: Mapping[str, str | None], name: str | None = None) -> Resolved:
    """Flags, then the environment, then the file's configuration `name`, for every key."""
    in_file = read(config_name(name))
    resolved = Resolved()
    for key in KEYS:
        for source, value in (
            ("flag", flags.get(key)),
            ("environment", os.environ.get(ENVIRONMENT[key])),
            ("file", in_file.get(key)),
        ):
            if value:
                resolved.values[key], resolved.sources[key] = value, source
                break
        else:
            resolved.values[key], resolved.sources[key] = None, "default"
    check({k: v for k, v in resolved.values.items() if v})
    return resolved


def from_outputs(path: Path, stack: str | None = None) -> dict[str, str]:
    """endpoint, auth (and region, api_key_id) from a ``cdk deploy --outputs-file`` JSON file: the stack
    named `stack`, or its only stack."""
    try:
        outputs: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the deploy outputs {path}: {error}") from None
    if not isinstance(outputs, dict) or not outputs:
        raise ConfigError(f"{path} holds no stack outputs (is it `make deploy`'s cdk-outputs.json?)")
    if stack is None:
        if len(outputs) != 1:
            raise ConfigError(f"{path} holds the stacks {', '.join(outputs)}: name one with --stack")
        stack = next(iter(outputs))
    if stack not in outputs:
        raise ConfigError(f"{path} has no stack {stack!r}; it has {', '.join(outputs)}")
    found = outputs[stack]
    if not isinstance(found, dict) or "ApiUrl" not in found:
        raise ConfigError(f"stack {stack!r} in {path} has no ApiUrl output: not a Harmonic stack?")
    settings = {"endpoint": str(found["ApiUrl"]).rstrip("/"), "auth": str(found.get("AuthMode", "iam"))}
    host = settings["endpoint"].split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    if len(parts) >= 4 and parts[1] == "execute-api":
        settings["region"] = parts[2]
    if found.get("ApiKeyId"):
        settings["api_key_id"] = str(found["ApiKeyId"])
    return settings
