"""The registry and audit behaviour tests, run again on DynamoDB (moto) instead of the fake.

The ``registry`` fixture here (conftest.py) is a DynamoDB-backed registry on tables laid out
exactly as the stacks create them, so conditions, transactions, pagination and number handling
are checked against DynamoDB's semantics, not only against the fake's.
"""

from tests.unit.registry.test_audit_chain import *  # noqa: F403
from tests.unit.registry.test_registry_behaviour import *  # noqa: F403
