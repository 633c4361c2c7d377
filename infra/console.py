"""The web console (console/) deployed: a private S3 bucket behind CloudFront with origin access control.

Why CloudFront and a bucket, not the API: with ``auth=iam`` (the default) every API route needs a SigV4
signature, which a browser loading a page cannot give, so serving the page from the API would need
unauthenticated routes that invoke a Lambda function (an abuse vector: the API has none). CloudFront serves
static files from its cache at no idle cost, with the security headers set once (a response headers policy),
and the bucket stays private: only this distribution may read it (origin access control, SigV4-signed by
CloudFront).

The console calls the API from the distribution's origin, so the API answers CORS for that origin only
(infra/api.py ``cors_origin``). Its ``config.json`` (written next to the files at deploy time) names the API
URL and the auth mode; with ``auth=api_key`` the operator pastes the key, which the page keeps in session
storage. Two steps, because the API needs the console's origin and the config needs the API's URL:
``Console(...)`` creates the bucket and the distribution, ``deploy_files(api_url, auth)`` the files.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra import REPO_ROOT
from infra.nag import acknowledge
from infra.storage import private_bucket

CONSOLE_DIR = REPO_ROOT / "console"
# The console's Content-Security-Policy: its own scripts and styles only; API calls to API Gateway in this
# region (a wildcard host: naming this API would make the distribution depend on it, and the API already
# depends on the distribution's origin); pattern examples played from presigned S3 URLs.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' https://*.execute-api.{region}.amazonaws.com; "
    "media-src 'self' blob: https://*.amazonaws.com; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class Console(Construct):
    """The console's bucket and distribution; `origin` is what the API allows (``https://<domain>``)."""

    def __init__(self, scope: Construct, construct_id: str, *, access_log_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self,
            "Bucket",
            access_log_bucket=access_log_bucket,
            log_prefix="console-bucket/",
            # The files are rebuilt from console/ on every deploy; the deployment empties the bucket on
            # delete (retain_on_delete=False), so nothing is left behind.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        region = cdk.Stack.of(self).region
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="Harmonic console: CSP and the usual security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CSP.format(region=region), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365), include_subdomains=True, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Harmonic console",
            default_root_object="index.html",
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.url = f"{self.origin}/"
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "The console is static files with no data in them; every call it makes goes to the API, which "
            "authenticates (IAM or API key) and throttles each request: a geo restriction protects nothing.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No WAF web ACL (about $5 a month idle): the distribution serves a few static files from its "
            "cache; the API behind the console is authenticated and throttled by API Gateway.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "No CloudFront standard logs: they need an ACL-enabled log bucket, which this stack avoids "
            "(bucket owner enforced); the files are public by design; the API access log records each call.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The distribution uses the default *.cloudfront.net certificate, whose security policy cannot be "
            "set; a custom domain with an ACM certificate and TLSv1.2_2021 is the step for production.",
        )

    def deploy_files(self, *, api_url: str, auth: str) -> s3deploy.BucketDeployment:
        """Upload console/ and its config.json (the API's URL and auth mode), and invalidate the cache."""
        deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            sources=[
                s3deploy.Source.asset(str(CONSOLE_DIR)),
                s3deploy.Source.json_data("config.json", {"api_url": api_url, "auth": auth}),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            retain_on_delete=False,
            memory_limit=256,
        )
        self._acknowledge_deployment_function()
        return deployment

    def _acknowledge_deployment_function(self) -> None:
        """The BucketDeployment's function is a singleton of the stack, created and permissioned by CDK: its
        policy reads the asset bucket and writes the console bucket with CDK's action wildcards, and
        invalidates the distribution (CloudFront's CreateInvalidation has no resource-level permissions)."""
        stack = cdk.Stack.of(self)
        bucket_arn = stack.get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        wildcards = {
            "Action::s3:GetBucket*": "reads the asset and console buckets' settings",
            "Action::s3:GetObject*": "reads the deployment's zipped asset",
            "Action::s3:List*": "lists the asset and console buckets to copy and prune",
            "Action::s3:Abort*": "aborts its own failed multipart uploads",
            "Action::s3:DeleteObject*": "removes files no longer in console/",
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*": (
                "reads objects of CDK's bootstrap asset bucket (the asset's key is a hash)"
            ),
            f"Resource::<{bucket_arn}.Arn>/*": "writes every file of the console bucket",
            "Resource::*": "invalidates the distribution's cache (no resource-level permission exists)",
        }
        singletons = [
            child for child in stack.node.children if child.node.id.startswith("Custom::CDKBucketDeployment")
        ]
        for function in singletons:
            # cfn-lint W3005: CDK writes a DependsOn on the function's role that its Role property already
            # implies; CDK's template, harmless, and not ours to change.
            function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
            for applies_to, why in wildcards.items():
                acknowledge(
                    function,
                    f"AwsSolutions-IAM5[{applies_to}]",
                    f"CDK's BucketDeployment function, run at deploy time to copy console/: it {why}.",
                )
            acknowledge(
                function,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's BucketDeployment function logs with the AWS-managed basic execution role; it runs at "
                "deploy time only, to copy the console's files.",
            )
            acknowledge(
                function,
                "AwsSolutions-L1",
                "CDK's BucketDeployment function runs the Python runtime its CDK version pins, at deploy "
                "time only.",
            )
