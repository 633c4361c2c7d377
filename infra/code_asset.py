"""The functions' code asset: ``functions/`` without caches or tests, compiled to bytecode for the runtime.

Lambda's ``/var/task`` is read-only, so code shipped without its ``.pyc`` is compiled again at every cold
start (about 0.07 s of the handlers' import here). The asset is staged by local bundling (no Docker): the
sources are copied and, where an interpreter of the runtime's version is found
(``layer_build.bytecode_interpreter``), compiled as ``unchecked-hash`` pycs naming ``/var/task/...``, as the
layers are. The asset hash covers the sources and whether bytecode was added, so CDK uploads a new asset
exactly when either changes.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import FUNCTIONS_DIR
from infra.layer_build import bytecode_interpreter, bytecode_tag, compile_tree

# Never part of the code asset: the build machine's caches, test packages, desktop litter.
EXCLUDED_DIR_NAMES = frozenset({"__pycache__", ".pytest_cache", "tests"})
EXCLUDED_FILE_SUFFIXES = (".pyc", ".DS_Store")


def code_files() -> list[Path]:
    """The files of ``functions/`` the asset ships, sorted."""
    return [
        path
        for path in sorted(FUNCTIONS_DIR.rglob("*"))
        if path.is_file()
        and not EXCLUDED_DIR_NAMES.intersection(path.relative_to(FUNCTIONS_DIR).parts)
        and not path.name.endswith(EXCLUDED_FILE_SUFFIXES)
    ]


def code_key(runtime: str) -> str:
    """The asset hash: every shipped file's path and bytes, and the bytecode's cache tag (or none)."""
    digest = hashlib.sha256(f"code:{bytecode_tag(runtime)}".encode())
    for path in code_files():
        digest.update(path.relative_to(FUNCTIONS_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stage_code(output_dir: Path, runtime: str) -> None:
    """Copy the shipped files into `output_dir`; compile them for `runtime` where its interpreter exists."""
    for path in code_files():
        target = output_dir / path.relative_to(FUNCTIONS_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    interpreter = bytecode_interpreter(runtime)
    if interpreter is None:
        print(f"function code: no python{runtime} found, shipped without bytecode", file=sys.stderr)
    else:
        compile_tree(output_dir, interpreter, deployed_at="/var/task")


@jsii.implements(cdk.ILocalBundling)
class LocalCodeBundling:
    """Stages the functions' code (see the module docstring); never falls back to Docker."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    # jsii calls back with (output_dir, options) positionally (see infra.layer.LocalLayerBundling).
    def try_bundle(self, output_dir: str, options: Any = None, /, **_options: Any) -> bool:
        stage_code(Path(output_dir), self.runtime)
        return True


def code_asset(runtime: str) -> lambda_.Code:
    """The code every function runs, for Lambda Python `runtime` ("3.13")."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash=code_key(runtime),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            # Required by the API, never pulled: LocalCodeBundling.try_bundle returns True or raises.
            image=cdk.DockerImage.from_registry("local-bundling-only"),
            local=LocalCodeBundling(runtime),
        ),
    )
