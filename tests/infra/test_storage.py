"""Storage: on-demand tables with PITR, TTL and encryption; a locked-down bucket with lifecycle rules."""

from __future__ import annotations

from typing import Any

from infra.settings import Settings
from tests.infra.conftest import API_KEY_VARIANT, ref_id, resources

TABLES = {
    "invocation_id": "expires_at",  # invocations
    "id": "expiration",  # Powertools idempotency
    "pattern_id": None,  # patterns
}


def _deny_insecure_transport(template: dict[str, Any], policy_type: str, target_key: str) -> set[str]:
    """Logical ids of the targets of policies that deny any request without TLS."""
    targets = set()
    for props in resources(template, policy_type).values():
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                value = props[target_key]
                targets.update(ref_id(v) for v in (value if isinstance(value, list) else [value]))
    return targets


def test_tables_are_on_demand_encrypted_with_pitr_and_ttl(template: dict[str, Any]) -> None:
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 4  # invocations, idempotency, patterns, and the events mode's audit log
    found = {}
    for props in tables.values():
        key, *sort = props["KeySchema"]
        assert key["KeyType"] == "HASH"
        if sort:  # the audit log: an invocation's events, ordered by their time and id
            assert sort == [{"AttributeName": "event_key", "KeyType": "RANGE"}]
        keys = [{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in props["KeySchema"]]
        if key["AttributeName"] == "invocation_id" and not sort:  # the sweeper's and the history's indexes
            sweeper, history = props["GlobalSecondaryIndexes"]
            assert sweeper["IndexName"] == "by-deadline"
            assert sweeper["KeySchema"] == [
                {"AttributeName": "sweep", "KeyType": "HASH"},
                {"AttributeName": "deadline_at", "KeyType": "RANGE"},
            ]
            assert sweeper["Projection"] == {"ProjectionType": "KEYS_ONLY"}
            # GET /v1/invocations: a caller's, newest first, with what the list shows
            assert history["IndexName"] == "by-owner"
            assert history["KeySchema"] == [
                {"AttributeName": "owner", "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ]
            assert history["Projection"] == {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": ["status", "mode", "finished_at"],
            }
            keys += [
                {"AttributeName": "sweep", "AttributeType": "S"},
                {"AttributeName": "deadline_at", "AttributeType": "N"},
                {"AttributeName": "owner", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "S"},
            ]
        assert props["AttributeDefinitions"] == keys
        if sort:
            assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
            continue
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        ttl = props.get("TimeToLiveSpecification")
        found[key["AttributeName"]] = ttl["AttributeName"] if ttl and ttl["Enabled"] else None
    assert found == TABLES


def _bucket_logging_to(template: dict[str, Any], prefix: str) -> str:
    """The logical id of the bucket whose access logs go under `prefix` of the access-log bucket."""
    (found,) = [
        logical_id
        for logical_id, props in resources(template, "AWS::S3::Bucket").items()
        if props.get("LoggingConfiguration", {}).get("LogFilePrefix") == prefix
    ]
    return found


def test_tables_and_buckets_of_data_survive_stack_deletion(template: dict[str, Any]) -> None:
    console = _bucket_logging_to(template, "console-bucket/")  # files rebuilt from console/ (test_console)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::DynamoDB::Table", "AWS::S3::Bucket") and logical_id != console:
            assert resource["DeletionPolicy"] == "Retain", logical_id
    assert template["Resources"][console]["DeletionPolicy"] == "Delete"


def test_buckets_block_public_access_encrypt_and_require_tls(template: dict[str, Any]) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 3  # payloads, their access logs, the console's files
    for props in buckets.values():
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        assert "CorsConfiguration" not in props
    assert _deny_insecure_transport(template, "AWS::S3::BucketPolicy", "Bucket") == set(buckets)


def test_payload_bucket_expires_transient_prefixes_and_logs_access(template: dict[str, Any]) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    payload_id = _bucket_logging_to(template, "payload-bucket/")
    payload = buckets[payload_id]
    log_bucket = ref_id(payload["LoggingConfiguration"]["DestinationBucketName"])
    assert log_bucket in buckets
    assert log_bucket != payload_id
    days = Settings().retention_days
    expiring = {
        rule["Prefix"]: rule["ExpirationInDays"]
        for rule in payload["LifecycleConfiguration"]["Rules"]
        if "Prefix" in rule and rule["Status"] == "Enabled"
    }
    assert expiring == {"invocations/": days, "uploads/": days}
    assert "patterns/" not in expiring


def test_retention_days_reaches_lifecycle_and_functions(synth) -> None:
    _, template = synth(**API_KEY_VARIANT)
    payload = resources(template, "AWS::S3::Bucket")[_bucket_logging_to(template, "payload-bucket/")]
    days = {
        r["Prefix"]: r["ExpirationInDays"]
        for r in payload["LifecycleConfiguration"]["Rules"]
        if "Prefix" in r
    }
    assert days == {"invocations/": 3, "uploads/": 3}
    for props in resources(template, "AWS::Lambda::Function").values():
        assert props["Environment"]["Variables"]["RETENTION_DAYS"] == "3"
