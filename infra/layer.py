"""The Lambda layers, built locally (no Docker) through CDK's ILocalBundling.

- ``Harmonic``: numpy + scipy + soundfile + the ``harmonic`` package, nothing else.
- ``Deps``: Powertools (with the X-Ray tracer) and pydantic; boto3 comes with the runtime.
- ``Speech``: pocketsphinx and its en-us model, for ``harmonic.phonetic`` (keyword spotting by spelling or
  by example). Only with ``python_runtime`` 3.13 (pocketsphinx has no 3.12 wheel); with 3.12 there is no such
  layer, ``harmonic.phonetic.available()`` is False in the functions and keyword registrations are refused.

Every function gets every layer (``Layers.all``). The speech layer costs no cold start: pocketsphinx is
imported lazily, on the first keyword request. Together with the function code they stay under Lambda's
250 MB unzipped (``layer_build.LAMBDA_UNZIPPED_LIMIT_BYTES``; tests/infra/test_layer.py checks it).

The asset hash is the build's cache key (``infra.layer_build.layer_key``), so CDK and the build cache agree on
when a layer changed. The Docker image CDK insists on is a placeholder: local bundling always succeeds or
raises, so Docker is never started.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import layer_build
from infra.settings import Settings

ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
RUNTIMES = {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}


@jsii.implements(cdk.ILocalBundling)
class LocalLayerBundling:
    """Builds (or takes from build/layers/) one layer and stages its ``python/`` tree as the asset."""

    def __init__(self, name: str, architecture: str, runtime: str) -> None:
        self.name = name
        self.architecture = architecture
        self.runtime = runtime

    # jsii calls back with (output_dir, options) positionally, although the generated stub shows the
    # BundlingOptions fields as keyword arguments; accept both.
    def try_bundle(self, output_dir: str, options: Any = None, /, **_options: Any) -> bool:
        build = layer_build.build_layer(self.name, self.architecture, self.runtime, quiet=True)
        layer_build.stage_layer(build, Path(output_dir))
        print(build.summary(), file=sys.stderr)
        return True


class Layers(Construct):
    """The numpy/scipy/harmonic layer, the handlers' dependency layer and (Python 3.13) the speech layer, for
    one architecture and runtime."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self.architecture = ARCHITECTURES[settings.architecture]
        self.runtime = RUNTIMES[settings.python_runtime]
        self.harmonic = self._layer("Harmonic", "harmonic", settings)
        self.deps = self._layer("Deps", "deps", settings)
        # None where pocketsphinx has no wheel (python_runtime 3.12).
        self.speech: lambda_.LayerVersion | None = (
            self._layer("Speech", "speech", settings)
            if layer_build.available("speech", settings.python_runtime)
            else None
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        """Every layer, in the order the functions list them (all functions get all of them)."""
        return [self.harmonic, self.deps] + ([self.speech] if self.speech is not None else [])

    def _layer(self, construct_id: str, name: str, settings: Settings) -> lambda_.LayerVersion:
        source = layer_build.LAYERS[name]
        key = layer_build.layer_key(name, settings.architecture, settings.python_runtime)
        code = lambda_.Code.from_asset(
            str(source.requirements.parent),
            asset_hash=key,
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=cdk.BundlingOptions(
                # Required by the API, never pulled: LocalLayerBundling.try_bundle returns True or raises.
                image=cdk.DockerImage.from_registry("local-bundling-only"),
                local=LocalLayerBundling(name, settings.architecture, settings.python_runtime),
            ),
        )
        return lambda_.LayerVersion(
            self,
            construct_id,
            code=code,
            compatible_architectures=[self.architecture],
            compatible_runtimes=[self.runtime],
            description=f"Harmonic {name} layer: {source.description} (build {key[:12]})",
        )
