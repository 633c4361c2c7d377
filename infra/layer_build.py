"""Build the Lambda layers locally, without Docker, and cache them under build/layers/.

Three layers:

- ``harmonic``: numpy + scipy + soundfile (``layers/harmonic/requirements.txt``) and the ``harmonic`` DSP
  package (``layers/harmonic/python/harmonic``), nothing else;
- ``deps``: the handlers' other runtime dependencies (``layers/deps/requirements.txt``: Powertools with the
  X-Ray tracer, pydantic) without what the Lambda Python runtime already ships (boto3, botocore and theirs);
- ``speech``: PocketSphinx (``layers/speech/requirements.txt``) for ``harmonic.phonetic``'s keyword spotting,
  without its dependency ``sounddevice`` (microphone input, never imported) and without the word language
  model ``en-us.lm.bin`` (never loaded). pocketsphinx has wheels for CPython 3.13 but none for 3.12, so this
  layer exists for runtime 3.13 only (``LayerSource.runtimes``; ``available``).

Wheels are fetched for the *Lambda* platform (``pip install --platform manylinux_2_28_<arch>
--platform manylinux2014_<arch> --implementation cp --python-version 3.13 --only-binary=:all:``), so the build
runs on any machine with pip and network access to the package index. Lambda's Python 3.12 and 3.13
runtimes run on Amazon Linux 2023 (glibc 2.34), so ``manylinux_2_28`` wheels (numpy >= 2.3 ships only those)
load there.

The result is trimmed (``tests`` packages, the build machine's ``__pycache__``, stubs, C/Cython sources and
headers, console scripts, and the layer's own ``remove_paths``), compiled to bytecode for the runtime (see
below), measured (unzipped and zipped size, printed) and rejected
when it exceeds ``MAX_LAYER_BYTES`` unzipped. A build is cached under a key that hashes everything it depends
on (requirements, constraints, the harmonic sources, the layer's recipe: ``no_deps``, ``remove_paths``,
``remove_distributions``; the architecture, the runtime and ``BUILD_FORMAT``), so repeated synths and tests
reuse it; the key is also the source of the asset hash CDK uses for the layer. The pip-installed part is
cached on its own, so editing the harmonic package only re-copies the package.

**Bytecode.** A layer is read-only in Lambda, so a module without its ``.pyc`` is compiled again at every
cold start: without bytecode, importing the API handler's modules took 0.92 s here instead of 0.40 s, a stage
handler's up to 2.0 s instead of 0.8 s (`make bench` (b), 2026-12-01; docs/infra.md "Bytecode"). The build
therefore compiles the layer with an interpreter of the *runtime's* version (bytecode is specific to a minor
version: ``cpython-313``), found on PATH (``python3.13``) or under pyenv (``$PYENV_ROOT/versions/3.13.*``), as
``unchecked-hash`` pycs (valid whatever the files' times in the zip) whose tracebacks name
``/opt/python/...``. Where no such interpreter is found the layer is built without bytecode, as before, and
the build says so; the cache key records which of the two a build is.

Command line (``make layer``; ``--layer all`` builds the layers the runtime has)::

    python -m infra.layer_build --layer all --architecture arm64 --runtime 3.13
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = REPO_ROOT / "build" / "layers"

# Bump when the build or trim rules change, so that cached builds are redone.
BUILD_FORMAT = 2

# One layer, unzipped (the numpy/scipy layer with its bytecode and Whisper's int8 encoder is ~186 MiB). Lambda
# allows 250 MB unzipped for a function and all its layers together (LAMBDA_UNZIPPED_LIMIT_BYTES), the limit
# that matters.
MAX_LAYER_BYTES = 192 * 1024 * 1024
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024

PIP_ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
# The Lambda Python runtimes a layer can be built for (infra/settings.py PYTHON_RUNTIMES: python_runtime).
RUNTIMES = ("3.12", "3.13")
DEFAULT_RUNTIME = "3.13"

# Distributions the Lambda Python runtime provides (boto3 and its dependency closure): never in a layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")

# Removed from every layer before it is compiled for its runtime: test suites, bytecode compiled by the build
# machine's Python (useless on another version), typing stubs, Cython/C sources and headers and static
# libraries (only a compiler reads them), and console scripts whose shebang points at the build machine.
TRIM_DIR_NAMES = frozenset({"tests", "__pycache__"})
TRIM_SUFFIXES = (".pyi", ".pxd", ".pyx", ".pyc", ".c", ".h", ".a")
TRIM_TOP_LEVEL = ("bin",)


@dataclass(frozen=True)
class LayerSource:
    """What goes into one layer."""

    name: str
    description: str
    requirements: Path
    # Local packages copied into python/ (import name -> source directory).
    packages: tuple[tuple[str, Path], ...] = ()
    constraints: Path | None = None
    remove_distributions: tuple[str, ...] = ()
    # pip install --no-deps: only what the requirements file names (their dependencies are not wanted).
    no_deps: bool = False
    # Files or directories (relative to python/) deleted after the install; each must exist, so that a wheel
    # which moved one is noticed instead of silently shipping it.
    remove_paths: tuple[str, ...] = ()
    # The runtimes the layer can be built for (its wheels exist); build_layer refuses the others.
    runtimes: tuple[str, ...] = RUNTIMES

    def recipe(self) -> dict[str, object]:
        """How the layer's files are installed and trimmed: part of its cache key."""
        return {
            "no_deps": self.no_deps,
            "remove_paths": list(self.remove_paths),
            "remove_distributions": list(self.remove_distributions),
        }


LAYERS: dict[str, LayerSource] = {
    "harmonic": LayerSource(
        name="harmonic",
        description="numpy + scipy + the harmonic DSP package",
        requirements=REPO_ROOT / "layers" / "harmonic" / "requirements.txt",
        packages=(("harmonic", REPO_ROOT / "layers" / "harmonic" / "python" / "harmonic"),),
    ),
    "deps": LayerSource(
        name="deps",
        description="aws-lambda-powertools[tracer] + pydantic (boto3 comes with the runtime)",
        requirements=REPO_ROOT / "layers" / "deps" / "requirements.txt",
        constraints=REPO_ROOT / "requirements-lock.txt",
        remove_distributions=RUNTIME_PROVIDED,
    ),
    "speech": LayerSource(
        name="speech",
        description="pocketsphinx (en-us acoustic model, cmudict, phone LM), DeepFilterNet3, eSpeak NG",
        requirements=REPO_ROOT / "layers" / "speech" / "requirements.txt",
        # sounddevice (microphone input, pocketsphinx.LiveSpeech) is never imported by harmonic.phonetic.
        no_deps=True,
        # The 26 MB word language model: harmonic.phonetic passes lm=None and never loads it.
        # eSpeak NG's Russian and Mandarin dictionaries (9.9 MB): harmonic.synthesis speaks English only.
        remove_paths=(
            "pocketsphinx/model/en-us/en-us.lm.bin",
            "espeakng_loader/espeak-ng-data/ru_dict",
            "espeakng_loader/espeak-ng-data/cmn_dict",
        ),
        # pocketsphinx 5.1.1 has CPython 3.11 and 3.13 wheels, none for 3.12.
        runtimes=("3.13",),
    ),
}


class LayerTooLargeError(RuntimeError):
    """The built layer exceeds MAX_LAYER_BYTES unzipped."""


class LayerUnavailableError(ValueError):
    """The layer cannot be built for the runtime asked for (its wheels do not exist there)."""


@dataclass(frozen=True)
class LayerBuild:
    """A finished, cached layer build: ``directory/python`` is the layer's content."""

    name: str
    architecture: str
    runtime: str
    key: str
    directory: Path
    unzipped_bytes: int
    zipped_bytes: int
    distributions: tuple[str, ...]
    # The bytecode's cache tag ("cpython-313"); None: no interpreter of the runtime's version was found.
    bytecode: str | None = None

    @property
    def content(self) -> Path:
        return self.directory / "python"

    def summary(self) -> str:
        return (
            f"layer {self.name} ({self.architecture}, python{self.runtime}): "
            f"{self.unzipped_bytes / 2**20:.1f} MiB unzipped, {self.zipped_bytes / 2**20:.1f} MiB zipped "
            f"(limit {MAX_LAYER_BYTES / 2**20:.0f} MiB unzipped); "
            f"bytecode {self.bytecode or 'none (no python' + self.runtime + ' found)'}; "
            f"{', '.join(self.distributions)}"
        )


def _dependency_files(source: LayerSource) -> list[Path]:
    return [source.requirements] + ([source.constraints] if source.constraints is not None else [])


def _package_files(source: LayerSource) -> list[Path]:
    files: list[Path] = []
    for _, package_dir in source.packages:
        files.extend(
            path
            for path in sorted(package_dir.rglob("*"))
            if path.is_file() and not _trimmed(path.relative_to(package_dir))
        )
    return files


def _hash(
    source: LayerSource, architecture: str, runtime: str, files: list[Path], *, bytecode: str | None = None
) -> str:
    digest = hashlib.sha256()
    head: list[object] = [BUILD_FORMAT, source.name, architecture, runtime, source.recipe()]
    if bytecode is not None:  # pip's part (no bytecode) keeps its key; a layer with bytecode gets another
        head.append(bytecode)
    digest.update(json.dumps(head, sort_keys=True).encode())
    for path in files:
        digest.update(os.path.relpath(path, REPO_ROOT).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def layer_key(name: str, architecture: str, runtime: str) -> str:
    """The cache key (and CDK asset hash) of a layer: a hash of everything the build depends on."""
    source = _layer(name)
    _check_target(architecture, runtime)
    if runtime not in source.runtimes:
        raise LayerUnavailableError(
            f"layer {name!r} cannot be built for Python {runtime}: of the Lambda runtimes, its wheels "
            f"({os.path.relpath(source.requirements, REPO_ROOT)}) exist for Python "
            f"{' and '.join(source.runtimes)} only. Set the setting python_runtime to {source.runtimes[-1]} "
            f"(cdk.json context, or -c python_runtime={source.runtimes[-1]}); with python_runtime {runtime} "
            "the stack has no such layer (infra/layer.py)"
        )
    files = _dependency_files(source) + _package_files(source)
    return _hash(source, architecture, runtime, files, bytecode=bytecode_tag(runtime))


def available(name: str, runtime: str) -> bool:
    """Whether layer `name` exists for Python `runtime` (the speech layer: 3.13 only)."""
    return runtime in _layer(name).runtimes


@dataclass(frozen=True)
class _Dependencies:
    """The pip-installed, trimmed part of a layer, cached on its own (editing harmonic does not reinstall)."""

    directory: Path
    unzipped_bytes: int
    zipped_bytes: int


def _install_dependencies(source: LayerSource, architecture: str, runtime: str) -> _Dependencies:
    key = _hash(source, architecture, runtime, _dependency_files(source))
    prefix = f"{source.name}-{architecture}-py{runtime}-"
    directory = BUILD_ROOT / "pip" / f"{prefix}{key[:16]}"
    manifest = directory / "sizes.json"
    if not manifest.is_file():
        staging = BUILD_ROOT / "pip" / f".tmp-{prefix}{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        content = staging / "python"
        content.mkdir(parents=True)
        _pip_install(source, architecture, runtime, content)
        for distribution in source.remove_distributions:
            _remove_distribution(content, distribution)
        _remove_paths(source, content)
        _trim(content)
        sizes = {"unzipped_bytes": _tree_bytes(content), "zipped_bytes": _zipped_bytes(content)}
        (staging / "sizes.json").write_text(json.dumps(sizes))
        _publish(staging, directory, prefix)
    sizes = json.loads(manifest.read_text())
    return _Dependencies(directory / "python", sizes["unzipped_bytes"], sizes["zipped_bytes"])


def _publish(staging: Path, directory: Path, prefix: str) -> None:
    """Move a finished build into place atomically and drop older builds of the same layer and target."""
    try:
        staging.rename(directory)
    except OSError:
        # A concurrent build of the same key won the race; its result is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
        if not directory.is_dir():
            raise
    for old in directory.parent.glob(f"{prefix}*"):
        if old != directory:
            shutil.rmtree(old, ignore_errors=True)


def build_layer(
    name: str, architecture: str = "arm64", runtime: str = DEFAULT_RUNTIME, *, quiet: bool = False
) -> LayerBuild:
    """Build (or reuse the cached build of) layer `name` for Lambda `architecture` and Python `runtime`."""
    source = _layer(name)
    key = layer_key(name, architecture, runtime)
    prefix = f"{name}-{architecture}-py{runtime}-"
    directory = BUILD_ROOT / f"{prefix}{key[:16]}"
    cached = _load(directory)
    if cached is not None:
        return cached

    started = time.monotonic()
    dependencies = _install_dependencies(source, architecture, runtime)
    staging = BUILD_ROOT / f".tmp-{prefix}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    content = staging / "python"
    _link_tree(dependencies.directory, content)
    packages = staging / "packages"
    for import_name, package_dir in source.packages:
        shutil.copytree(
            package_dir, packages / import_name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    if packages.exists():
        _trim(packages)
        unzipped = dependencies.unzipped_bytes + _tree_bytes(packages)
        zipped = dependencies.zipped_bytes + _zipped_bytes(packages)
        for package in packages.iterdir():
            package.rename(content / package.name)
        packages.rmdir()
    else:
        unzipped, zipped = dependencies.unzipped_bytes, dependencies.zipped_bytes
    interpreter = bytecode_interpreter(runtime)
    if interpreter is not None:
        pycs = compile_tree(content, interpreter)
        unzipped += sum(path.stat().st_size for path in pycs)
        zipped += _zipped_bytes(content, pycs)
    elif not quiet:
        print(
            f"layer {name}: no python{runtime} interpreter found (PATH, pyenv): built without bytecode, so "
            "every cold start compiles its modules",
            file=sys.stderr,
        )

    distributions = tuple(sorted(p.name.removesuffix(".dist-info") for p in content.glob("*.dist-info")))
    build = LayerBuild(
        name, architecture, runtime, key, directory, unzipped, zipped, distributions, bytecode_tag(runtime)
    )
    if unzipped > MAX_LAYER_BYTES:
        shutil.rmtree(staging, ignore_errors=True)
        raise LayerTooLargeError(f"{build.summary()}: over the limit; trim it or split it")
    (staging / "manifest.json").write_text(
        json.dumps(
            {
                "name": name,
                "architecture": architecture,
                "runtime": runtime,
                "key": key,
                "unzipped_bytes": unzipped,
                "zipped_bytes": zipped,
                "distributions": list(distributions),
                "bytecode": build.bytecode,
            },
            indent=2,
        )
    )
    _publish(staging, directory, prefix)
    if not quiet:
        print(f"{build.summary()} [built in {time.monotonic() - started:.1f} s]", file=sys.stderr)
    return build


def _cache_tag(runtime: str) -> str:
    """CPython's bytecode cache tag for a Lambda Python runtime ("3.13" -> "cpython-313")."""
    return f"cpython-{runtime.replace('.', '')}"


@cache
def bytecode_interpreter(runtime: str) -> str | None:
    """A CPython of the runtime's minor version on this machine (PATH, then pyenv), or None."""
    wanted = _cache_tag(runtime)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{runtime}")]
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{runtime}.*/bin/python{runtime}"))]
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == wanted:
            return candidate
    return None


def bytecode_tag(runtime: str) -> str | None:
    """The cache tag of the bytecode a layer for `runtime` gets here ("cpython-313"), or None: none."""
    return _cache_tag(runtime) if bytecode_interpreter(runtime) else None


def compile_tree(content: Path, interpreter: str, *, deployed_at: str = "/opt/python") -> list[Path]:
    """Compile every module under `content` with `interpreter`: unchecked-hash pycs whose tracebacks name
    the path the tree has in Lambda (`deployed_at`: a layer's ``/opt/python``). Returns the pycs written."""
    command = [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(content),
        "-p",
        deployed_at,
        str(content),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"compiling {content} to bytecode failed:\n{' '.join(command)}\n{result.stdout}{result.stderr}"
        )
    return sorted(content.rglob("*.pyc"))


def _link_tree(source: Path, target: Path) -> None:
    """Copy a tree with hard links where the filesystem allows (cached builds are never modified)."""
    try:
        shutil.copytree(source, target, copy_function=os.link)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


def stage_layer(build: LayerBuild, output_dir: Path) -> None:
    """Put the layer's ``python/`` tree into `output_dir` (hard links if possible; builds never change)."""
    target = Path(output_dir) / "python"
    shutil.rmtree(target, ignore_errors=True)
    _link_tree(build.content, target)


def _layer(name: str) -> LayerSource:
    try:
        return LAYERS[name]
    except KeyError:
        raise ValueError(f"unknown layer {name!r}; layers are {', '.join(LAYERS)}") from None


def _check_target(architecture: str, runtime: str) -> None:
    if architecture not in PIP_ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(PIP_ARCHITECTURES)}, got {architecture!r}")
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")


def _load(directory: Path) -> LayerBuild | None:
    manifest = directory / "manifest.json"
    if not manifest.is_file() or not (directory / "python").is_dir():
        return None
    data = json.loads(manifest.read_text())
    return LayerBuild(
        name=data["name"],
        architecture=data["architecture"],
        runtime=data["runtime"],
        key=data["key"],
        directory=directory,
        unzipped_bytes=data["unzipped_bytes"],
        zipped_bytes=data["zipped_bytes"],
        distributions=tuple(data["distributions"]),
        bytecode=data.get("bytecode"),
    )


def _pip_install(source: LayerSource, architecture: str, runtime: str, target: Path) -> None:
    machine = PIP_ARCHITECTURES[architecture]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        f"manylinux_2_28_{machine}",
        "--platform",
        f"manylinux2014_{machine}",
        "--implementation",
        "cp",
        "--python-version",
        runtime,
        "--only-binary=:all:",
        "--target",
        str(target),
        "-r",
        str(source.requirements),
    ]
    if source.constraints is not None:
        command += ["-c", str(source.constraints)]
    if source.no_deps:
        command.append("--no-deps")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"building layer {source.name}: pip install failed ({result.returncode}):\n"
            f"{' '.join(command)}\n{result.stdout}{result.stderr}"
        )


def _normalize(distribution: str) -> str:
    return distribution.lower().replace("-", "_").replace(".", "_")


def _remove_distribution(content: Path, distribution: str) -> None:
    """Delete every file an installed distribution's RECORD lists, then its now-empty directories."""
    wanted = _normalize(distribution)
    for dist_info in content.glob("*.dist-info"):
        if _normalize(dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]) != wanted:
            continue
        record = dist_info / "RECORD"
        directories: set[Path] = set()
        for line in record.read_text().splitlines():
            relative = line.rsplit(",", 2)[0]
            if not relative:
                continue
            path = (content / relative).resolve()
            if content.resolve() not in path.parents:
                continue  # e.g. ../../bin/script: outside the layer
            path.unlink(missing_ok=True)
            directories.update(p for p in path.parents if content.resolve() in p.parents)
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            shutil.rmtree(directory / "__pycache__", ignore_errors=True)
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        shutil.rmtree(dist_info, ignore_errors=True)


def _remove_paths(source: LayerSource, content: Path) -> None:
    """Delete the layer's ``remove_paths`` from the installed tree; a path that is not there is an error."""
    root = content.resolve()
    for relative in source.remove_paths:
        path = (content / relative).resolve()
        if root not in path.parents:
            raise ValueError(f"layer {source.name}: remove_paths entry {relative!r} is outside the layer")
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()
        else:
            raise RuntimeError(
                f"layer {source.name}: {relative} is not in the installed tree (did the wheel change?); "
                "update remove_paths in infra/layer_build.py"
            )


def _trimmed(relative: Path) -> bool:
    return any(part in TRIM_DIR_NAMES for part in relative.parts) or relative.name.endswith(TRIM_SUFFIXES)


def _trim(content: Path) -> None:
    for name in TRIM_TOP_LEVEL:
        shutil.rmtree(content / name, ignore_errors=True)
    for directory in sorted(content.rglob("*"), key=lambda p: len(p.parts)):
        if directory.is_dir() and directory.name in TRIM_DIR_NAMES:
            shutil.rmtree(directory, ignore_errors=True)
    for path in content.rglob("*"):
        if path.is_file() and path.name.endswith(TRIM_SUFFIXES):
            path.unlink()


def _tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


class _CountingSink:
    """A write-only stream that only counts bytes (the zip size without writing the zip)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def _zipped_bytes(content: Path, files: list[Path] | None = None) -> int:
    """Size of a zip of `content` (deflate level 6), or of only `files` under it; the layer's is the sum over
    its parts, within bytes."""
    sink = _CountingSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:  # type: ignore[arg-type]
        for path in sorted(content.rglob("*")) if files is None else files:
            if path.is_file():
                archive.write(path, Path("python") / path.relative_to(content))
    return sink.size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", choices=[*LAYERS, "all"], default="all")
    parser.add_argument("--architecture", choices=list(PIP_ARCHITECTURES), default="arm64")
    parser.add_argument("--runtime", choices=list(RUNTIMES), default=DEFAULT_RUNTIME)
    args = parser.parse_args(argv)
    if args.layer == "all":
        names = [name for name in LAYERS if available(name, args.runtime)]
        for name in LAYERS:
            if name not in names:
                runtimes = ", ".join(LAYERS[name].runtimes)
                print(f"layer {name}: none for python{args.runtime} (its wheels exist for {runtimes})")
    else:
        names = [args.layer]
    total = 0
    for name in names:
        try:
            build = build_layer(name, args.architecture, args.runtime, quiet=True)
        except LayerUnavailableError as error:
            parser.error(str(error))
        total += build.unzipped_bytes
        print(build.summary())
        print(f"  -> {build.content.relative_to(REPO_ROOT)}")
    if len(names) > 1:
        print(
            f"layers together: {total / 2**20:.1f} MiB unzipped, every function has them all "
            f"(a function and its layers may hold {LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
