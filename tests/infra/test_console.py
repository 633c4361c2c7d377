"""The deployable console: a private bucket that only the distribution reads (origin access control),
CloudFront with HTTPS and a strict Content-Security-Policy, the files and a config.json naming the API, and
CORS on the API for the console's origin only. `console=false` deploys none of it."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import ref_id, resources


def _console_bucket(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, props)
        for logical_id, props in resources(template, "AWS::S3::Bucket").items()
        if props.get("LoggingConfiguration", {}).get("LogFilePrefix") == "console-bucket/"
    ]
    return found


def _distribution(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((logical_id, props),) = resources(template, "AWS::CloudFront::Distribution").items()
    return logical_id, props["DistributionConfig"]


def test_the_bucket_is_private_and_only_the_distribution_reads_it(template: dict[str, Any]) -> None:
    bucket_id, bucket = _console_bucket(template)
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    distribution_id, _ = _distribution(template)
    (policy,) = [
        p for p in resources(template, "AWS::S3::BucketPolicy").values() if ref_id(p["Bucket"]) == bucket_id
    ]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    (read,) = allows
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    assert distribution_id in json.dumps(read["Condition"])  # this distribution's ARN, no other
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_the_distribution_serves_over_https_with_origin_access_control(template: dict[str, Any]) -> None:
    _, config = _distribution(template)
    assert config["DefaultRootObject"] == "index.html"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    (origin,) = config["Origins"]
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy identity
    assert len(resources(template, "AWS::CloudFront::OriginAccessControl")) == 1


def test_the_content_security_policy_allows_the_console_and_the_api_only(template: dict[str, Any]) -> None:
    ((_, policy),) = resources(template, "AWS::CloudFront::ResponseHeadersPolicy").items()
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'"):
        assert directive in csp
    assert "connect-src 'self' https://*.execute-api." in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 365 * 86_400


def test_the_files_and_a_config_naming_the_api_are_deployed(template: dict[str, Any]) -> None:
    (deployment,) = resources(template, "Custom::CDKBucketDeployment").values()
    assert len(deployment["SourceObjectKeys"]) == 2  # console/ and config.json
    assert deployment["DistributionPaths"] == ["/*"]
    assert deployment["RetainOnDelete"] is False
    (rest_api_id,) = resources(template, "AWS::ApiGateway::RestApi")
    markers = json.dumps(deployment["SourceMarkers"])
    assert rest_api_id in markers  # config.json's api_url is this API's URL
    outputs = template["Outputs"]
    assert "ConsoleUrl" in outputs
    assert _distribution(template)[0] in json.dumps(outputs["ConsoleUrl"]["Value"])


def _preflight_origins(template: dict[str, Any]) -> list[str]:
    return [
        json.dumps(response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"])
        for props in resources(template, "AWS::ApiGateway::Method").values()
        if props["HttpMethod"] == "OPTIONS"
        for response in props["Integration"]["IntegrationResponses"]
    ]


def _cors_env(template: dict[str, Any]) -> list[Any]:
    return [
        props["Environment"]["Variables"]["CORS_ALLOW_ORIGIN"]
        for props in resources(template, "AWS::Lambda::Function").values()
        if "CORS_ALLOW_ORIGIN" in props.get("Environment", {}).get("Variables", {})
    ]


def test_the_api_answers_cors_for_the_distribution_only(template: dict[str, Any]) -> None:
    distribution_id, _ = _distribution(template)
    origins = _preflight_origins(template)
    assert len(origins) == len(resources(template, "AWS::ApiGateway::Resource")) + 1  # every resource, root
    for origin in origins:
        assert "https://" in origin
        assert distribution_id in origin  # "https://" + this distribution's domain name
    (allowed,) = _cors_env(template)  # the API function only
    assert "https://" in json.dumps(allowed)
    assert distribution_id in json.dumps(allowed)


def test_without_the_console_nothing_of_it_is_deployed(synth: Any) -> None:
    _, template = synth(console=False)
    assert resources(template, "AWS::CloudFront::Distribution") == {}
    assert resources(template, "Custom::CDKBucketDeployment") == {}
    assert "ConsoleUrl" not in template["Outputs"]
    assert _preflight_origins(template) == []
    assert _cors_env(template) == []
