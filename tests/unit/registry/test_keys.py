"""Every table key is pinned to the exact string it had before the keys got one module: a changed
key orphans every item stored under the old one, so a change here must be deliberate."""

from __future__ import annotations

from mlops.registry import keys
from mlops.registry.tables import TableSchema

SHA = "ab" * 32


def test_registry_table_item_keys_are_unchanged() -> None:
    assert keys.model_pk("churn") == "MODEL#churn"
    assert keys.meta_key("churn") == {"pk": "MODEL#churn", "sk": "META"}
    assert keys.version_key("churn", 42) == {"pk": "MODEL#churn", "sk": "VERSION#0000000042"}
    assert keys.spec_key("churn", 3) == {"pk": "MODEL#churn", "sk": "SPEC#000003"}
    assert keys.dataset_key("churn", "v1.a") == {"pk": "MODEL#churn", "sk": "DATASET#v1.a"}
    assert keys.upload_key("churn", SHA, "2026-01-02T03:04:05.000006Z", "req-1") == {
        "pk": "MODEL#churn",
        "sk": f"UPLOAD#{SHA}#2026-01-02T03:04:05.000006Z#req-1",
    }
    assert keys.approval_key("churn", 7) == {"pk": "MODEL#churn", "sk": "APPROVAL#0000000007"}
    assert keys.rollout_key("churn") == {"pk": "MODEL#churn", "sk": "ROLLOUT#current"}
    assert keys.monitor_key("churn") == {"pk": "MODEL#churn", "sk": "MONITOR"}
    assert keys.monitor_run_key("churn", "2026-01-02T03:04:05Z", "run-9") == {
        "pk": "MODEL#churn",
        "sk": "MONITOR#RUN#2026-01-02T03:04:05Z#run-9",
    }
    assert keys.training_run_key("churn", "exec-1") == {"pk": "MODEL#churn", "sk": "RUN#exec-1"}
    assert keys.anchor_key("churn") == {"pk": "AUDIT#churn", "sk": "HEAD"}


def test_query_conditions_and_index_entries_are_unchanged() -> None:
    assert keys.model_items("churn") == ("pk", "MODEL#churn")
    assert keys.model_partition("churn") == {"pk": "MODEL#churn"}
    assert keys.sk_prefix(keys.VERSION_SK_PREFIX) == ("sk", "VERSION#")
    assert keys.sk_prefix(keys.SPEC_SK_PREFIX) == ("sk", "SPEC#")
    assert keys.sk_prefix(keys.DATASET_SK_PREFIX) == ("sk", "DATASET#")
    assert keys.sk_prefix(keys.MONITOR_RUN_SK_PREFIX) == ("sk", "MONITOR#RUN#")
    assert keys.upload_prefix(SHA) == f"UPLOAD#{SHA}#"
    assert keys.models_index_entry("churn") == {"gsi1pk": "MODELS", "gsi1sk": "churn"}
    assert keys.models_index() == ("gsi1pk", "MODELS")
    assert keys.models_index_partition() == {"gsi1pk": "MODELS"}
    assert keys.anchors_index_entry("churn") == {"gsi1pk": "AUDIT_CHAINS", "gsi1sk": "churn"}
    assert keys.anchors_index() == ("gsi1pk", "AUDIT_CHAINS")


def test_audit_table_keys_are_unchanged() -> None:
    assert keys.audit_event_key("churn", 5) == {"pk": "churn", "seq": 5}
    assert keys.audit_partition("_platform") == {"pk": "_platform"}
    assert keys.audit_events("churn") == ("pk", "churn")


def test_table_schemas_are_unchanged() -> None:
    assert keys.registry_schema("r") == TableSchema("r", "pk", "sk", indexes={"gsi1": ("gsi1pk", "gsi1sk")})
    assert keys.audit_schema("a") == TableSchema("a", "pk", "seq", sk_type="N")


def test_sort_keys_order_versions_numerically() -> None:
    """Zero padding is what makes a newest-first query return version 10 before version 9."""
    assert keys.version_key("m", 10)["sk"] > keys.version_key("m", 9)["sk"]
    assert keys.spec_key("m", 10)["sk"] > keys.spec_key("m", 9)["sk"]
    assert keys.approval_key("m", 10)["sk"] > keys.approval_key("m", 9)["sk"]
