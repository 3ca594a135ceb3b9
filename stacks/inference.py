"""The inference endpoint: one function serves every model, behind the platform's REST API."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.api import PlatformApi
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge_grant_wildcards
from stacks.stateful import ARTIFACT_PREFIX, CAPTURE_PREFIX, RegistryTables, resource_environment


class InferenceEndpoint(Construct):
    """``POST /models/{model}/predict`` and ``GET /openapi.json`` on the platform API.

    The function reads the registry (versions, aliases, spec revisions, rollouts), reads model
    artifacts under ``artifacts/`` and writes capture samples under ``captures/`` (which the
    bucket's lifecycle expires). It runs on the slim ``inference`` layer (numpy + onnxruntime)
    when the layers provide one, else on the scientific layer.

    Parameters
    ----------
    memory_size
        MiB; half of it is the model cache's budget.
    max_batch_size, alias_ttl_seconds, capture_rate
        See :class:`mlops.serving.settings.ServingSettings`.

    Attributes
    ----------
    function
        The inference function.
    predict_method, openapi_method
        The API methods.
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
        api: PlatformApi,
        memory_size: int = 1024,
        max_batch_size: int = 1000,
        alias_ttl_seconds: int = 30,
        capture_rate: float = 1.0,
        max_body_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        super().__init__(scope, construct_id)
        model_layer = getattr(layers, "inference", None) or layers.science
        self.function = MlopsFunction(
            self,
            "Function",
            name="inference",
            config=config,
            key=tables.key,
            kind="inference",
            layers=[layers.shared, layers.runtime, model_layer],
            description="Inference: validated predictions from each model's champion (canary, shadow, capture)",
            environment={
                **resource_environment(bucket, tables),
                "MAX_BATCH_SIZE": str(max_batch_size),
                "ALIAS_TTL_SECONDS": str(alias_ttl_seconds),
                "CAPTURE_SAMPLE_RATE": str(capture_rate),
                "MAX_BODY_BYTES": str(max_body_bytes),
            },
            memory_size=memory_size,
            timeout=Duration.seconds(29),  # API Gateway's integration timeout
        ).function
        tables.registry.grant_read_data(self.function)
        bucket.grant_read(self.function, f"{ARTIFACT_PREFIX}*")
        bucket.grant_put(self.function, f"{CAPTURE_PREFIX}*")
        acknowledge_grant_wildcards(self.function, "read the registry table, read model artifacts, put capture samples")

        integration = apigw.LambdaIntegration(self.function)
        rest_api = api.rest_api
        validator = apigw.RequestValidator(
            self, "PredictValidator", rest_api=rest_api, validate_request_body=True, validate_request_parameters=True
        )
        body_model = rest_api.add_model(
            "PredictRequest",
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                title="PredictRequest",
                type=apigw.JsonSchemaType.OBJECT,
                min_properties=1,
                max_properties=1,
                properties={
                    "record": apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
                    "records": apigw.JsonSchema(
                        type=apigw.JsonSchemaType.ARRAY,
                        min_items=1,
                        max_items=max_batch_size,
                        items=apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
                    ),
                },
                additional_properties=False,
            ),
        )
        # API Gateway's own refusals in the same JSON shape as the function's.
        rest_api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={
                "application/json": '{"error": "bad_request_shape", "message": "$context.error.validationErrorString"}'
            },
        )
        model = api.models.get_resource("{model}") or api.models.add_resource("{model}")
        self.predict_method = model.add_resource("predict").add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": body_model},
            request_parameters={"method.request.path.model": True},
        )
        self.openapi_method = rest_api.root.add_resource("openapi.json").add_method("GET", integration)
