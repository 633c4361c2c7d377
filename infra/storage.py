"""Storage: the DynamoDB tables and the S3 payload bucket (claim check for audio and arrays).

Keys and attributes follow docs/design.md: invocations (pk ``invocation_id``, TTL ``expires_at``, the indexes
``by-deadline`` and ``by-owner`` declared in dal/checkpoints.py), the
Powertools idempotency table (pk ``id``, TTL ``expiration``), patterns (pk ``pattern_id``). Every table is
on-demand, encrypted at rest and has point-in-time recovery. The payload bucket blocks all public access,
refuses plain HTTP, encrypts with S3-managed keys, expires ``invocations/`` and ``uploads/`` after
``retention_days`` and logs access to a separate log bucket.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from harmonic_service.dal.checkpoints import INDEXES as INVOCATION_INDEXES
from infra.function import HarmonicFunction
from infra.nag import acknowledge
from infra.settings import Settings

# S3 prefixes (docs/design.md, "S3 keys").
INVOCATIONS_PREFIX = "invocations/"
UPLOADS_PREFIX = "uploads/"
PATTERNS_PREFIX = "patterns/"

# Server access logs are kept longer than the payloads they describe.
ACCESS_LOG_RETENTION_DAYS = 90

_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _attribute(key: tuple[str, str]) -> dynamodb.Attribute:
    """An index key of dal/checkpoints.py (attribute, DynamoDB type) as CDK's Attribute."""
    name, attribute_type = key
    return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[attribute_type])


def private_bucket(
    scope: Construct, construct_id: str, *, access_log_bucket: s3.IBucket, log_prefix: str, **kwargs: Any
) -> s3.Bucket:
    """A bucket as every bucket of the app is: S3-managed encryption, no public access, no ACLs, TLS only,
    its access logged under `log_prefix` of `access_log_bucket`; `kwargs`: lifecycle, removal policy…"""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        server_access_logs_bucket=access_log_bucket,
        server_access_logs_prefix=log_prefix,
        **kwargs,
    )


class Storage(Construct):
    """Tables and buckets shared by every function."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self._listers: set[str] = set()
        self.invocations_table = self._table("InvocationsTable", "invocation_id", ttl="expires_at")
        # as dal/checkpoints.py declares them: the sweeper's sparse by-deadline index (the invocations that
        # may still run) and the history's by-owner index (a caller's invocations by creation time)
        for index in INVOCATION_INDEXES:
            self.invocations_table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key),
                projection_type=dynamodb.ProjectionType.INCLUDE
                if index.include
                else dynamodb.ProjectionType.KEYS_ONLY,
                non_key_attributes=list(index.include) or None,
            )
        table_id = cdk.Stack.of(self).get_logical_id(self.invocations_table.node.default_child)
        acknowledge(
            cdk.Stack.of(self),
            f"AwsSolutions-IAM5[Resource::<{table_id}.Arn>/index/*]",
            "CDK's grants on the invocations table cover its indexes (table/index/*): the sweeper's "
            "keys-only by-deadline index and the history's by-owner index (status, mode and times).",
        )
        self.idempotency_table = self._table("IdempotencyTable", "id", ttl="expiration")
        self.patterns_table = self._table("PatternsTable", "pattern_id", ttl=None)
        # events mode: the audit subscriber's log of every event, per invocation in time order
        self.audit_table = (
            self._table("AuditTable", "invocation_id", ttl="expires_at", sort_key="event_key")
            if settings.deploys_events
            else None
        )

        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # Server access log delivery supports only S3-managed keys on the target bucket.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(ACCESS_LOG_RETENTION_DAYS))
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        expiry = cdk.Duration.days(settings.retention_days)
        self.payload_bucket = private_bucket(
            self,
            "PayloadBucket",
            access_log_bucket=self.access_log_bucket,
            log_prefix="payload-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-invocations", prefix=INVOCATIONS_PREFIX, expiration=expiry),
                s3.LifecycleRule(id="expire-uploads", prefix=UPLOADS_PREFIX, expiration=expiry),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                ),
            ],
            # Audio and results are transient (retention_days). Patterns (artifacts and the examples they were
            # registered from, patterns/) live until they are deleted: no rule expires them.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _table(
        self, construct_id: str, partition_key: str, *, ttl: str | None, sort_key: str | None = None
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
            if sort_key
            else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def grant_stage(self, function: HarmonicFunction) -> None:
        """What a stage function needs: its invocation's item and artifacts, and the registry (read-only)."""
        self.invocations_table.grant_read_write_data(function.function)
        self.patterns_table.grant_read_data(function.function)
        self.grant_objects(function, INVOCATIONS_PREFIX, write=True)
        self.grant_objects(function, PATTERNS_PREFIX, write=False)

    def grant_objects(
        self, function: HarmonicFunction, prefix: str, *, write: bool, delete: bool = False
    ) -> None:
        """Let `function` read (and optionally write/delete) the payload bucket's objects under `prefix` only.

        Explicit actions instead of CDK's ``grant_read_write`` (which grants ``s3:GetObject*``, ``s3:List*``,
        ``s3:DeleteObject*``...). The function may also list the bucket: without ``s3:ListBucket`` S3
        answers a missing key with 403 instead of 404 (NoSuchKey), and the handlers tell "not there (yet)"
        from "denied".
        A ``s3:prefix`` condition cannot narrow that: GetObject/HeadObject requests carry no prefix.
        """
        actions = ["s3:GetObject"]
        if write:
            actions += ["s3:PutObject", "s3:AbortMultipartUpload"]
        if delete:
            actions.append("s3:DeleteObject")
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions, resources=[self.payload_bucket.arn_for_objects(f"{prefix}*")]
            )
        )
        if function.node.path not in self._listers:
            self._listers.add(function.node.path)
            function.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.payload_bucket.bucket_arn])
            )
        logical_id = cdk.Stack.of(self).get_logical_id(self.payload_bucket.node.default_child)
        function.acknowledge(
            f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]",
            f"Objects of the payload bucket under {prefix} only (keys are per invocation or per upload, "
            "minted at run time; docs/design.md 'S3 keys').",
        )
