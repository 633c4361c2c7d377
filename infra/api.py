"""The HTTP API: an API Gateway REST API with explicit ``/v1`` routes, all served by one API Lambda.

- Authentication: AWS IAM (SigV4) on every route by default, ``/v1/health`` included (an unauthenticated
  route that invokes a Lambda is an abuse vector and the client signs anyway); with ``auth=api_key`` every
  route requires an API key instead, under a usage plan with the same throttling.
- Throttling: stage-wide rate and burst (settings); beyond them API Gateway answers 429.
- Request validation: JSON bodies must be objects with the documented property types, path parameters
  must be present; failures are 400 in the API's error shape (gateway responses below).
- Size: API Gateway rejects bodies over 10 MB with 413, and Lambda's synchronous payload limit is 6 MB, so
  inline audio is capped by ``max_inline_bytes`` (default 4 MiB raw, ~5.6 MB as base64); larger clips go
  through ``POST /v1/uploads`` (presigned S3 PUT, up to ``max_upload_bytes``).
- Logs: JSON access logs to a log group; execution logs at ERROR level; X-Ray tracing.
- CORS: off unless ``cors_origin`` names the one origin of a web console served elsewhere (e.g. "https://" +
  a CloudFront domain name, a token is fine). Then API Gateway answers the browsers' preflight ``OPTIONS``
  on every resource for that origin (without authentication: browsers send preflights without
  credentials), its own error responses carry ``Access-Control-Allow-Origin`` so the console can read them,
  and the function gets ``CORS_ALLOW_ORIGIN`` to add the CORS headers to its answers
  (harmonic_service/cors.py lists the headers both allow and expose). Never ``*``.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from harmonic_service import cors
from harmonic_service.stages import API_HANDLER
from infra.function import HarmonicFunction, log_retention
from infra.layer import Layers
from infra.nag import acknowledge
from infra.pipeline import StageQueues
from infra.settings import Settings
from infra.storage import INVOCATIONS_PREFIX, PATTERNS_PREFIX, UPLOADS_PREFIX, Storage

# The deployment stage. Not "v1": the routes carry the API's version themselves (/v1/...), and a stage of
# the same name made every URL .../v1/v1/... . The stage is the environment the routes are deployed in.
STAGE_NAME = "prod"

# JSON-schema of the bodies API Gateway checks before invoking the function; the function validates the
# rest (which fields are required together, enums, sizes) and answers in the same error shape.
BODY_SCHEMAS: dict[str, dict[str, apigateway.JsonSchemaType]] = {
    "Invocation": {
        "audio": apigateway.JsonSchemaType.STRING,
        "audio_key": apigateway.JsonSchemaType.STRING,
        "mode": apigateway.JsonSchemaType.STRING,
        "steps": apigateway.JsonSchemaType.ARRAY,
        "options": apigateway.JsonSchemaType.OBJECT,
    },
    "Analyze": {
        "audio": apigateway.JsonSchemaType.STRING,
        "audio_key": apigateway.JsonSchemaType.STRING,
        "steps": apigateway.JsonSchemaType.ARRAY,
        "options": apigateway.JsonSchemaType.OBJECT,
    },
    "Pattern": {
        "name": apigateway.JsonSchemaType.STRING,
        "kind": apigateway.JsonSchemaType.STRING,
        "audio": apigateway.JsonSchemaType.STRING,
        "audio_key": apigateway.JsonSchemaType.STRING,
    },
}

# (path under the API root, method, body model or None)
ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("v1/health", "GET", None),
    ("v1/analyze", "POST", "Analyze"),
    ("v1/uploads", "POST", None),
    ("v1/invocations", "GET", None),
    ("v1/invocations", "POST", "Invocation"),
    ("v1/invocations/{id}", "GET", None),
    ("v1/invocations/{id}/resume", "POST", None),
    ("v1/invocations/{id}/events", "GET", None),
    ("v1/patterns", "GET", None),
    ("v1/patterns", "POST", "Pattern"),
    ("v1/patterns/{id}", "GET", None),
    ("v1/patterns/{id}", "DELETE", None),
    ("v1/patterns/{id}/example", "GET", None),
    ("v1/patterns/{id}/rebuild", "POST", None),
)

# API Gateway's own errors, in the API's error shape {"error": {"code", "message"}}.
# ($context.error.messageString is already a quoted JSON string.)
GATEWAY_ERRORS: tuple[tuple[str, apigateway.ResponseType, str | None, str], ...] = (
    ("BadRequestBody", apigateway.ResponseType.BAD_REQUEST_BODY, "400", "bad_request"),
    ("BadRequestParameters", apigateway.ResponseType.BAD_REQUEST_PARAMETERS, "400", "bad_request"),
    ("Throttled", apigateway.ResponseType.THROTTLED, "429", "throttled"),
    ("QuotaExceeded", apigateway.ResponseType.QUOTA_EXCEEDED, "429", "throttled"),
    ("RequestTooLarge", apigateway.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large"),
    ("AccessDenied", apigateway.ResponseType.ACCESS_DENIED, "403", "forbidden"),
    ("MissingAuthenticationToken", apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403", "forbidden"),
    ("InvalidSignature", apigateway.ResponseType.INVALID_SIGNATURE, "403", "forbidden"),
    ("ExpiredToken", apigateway.ResponseType.EXPIRED_TOKEN, "403", "forbidden"),
    ("InvalidApiKey", apigateway.ResponseType.INVALID_API_KEY, "403", "forbidden"),
    ("Default4xx", apigateway.ResponseType.DEFAULT_4_XX, None, "client_error"),
    ("Default5xx", apigateway.ResponseType.DEFAULT_5_XX, None, "internal_error"),
)

ACCESS_LOG_FIELDS = {
    "requestId": apigateway.AccessLogField.context_request_id(),
    "extendedRequestId": apigateway.AccessLogField.context_extended_request_id(),
    "requestTime": apigateway.AccessLogField.context_request_time(),
    "httpMethod": apigateway.AccessLogField.context_http_method(),
    "resourcePath": apigateway.AccessLogField.context_resource_path(),
    "status": apigateway.AccessLogField.context_status(),
    "protocol": apigateway.AccessLogField.context_protocol(),
    "responseLength": apigateway.AccessLogField.context_response_length(),
    "responseLatency": apigateway.AccessLogField.context_response_latency(),
    "integrationLatency": apigateway.AccessLogField.context_integration_latency(),
    "integrationStatus": apigateway.AccessLogField.context_integration_status(),
    "errorType": apigateway.AccessLogField.context_error_response_type(),
    "errorMessage": apigateway.AccessLogField.context_error_message(),
    "sourceIp": apigateway.AccessLogField.context_identity_source_ip(),
    "userArn": apigateway.AccessLogField.context_identity_user_arn(),
    "apiKeyId": apigateway.AccessLogField.context_identity_api_key_id(),
    "xrayTraceId": apigateway.AccessLogField.context_xray_trace_id(),
}


class Api(Construct):
    """REST API + API function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: Storage,
        layers: Layers,
        code: lambda_.Code,
        queues: StageQueues | None,
        environment: dict[str, str],
        cors_origin: str | None = None,
    ) -> None:
        """`cors_origin`: the origin (scheme://host[:port], a token is fine) of a web console served from
        elsewhere, which may then call the API from a browser (module doc, "CORS"); None: no CORS."""
        super().__init__(scope, construct_id)
        if cors_origin is not None and not cdk.Token.is_unresolved(cors_origin):
            cors.check_origin(cors_origin)
        self.cors_origin = cors_origin
        if cors_origin is not None:
            environment = {**environment, "CORS_ALLOW_ORIGIN": cors_origin}
        self.handler = HarmonicFunction(
            self,
            "Handler",
            code=code,
            handler=API_HANDLER,
            layers=layers,
            settings=settings,
            memory_mb=settings.api_memory_mb,
            timeout_s=settings.api_timeout_s,
            environment=environment,
            description="HTTP API",
        )
        self._grant(storage, queues)

        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(settings.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        iam_auth = settings.auth == "iam"
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            description="Harmonic: audio in, harmonic analysis out",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Execution logging needs API Gateway's account-level CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
            default_method_options=apigateway.MethodOptions(
                authorization_type=apigateway.AuthorizationType.IAM
                if iam_auth
                else apigateway.AuthorizationType.NONE,
                api_key_required=not iam_auth,
            ),
            default_cors_preflight_options=self._preflight(cors_origin),
        )
        self.validator = apigateway.RequestValidator(
            self,
            "RequestValidator",
            rest_api=self.rest_api,
            validate_request_body=True,
            validate_request_parameters=True,
        )
        self.models = {name: self._model(name, properties) for name, properties in BODY_SCHEMAS.items()}
        integration = apigateway.LambdaIntegration(self.handler.function, proxy=True, allow_test_invoke=False)
        self.methods: dict[tuple[str, str], apigateway.Method] = {}
        for path, http_method, model in ROUTES:
            resource = self.rest_api.root.resource_for_path(path)
            parameters = {
                f"method.request.path.{p[1:-1]}": True for p in path.split("/") if p.startswith("{")
            }
            if http_method == "POST":
                parameters["method.request.header.Idempotency-Key"] = False
            self.methods[(path, http_method)] = resource.add_method(
                http_method,
                integration,
                request_validator=self.validator,
                request_parameters=parameters or None,
                request_models={"application/json": self.models[model]} if model else None,
            )
        for construct_id, response_type, status, code in GATEWAY_ERRORS:
            message = "$context.error.messageString"
            headers: dict[str, str] = {}
            if code == "throttled":  # A throttled client is told when to come back (the client honours it).
                headers["Retry-After"] = "'1'"
            if cors_origin is not None:  # and a console's scripts may read the error (and Retry-After)
                headers["Access-Control-Allow-Origin"] = f"'{cors_origin}'"
                headers["Access-Control-Expose-Headers"] = f"'{','.join(cors.EXPOSE_HEADERS)}'"
            self.rest_api.add_gateway_response(
                construct_id,
                type=response_type,
                status_code=status,
                response_headers=headers or None,
                templates={"application/json": f'{{"error": {{"code": "{code}", "message": {message}}}}}'},
            )

        self.api_key: apigateway.IApiKey | None = None
        if not iam_auth:
            plan = self.rest_api.add_usage_plan(
                "UsagePlan",
                description="Harmonic API clients",
                throttle=apigateway.ThrottleSettings(
                    rate_limit=settings.api_throttle_rate, burst_limit=settings.api_throttle_burst
                ),
                api_stages=[
                    apigateway.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)
                ],
            )
            self.api_key = self.rest_api.add_api_key("ApiKey", description="Harmonic API key")
            plan.add_api_key(self.api_key)
        self._acknowledge(settings)

    @property
    def url(self) -> str:
        return self.rest_api.url

    @staticmethod
    def _preflight(cors_origin: str | None) -> apigateway.CorsOptions | None:
        """API Gateway's answer to a browser's preflight OPTIONS on every resource: `cors_origin` only, the
        routes' methods, the headers harmonic_service/cors.py lists, no credentials; None without one."""
        if cors_origin is None:
            return None
        return apigateway.CorsOptions(
            allow_origins=[cors_origin],
            allow_methods=sorted({method for _, method, _ in ROUTES}),
            allow_headers=list(cors.ALLOW_HEADERS),
            expose_headers=list(cors.EXPOSE_HEADERS),
            max_age=cdk.Duration.seconds(cors.MAX_AGE_S),
            allow_credentials=False,
            status_code=204,
        )

    def _model(self, name: str, properties: dict[str, apigateway.JsonSchemaType]) -> apigateway.Model:
        return self.rest_api.add_model(
            f"{name}Model",
            content_type="application/json",
            model_name=f"{name}Request",
            schema=apigateway.JsonSchema(
                schema=apigateway.JsonSchemaVersion.DRAFT4,
                title=f"{name}Request",
                type=apigateway.JsonSchemaType.OBJECT,
                properties={key: apigateway.JsonSchema(type=kind) for key, kind in properties.items()},
            ),
        )

    def _grant(self, storage: Storage, queues: StageQueues | None) -> None:
        function = self.handler.function
        storage.invocations_table.grant_read_write_data(function)
        storage.idempotency_table.grant_read_write_data(function)
        storage.patterns_table.grant_read_write_data(function)
        storage.grant_objects(self.handler, INVOCATIONS_PREFIX, write=True)
        storage.grant_objects(self.handler, UPLOADS_PREFIX, write=True)
        storage.grant_objects(self.handler, PATTERNS_PREFIX, write=True, delete=True)
        if queues is not None:
            # Submit sends to the first stage; resume restarts from the stage that failed.
            for queue in queues.queues.values():
                queue.grant_send_messages(function)

    def _acknowledge(self, settings: Settings) -> None:
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF web ACL by default: every route is authenticated (IAM or API key) and throttled per "
            "stage; attach a WAFv2 web ACL to the stage where an account requires one.",
        )
        acknowledge(
            self.rest_api.root,
            "AwsSolutions-COG4",
            "Clients authenticate with AWS IAM (SigV4) or an API key (context auth), never Cognito.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch role (needed for execution logs) uses the AWS-managed "
            "policy that AWS documents for it.",
        )
        if settings.auth == "api_key":
            acknowledge(
                self.rest_api.root,
                "AwsSolutions-APIG4",
                "auth=api_key was chosen at deploy time: every method requires an API key under a usage plan "
                "(identification and throttling rather than IAM authorization); the default is IAM.",
            )
