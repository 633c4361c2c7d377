"""The client installs by itself: its wheel (built from client/ as `pip install ./client` builds it) goes
into a bare venv with no index and no other package, and gives a working `harmonic` command and library."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with only pip in it, and the client's wheel installed without any index."""
    base = tmp_path_factory.mktemp("client-package")
    wheels = base / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            wheels,
            ROOT / "client",
        ],
        check=True,
        cwd=base,
    )
    (wheel,) = wheels.glob("harmonic_client-*.whl")
    home = base / "venv"
    venv.create(home, with_pip=True, clear=True)
    subprocess.run(
        [home / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index", wheel],
        check=True,
        cwd=base,
    )
    return home


def _harmonic(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [home / "bin" / "harmonic", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.parent,
        env={"PATH": f"{home / 'bin'}:/usr/bin:/bin", "HOME": str(home.parent)},
    )


def test_the_command_runs_with_nothing_else_installed(bare_venv: Path) -> None:
    from harmonic_client import __version__

    version = _harmonic(bare_venv, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"harmonic {__version__}"
    assert _harmonic(bare_venv, "--help").returncode == 0
    # figures.json travels in the package: `choose` ranks offline
    ranking = _harmonic(bare_venv, "choose", "--json")
    assert ranking.returncode == 0, ranking.stderr
    assert {"pipeline", "events"} <= {r["architecture"] for r in json.loads(ranking.stdout)["ranking"]}
    # nothing listens: one line, exit code 3 (no botocore, numpy or the repository needed to get there)
    unreachable = _harmonic(bare_venv, "--endpoint", "http://127.0.0.1:9", "health")
    assert unreachable.returncode == 3
    assert unreachable.stderr.count("\n") == 1


def test_only_the_client_is_installed(bare_venv: Path) -> None:
    listed = subprocess.run(
        [bare_venv / "bin" / "python", "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "harmonic-client" in names
    assert not names & {"numpy", "botocore", "boto3", "matplotlib", "harmonic"}  # extras only
