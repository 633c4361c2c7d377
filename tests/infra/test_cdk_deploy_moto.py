"""The pinned CDK CLI bootstraps, publishes and deploys the synthesized app into a moto server.

`test_moto_deploy` hands the template to moto's CloudFormation itself; here the real `cdk bootstrap`, `cdk
deploy` and `cdk destroy` (node_modules/.bin/cdk, on the `moto_assembly` cloud assembly: the app with
console=false, since moto models no CloudFront) talk to a `ThreadedMotoServer` through AWS_ENDPOINT_URL, so
the CLI's own steps are covered: the bootstrap stack, the asset build (directories zipped) and upload with the
manifest's keys, the bootstrap version check, the CloudFormation call with the template's S3 URL and RoleARN,
the outputs file, the teardown.

Two moto 5.2.5 limitations shape the commands, both for this test only (neither touches real AWS):

- The template URL. With the default synthesizer the CLI always passes the template as a TemplateURL
  (any size): `restUrlFromManifest` turns s3://bucket/key into `<S3 endpoint origin>/bucket/key`, and the
  origin honours AWS_ENDPOINT_URL, so moto receives http://127.0.0.1:PORT/cdk-hnb659fds-assets-.../<hash>.json.
  moto (cloudformation/utils.py `get_stack_from_s3_url`) reads the bucket from the path only when the URL
  contains "localhost" or the host is s3*.amazonaws.com; otherwise it takes the first label of the host as
  the bucket ("127") and fails with "The specified bucket does not exist". The CLI's
  AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION (the S3 endpoint it tells CloudFormation, aws/aws-cdk-cli#933) set to
  https://s3.<region>.amazonaws.com makes the URL the one real CloudFormation gets, which moto parses
  path-style (it only reads the object from its own S3, never fetches the URL).
  `test_without_the_override_the_template_url_names_moto_host` pins the failure.
- Change sets. moto creates a CREATE change set's resources in template order, ignoring DependsOn
  (parsing.py `ResourceMap.update`; CreateStack uses dependency order), so executing it fails on the API's
  Deployment, which the template lists before the Methods it DependsOn ("The REST API doesn't contain any
  methods", returned as a JSON body the CLI's XML parser rejects). `cdk deploy` therefore runs with
  `--method=direct` (CreateStack); the change-set path is covered up to its creation with
  `--method=prepare-change-set`. (The same moto code leaves a change-set-created stack without Outputs, so
  the bootstrap stack has none; the CLI logs BootstrapVersionNotFound and goes on, it reads the version from
  SSM.)

What moto does not model in the stack itself (skipped types, ignored properties) is listed in
test_moto_deploy, which asserts on the deployed resources in detail.

The five CLI runs take about 17 s on two cores (the first deploy, which zips and uploads the 146 MiB layer,
about 8 s), on top of the session's `moto_assembly` synth.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from harmonic_service.stages import API_HANDLER
from infra import REPO_ROOT
from infra.stack import STACK_NAME
from tests.infra.conftest import CLI_ENV

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
QUALIFIER = "hnb659fds"
ASSET_BUCKET = f"cdk-{QUALIFIER}-assets-{ACCOUNT}-{REGION}"
VERSION_PARAMETER = f"/cdk-bootstrap/{QUALIFIER}/version"
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
CHANGE_SET = "cdk-review"
CLI_TIMEOUT_S = 600


@dataclass
class Run:
    """What the CLI did against the moto server, with what the service APIs said right after each step."""

    endpoint: str
    assembly: Path
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str, **config: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config) if config else None,
        )


def _link_tree(source: Path, target: Path) -> None:
    """A copy of the cloud assembly made of hard links (the CLI writes its zips into <assembly>/.cache, and
    the session's `moto_assembly` is shared with the other infra tests)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def _cli_env(endpoint: str, home: Path, s3_for_cloudformation: bool) -> dict[str, str]:
    # Nothing of the caller's AWS or CDK setup (profiles, config files, endpoints, the account cache in
    # ~/.cdk) reaches the CLI: HOME is a temporary directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(CLI_ENV)
    env.update(
        HOME=str(home),
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    if s3_for_cloudformation:
        env["AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION"] = f"https://s3.{REGION}.amazonaws.com"
    return env


def _reset(endpoint: str) -> None:
    # The server runs moto's in-process backends, which mock_aws in other modules uses too.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)


@pytest.fixture(scope="module")
def run(moto_assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """bootstrap; deploy --method=direct; destroy; deploy --method=prepare-change-set without and with the
    template-URL override. Every step runs once; the tests read the recorded results."""
    work = tmp_path_factory.mktemp("cdk-deploy-moto")
    assembly = work / "cdk.out"
    _link_tree(moto_assembly, assembly)
    (work / "home").mkdir()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MOTO_PORT", str(port))
            _reset(endpoint)
            result = Run(endpoint=endpoint, assembly=assembly)
            cloudformation = result.client("cloudformation")

            def cdk(step: str, *args: str, s3_for_cloudformation: bool = True) -> None:
                started = time.monotonic()
                result.steps[step] = subprocess.run(
                    [str(CDK), *args, "--app", str(assembly), "--no-notices"],
                    cwd=work,
                    env=_cli_env(endpoint, work / "home", s3_for_cloudformation),
                    capture_output=True,
                    text=True,
                    timeout=CLI_TIMEOUT_S,
                    check=False,
                )
                result.seconds[step] = time.monotonic() - started

            cdk("bootstrap", "bootstrap", f"aws://{ACCOUNT}/{REGION}")
            cdk(
                "deploy",
                "deploy",
                STACK_NAME,
                "--method=direct",
                "-vvv",  # the SDK calls with their parameters, on stderr (stdout under CI=true)
                "--require-approval=never",
                "--outputs-file",
                str(work / "outputs.json"),
            )
            if result.steps["deploy"].returncode == 0:
                (stack,) = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
                result.facts["stack"] = stack
                result.facts["template"] = cloudformation.get_template(StackName=STACK_NAME)["TemplateBody"]
                result.facts["outputs_file"] = json.loads((work / "outputs.json").read_text())
                result.facts["functions"] = result.client("lambda").list_functions()["Functions"]
            cdk("destroy", "destroy", STACK_NAME, "--force")
            result.facts["after_destroy"] = cloudformation.list_stacks()["StackSummaries"]
            # With no stack, as on a first deploy (an existing one makes the CLI call DeleteChangeSet first,
            # which moto 5.2.5 answers with a 500 the SDK retries for a minute).
            cdk(
                "unfixed",
                "deploy",
                STACK_NAME,
                "--method=prepare-change-set",
                "--require-approval=never",
                "-vvv",
                s3_for_cloudformation=False,
            )
            cdk(
                "prepare",
                "deploy",
                STACK_NAME,
                "--method=prepare-change-set",
                f"--change-set-name={CHANGE_SET}",
                "--require-approval=never",
            )
            print("cdk step seconds:", {step: round(s, 1) for step, s in result.seconds.items()})
            yield result
            _reset(endpoint)
    finally:
        server.stop()


def _ok(run: Run, step: str) -> subprocess.CompletedProcess[str]:
    completed = run.steps[step]
    assert completed.returncode == 0, f"cdk {step} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def _sdk_call(completed: subprocess.CompletedProcess[str], operation: str) -> tuple[dict[str, Any], str]:
    """(parameters, outcome) of the SDK call `operation` (e.g. "CloudFormation.CreateStack") as the CLI logs
    it with -vvv: `[hh:mm:ss] [SDK info] CloudFormation.CreateStack({...}) -> OK`. The log goes to stderr,
    or to stdout when CI is set in the environment (as on the project's CI machine), so both are read."""
    pattern = re.compile(rf"\[SDK \w+\] {re.escape(operation)}\((\{{.*\}})\) -> (.*)$")
    lines = (completed.stderr + "\n" + completed.stdout).splitlines()
    (found,) = [m for line in lines if (m := pattern.search(line))]
    return json.loads(found.group(1)), found.group(2)


def _template_key(run: Run) -> str:
    (key,) = [
        destination["objectKey"]
        for asset in _manifest(run)["files"].values()
        if asset["source"]["path"] == f"{STACK_NAME}.template.json"
        for destination in asset["destinations"].values()
    ]
    return key


def _manifest(run: Run) -> dict[str, Any]:
    return json.loads((run.assembly / f"{STACK_NAME}.assets.json").read_text())


def _template(run: Run) -> dict[str, Any]:
    return json.loads((run.assembly / f"{STACK_NAME}.template.json").read_text())


def _resolve(text: str) -> str:
    return text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)


def test_bootstrap_creates_the_toolkit_stack_bucket_roles_and_version(run: Run) -> None:
    _ok(run, "bootstrap")
    cloudformation = run.client("cloudformation")
    (toolkit,) = cloudformation.describe_stacks(StackName="CDKToolkit")["Stacks"]
    assert toolkit["StackStatus"] == "CREATE_COMPLETE"
    assert ASSET_BUCKET in {b["Name"] for b in run.client("s3").list_buckets()["Buckets"]}
    version = int(run.client("ssm").get_parameter(Name=VERSION_PARAMETER)["Parameter"]["Value"])
    manifest = json.loads((run.assembly / "manifest.json").read_text())
    required = manifest["artifacts"][STACK_NAME]["properties"]["requiresBootstrapStackVersion"]
    assert version >= required
    roles = {r["RoleName"] for r in run.client("iam").list_roles()["Roles"]}
    assert {
        f"cdk-{QUALIFIER}-{role}-role-{ACCOUNT}-{REGION}"
        for role in ("deploy", "cfn-exec", "file-publishing", "image-publishing", "lookup")
    } <= roles


def test_every_file_asset_is_published_under_the_manifests_key(run: Run) -> None:
    _ok(run, "deploy")
    s3 = run.client("s3", request_checksum_calculation="when_required")
    files = _manifest(run)["files"]
    assert files
    for asset_id, asset in files.items():
        source = run.assembly / asset["source"]["path"]
        for destination in asset["destinations"].values():
            assert destination["objectKey"].startswith(asset_id)
            body = s3.get_object(Bucket=_resolve(destination["bucketName"]), Key=destination["objectKey"])[
                "Body"
            ].read()
            if asset["source"]["packaging"] == "file":
                # the template: its asset id is the hash of its content
                assert body == source.read_bytes()
                assert hashlib.sha256(body).hexdigest() == asset_id
                continue
            assert asset["source"]["packaging"] == "zip"
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                zipped = {
                    info.filename: (info.file_size, info.CRC)
                    for info in archive.infolist()
                    if not info.is_dir()
                }
            local = {
                path.relative_to(source).as_posix(): (path.stat().st_size, zlib.crc32(path.read_bytes()))
                for path in source.rglob("*")
                if path.is_file()
            }
            assert zipped == local, asset["displayName"]


def test_deploy_creates_the_stack_from_the_published_template(run: Run) -> None:
    completed = _ok(run, "deploy")
    stack = run.facts["stack"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["StackId"] in completed.stdout.split()  # the CLI prints the stack's ARN on stdout
    # as the default synthesizer asks: CloudFormation acts with the bootstrap's execution role
    exec_role = f"arn:aws:iam::{ACCOUNT}:role/cdk-{QUALIFIER}-cfn-exec-role-{ACCOUNT}-{REGION}"
    assert stack["RoleARN"] == exec_role
    # the URL real CloudFormation would be given (path style, regional), which moto reads from its own S3
    call, outcome = _sdk_call(completed, "CloudFormation.CreateStack")
    assert call["TemplateURL"] == f"https://s3.{REGION}.amazonaws.com/{ASSET_BUCKET}/{_template_key(run)}"
    assert call["RoleARN"] == exec_role
    assert outcome == "OK"
    assert run.facts["template"] == _template(run)


def test_deploy_writes_every_output(run: Run) -> None:
    _ok(run, "deploy")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in run.facts["stack"]["Outputs"]}
    assert set(outputs) == set(_template(run)["Outputs"])
    assert run.facts["outputs_file"] == {STACK_NAME: outputs}  # what `make deploy` hands `harmonic configure`
    assert outputs["ApiUrl"].startswith("https://")
    assert outputs["AuthMode"] == "iam"
    assert outputs["Orchestration"] == "pipeline,statemachine,events"


def test_deploy_creates_the_functions(run: Run) -> None:
    _ok(run, "deploy")
    functions = run.facts["functions"]
    declared = [r for r in _template(run)["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == len(declared)
    (api,) = [f for f in functions if f["Handler"] == API_HANDLER]
    assert api["Runtime"] == "python3.13"


def test_destroy_deletes_the_stack(run: Run) -> None:
    _ok(run, "destroy")
    statuses = {s["StackName"]: s["StackStatus"] for s in run.facts["after_destroy"]}
    assert statuses == {"CDKToolkit": "CREATE_COMPLETE", STACK_NAME: "DELETE_COMPLETE"}


def test_without_the_override_the_template_url_names_moto_host(run: Run) -> None:
    """The CLI passes http://127.0.0.1:PORT/<bucket>/<key>; moto reads the bucket "127" from the host."""
    completed = run.steps["unfixed"]
    assert completed.returncode != 0
    call, outcome = _sdk_call(completed, "CloudFormation.CreateChangeSet")
    assert call["TemplateURL"] == f"{run.endpoint}/{ASSET_BUCKET}/{_template_key(run)}"
    assert outcome == "NoSuchBucket: The specified bucket does not exist"


def test_prepare_change_set_adds_every_resource(run: Run) -> None:
    _ok(run, "prepare")
    change_set = run.client("cloudformation").describe_change_set(
        StackName=STACK_NAME, ChangeSetName=CHANGE_SET
    )
    assert change_set["Status"] == "CREATE_COMPLETE"
    assert change_set["ExecutionStatus"] == "AVAILABLE"
    changes = [c["ResourceChange"] for c in change_set["Changes"]]
    assert {c["Action"] for c in changes} == {"Add"}
    assert {c["LogicalResourceId"] for c in changes} == set(_template(run)["Resources"])
