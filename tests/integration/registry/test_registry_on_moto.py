"""The registry and audit behaviour tests, run again on DynamoDB (moto) instead of the fake.

The ``registry`` fixture here (conftest.py) is a DynamoDB-backed registry on tables laid out
exactly as the stacks create them, so conditions, transactions, pagination and number handling
are checked against DynamoDB's semantics, not only against the fake's.
"""

from tests.unit.registry.test_audit_chain import *  # noqa: F403
from tests.unit.registry.test_failures import *  # noqa: F403
from tests.unit.registry.test_model_archive import *  # noqa: F403
from tests.unit.registry.test_registry_behaviour import *  # noqa: F403
from tests.unit.registry.test_specstore_datasets import (  # noqa: F401
    test_a_spec_revision_is_never_overwritten,
    test_dataset_versions_are_recorded_once_and_audited,
    test_missing_specs_are_not_found,
    test_spec_revisions_count_up_and_identical_puts_store_nothing,
)
