"""The inference endpoint: one function serves every model, behind the platform's REST API."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.contracts.names import FALLBACK_FUNCTION_ENV
from mlops.contracts.serving import FALLBACK_MEMORY_MB, FALLBACK_TIMEOUT_S, INFERENCE_TIMEOUT_S
from stacks.api import PlatformApi
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge_grant_wildcards
from stacks.stateful import ARTIFACT_PREFIX, CAPTURE_PREFIX, CODE_PREFIX, RegistryTables, resource_environment


class InferenceEndpoint(Construct):
    """``POST /models/{model}/predict`` and ``GET /openapi.json`` on the platform API.

    The function reads the registry (versions, aliases, spec revisions, rollouts), reads model
    artifacts under ``artifacts/`` and writes capture samples under ``captures/`` (which the
    bucket's lifecycle expires). It runs on the slim ``inference`` layer (numpy + onnxruntime)
    when the layers provide one, else on the scientific layer. Versions without an ONNX export are
    predicted by a second function on the scientific layer, which the inference function invokes
    (:mod:`mlops.serving.fallback`): one predict route per model, whichever path serves it.

    Parameters
    ----------
    memory_size
        MiB; half of it is the model cache's budget.
    fallback_memory_size
        MiB of the fallback function (scikit-learn and pandas; more memory is also more CPU for
        its cold start's imports).
    max_batch_size, alias_ttl_seconds, capture_rate
        See :class:`mlops.serving.settings.ServingSettings`.

    Attributes
    ----------
    function
        The inference function.
    fallback_function
        The fallback function (``functions/inference_fallback``): versions whose serving path is
        ``python`` (no ONNX export), invoked synchronously by the inference function, which holds
        the only permission to invoke it.
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
        fallback_memory_size: int = FALLBACK_MEMORY_MB,
    ) -> None:
        super().__init__(scope, construct_id)
        model_layer = getattr(layers, "inference", None) or layers.science
        # The Python path: versions without an ONNX export, predicted with scikit-learn (science
        # layer). Invoked only by the inference function, with validated records; it reads the
        # registry and the artifacts, and captures nothing (the inference function does).
        fallback = MlopsFunction(
            self,
            "Fallback",
            name="inference_fallback",
            config=config,
            key=tables.key,
            kind="inference",
            layers=[layers.shared, layers.runtime, layers.science],
            description="Inference fallback: predictions of versions without an ONNX export (scikit-learn)",
            environment={
                **resource_environment(bucket, tables),
                "ALIAS_TTL_SECONDS": str(alias_ttl_seconds),
            },
            memory_size=fallback_memory_size,
            # inside the inference function's wait for it, so a slow fallback is its 5xx, not the
            # gateway's (the budget and the measurements it comes from: mlops.contracts.serving)
            timeout=Duration.seconds(FALLBACK_TIMEOUT_S),
            # its ArtifactRefused and InternalErrors count in the inference alarms (one serving service)
            service="inference",
        ).function
        tables.registry.grant_read_data(fallback)
        bucket.grant_read(fallback, f"{ARTIFACT_PREFIX}*")
        bucket.grant_read(fallback, f"{CODE_PREFIX}*")  # the code package of a model built by user code
        acknowledge_grant_wildcards(fallback, "read the registry table, model artifacts and training-code packages")
        self.fallback_function = fallback
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
                FALLBACK_FUNCTION_ENV: fallback.function_name,
            },
            memory_size=memory_size,
            timeout=Duration.seconds(INFERENCE_TIMEOUT_S),  # API Gateway's integration timeout
        ).function
        tables.registry.grant_read_data(self.function)
        bucket.grant_read(self.function, f"{ARTIFACT_PREFIX}*")
        bucket.grant_put(self.function, f"{CAPTURE_PREFIX}*")
        fallback.grant_invoke(self.function)
        acknowledge_grant_wildcards(
            self.function,
            "read the registry table, read model artifacts, put capture samples, invoke the fallback function",
        )

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
