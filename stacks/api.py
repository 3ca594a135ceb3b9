"""The platform's HTTPS API: API Gateway REST API (regional, TLS) with IAM auth by default."""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction, log_retention
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge, acknowledge_grant_wildcards, acknowledge_managed_policy, skip_checkov
from stacks.stateful import (
    CODE_PREFIX,
    DATASET_PREFIX,
    IMPORT_PREFIX,
    RegistryTables,
    code_writer_role_name,
    name_dataset_writer,
    resource_environment,
)


class PlatformApi(Construct):
    """REST API; capabilities add routes with :meth:`route`.

    Authorization is IAM (SigV4) unless the environment says ``api_auth: api_key``, in which case
    every method requires an API key tied to a usage plan with the configured rate and burst.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        layers: PlatformLayers,
        bucket: s3.IBucket,
        tables: RegistryTables,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention(config), encryption_key=tables.key)
        iam_auth = config.api_auth == "iam"
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"mlops-{config.name}",
            description="MLOps platform API: model catalog, predictions, approvals",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_method_options=apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.IAM if iam_auth else apigw.AuthorizationType.NONE,
                api_key_required=not iam_auth,
            ),
            min_compression_size=None,
            disable_execute_api_endpoint=False,
        )
        self.rest_api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        if not iam_auth:
            plan = self.rest_api.add_usage_plan(
                "UsagePlan",
                name=f"mlops-{config.name}",
                throttle=apigw.ThrottleSettings(rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit),
            )
            plan.add_api_stage(stage=self.rest_api.deployment_stage)
            plan.add_api_key(self.rest_api.add_api_key("DefaultKey"))
            acknowledge(
                self.rest_api,
                "AwsSolutions-APIG4",
                "This environment is configured for API-key auth (api_auth: api_key) with a usage plan.",
            )
            acknowledge(
                self.rest_api,
                "AwsSolutions-COG4",
                "This environment is configured for API-key auth (api_auth: api_key), not Cognito.",
            )
        else:
            acknowledge(
                self.rest_api,
                "AwsSolutions-COG4",
                "Methods use IAM (SigV4) authorization; callers are AWS principals, not Cognito users.",
            )
        skip_checkov(
            self.rest_api.deployment_stage,
            "CKV_AWS_120",
            "No response cache on purpose: predictions and approvals must never be answered from a cache, and "
            "every answer is for one authenticated caller (IAM or API key) about the registry's current state.",
            types=["AWS::ApiGateway::Stage"],
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "A regional API with IAM auth and stage throttling; WAF is left to the operator's edge setup.",
        )

        catalog = MlopsFunction(
            self,
            "Catalog",
            name="api",
            config=config,
            key=tables.key,
            kind="api",
            layers=[layers.shared, layers.runtime],
            description="Model catalog: which models exist and which versions serve",
            environment=resource_environment(bucket, tables),
            memory_size=512,
            timeout=Duration.seconds(10),
        ).function
        tables.registry.grant_read_data(catalog)
        acknowledge_grant_wildcards(catalog, "read the registry table and its indexes")
        acknowledge_managed_policy(
            self.rest_api,
            "service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            "API Gateway's account-level CloudWatch role uses the AWS-managed push-to-logs policy by design.",
        )
        self.catalog = catalog
        models = self.rest_api.root.add_resource("models")
        models.add_method("GET", apigw.LambdaIntegration(catalog))
        model = models.add_resource("{model}")
        model.add_method("GET", apigw.LambdaIntegration(catalog))
        self.models = models

        # Dataset uploads: the caller AWS authenticated is recorded, then gets a presigned PUT that
        # this function's role signs (the only role besides the monitor's the bucket lets write datasets/).
        uploads = MlopsFunction(
            self,
            "Uploads",
            name="dataset_upload",
            config=config,
            key=tables.key,
            kind="api",
            layers=[layers.shared, layers.runtime],
            description="Dataset upload API: records the calling IAM principal, returns a presigned PUT",
            environment=resource_environment(bucket, tables),
            memory_size=256,
            timeout=Duration.seconds(10),
        )
        name_dataset_writer(uploads.role, config, "upload")
        tables.grant_registry_write(uploads.function)  # the upload grant, the spec check, the audit event
        bucket.grant_put(uploads.function, f"{DATASET_PREFIX}*")  # what the presigned PUT may do, nothing else
        acknowledge_grant_wildcards(
            uploads.function,
            "put datasets/* (the presigned uploads it signs), registry read/write, audit append, "
            "KMS data keys through the bucket",
        )
        self.uploads = uploads.function
        self.uploads_method = model.add_resource("uploads").add_method(
            "POST", apigw.LambdaIntegration(uploads.function)
        )

        # Training-code uploads: their own function, role and route, so that IAM grants them apart
        # from dataset uploads (execute-api:Invoke on POST/models/*/code, see code_upload_policy).
        code = MlopsFunction(
            self,
            "CodeUploads",
            name="code_upload",
            config=config,
            key=tables.key,
            kind="api",
            layers=[layers.shared, layers.runtime],
            description="Code upload API: records a training-code version and its uploader, returns a presigned PUT",
            environment={
                **resource_environment(bucket, tables),
                "CODE_UPLOADERS": json.dumps(list(config.code_uploaders)),
            },
            memory_size=256,
            timeout=Duration.seconds(10),
        )
        cfn_role = code.role.node.default_child if code.role is not None else None
        if not isinstance(cfn_role, iam.CfnRole):
            raise TypeError("code upload: the function has no role this app created")
        cfn_role.role_name = code_writer_role_name(config)  # the bucket policy names it
        tables.grant_registry_write(code.function)  # the code version, the spec check, the audit event
        bucket.grant_put(code.function, f"{CODE_PREFIX}*")  # what the presigned PUT may do, nothing else
        bucket.grant_read(code.function, f"{CODE_PREFIX}*")  # a confirmation reads the package back (sha256)
        acknowledge_grant_wildcards(
            code.function,
            "put code/* (the presigned uploads it signs), read code/* (a confirmation checks the package's "
            "sha256), registry read/write, audit append, "
            "KMS data keys through the bucket",
        )
        self.code_uploads = code.function
        self.code_method = model.add_resource("code").add_method("POST", apigw.LambdaIntegration(code.function))
        # What a platform engineer attaches to the people who may upload training code.
        self.code_upload_policy = iam.ManagedPolicy(
            self,
            "CodeUploadPolicy",
            description="May upload training code (POST /models/*/code): the code runs with the training role",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[self.rest_api.arn_for_execute_api("POST", "/models/*/code")],
                )
            ],
        )
        acknowledge_grant_wildcards(
            self.code_upload_policy,
            "invoke POST /models/*/code of this deployment's API (any stage, any model): the code upload route alone",
        )

        # Model imports: like dataset uploads, their own route (so their own execute-api permission),
        # the caller AWS authenticated recorded, a presigned PUT of exactly that content to imports/.
        imports = MlopsFunction(
            self,
            "Imports",
            name="model_import",
            config=config,
            key=tables.key,
            kind="api",
            layers=[layers.shared, layers.runtime],
            description="Model import API (and notebook runs): records the calling IAM principal, presigned PUTs",
            environment=resource_environment(bucket, tables),
            memory_size=256,
            timeout=Duration.seconds(10),
        )
        tables.grant_registry_write(imports.function)  # the import grant, the spec and dataset checks, the audit
        bucket.grant_put(imports.function, f"{IMPORT_PREFIX}*")  # what the presigned PUT may do, nothing else
        acknowledge_grant_wildcards(
            imports.function,
            "put imports/* (the presigned uploads it signs), registry read/write, audit append, "
            "KMS data keys through the bucket",
        )
        self.imports = imports.function
        self.imports_method = model.add_resource("imports").add_method(
            "POST", apigw.LambdaIntegration(imports.function)
        )
        # Notebook runs (mlops.tracking): their own route, so that recording runs is its own
        # execute-api permission (POST/models/*/runs), served by the import function. Not a function
        # and role of their own: a run records in the registry and presigns the PUT of its logged
        # model under imports/ -- exactly the import function's grants, so a second role would hold
        # the same permissions (no narrower), and cost a second cold start and log group.
        self.runs_method = model.add_resource("runs").add_method("POST", apigw.LambdaIntegration(imports.function))

    @property
    def url(self) -> str:
        return self.rest_api.url

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"], resource_arns=[self.rest_api.arn_for_execute_api()]
        )
