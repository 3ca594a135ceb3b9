"""The registry's moto fixtures (tables exactly as the stacks declare them), shared with these tests."""

from tests.integration.registry.conftest import aws, dynamodb

__all__ = ["aws", "dynamodb"]
