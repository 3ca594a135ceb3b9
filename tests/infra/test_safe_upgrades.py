"""Safe upgrades: no change replaces the data bucket, a table, the key or another stateful resource.

The synthesized app is compared with the committed baseline (tests/infra/stateful_baseline.json,
see tests/infra/stateful_baseline.py for what counts as stateful and why). A removed or renamed
logical id, a changed type or a changed replacement-causing property fails with the resource named;
so does a new stateful resource missing from the baseline (the baseline stays complete, so every
stateful resource is protected from the moment it is recorded). Regenerate deliberately with
``make upgrade-baseline``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.infra.conftest import Synthesized, cdk_context
from tests.infra.stateful_baseline import (
    REGENERATE,
    STATEFUL_TYPES,
    Comparison,
    compare,
    load_baseline,
    stateful_resources,
)


def _current(synthesized: Synthesized) -> dict[str, dict[str, dict[str, Any]]]:
    """The stateful resources of the environments in cdk.json (not the test-only variants)."""
    stage_names = {synthesized.stages[env].config.stage_name for env in cdk_context()["mlops:environments"]}
    templates = {
        artifact.stack_name: artifact.template
        for artifact in synthesized.assembly.stacks_recursively
        if artifact.hierarchical_id.split("/")[0] in stage_names
    }
    return stateful_resources(templates)


# ---------------------------------------------------------------- the app against the baseline


def test_no_stateful_resource_would_be_replaced(synthesized: Synthesized) -> None:
    # GIVEN the committed baseline  WHEN the app is synthesized  THEN nothing stateful is replaced
    comparison = compare(load_baseline()["stacks"], _current(synthesized))
    assert comparison.safe, comparison.report()


def test_baseline_records_every_stateful_resource(synthesized: Synthesized) -> None:
    comparison = compare(load_baseline()["stacks"], _current(synthesized))
    assert not comparison.added, comparison.report()


def test_baseline_covers_every_environment_in_cdk_json() -> None:
    assert load_baseline()["environments"] == sorted(cdk_context()["mlops:environments"]), (
        f"cdk.json's environments changed: {REGENERATE}"
    )


def test_baseline_holds_the_key_the_data_bucket_and_both_tables() -> None:
    # The guard is only as good as its list: each environment's stateful stack is in it.
    stacks = load_baseline()["stacks"]
    for env in cdk_context()["mlops:environments"]:
        types = sorted(r["type"] for r in stacks[f"mlops-{env}-stateful"].values())
        # data key and audit signing key; data, access-log and audit digest buckets
        assert types == ["AWS::DynamoDB::Table"] * 2 + ["AWS::KMS::Key"] * 2 + ["AWS::S3::Bucket"] * 3


def test_data_is_retained_where_the_config_says_retain(synthesized: Synthesized) -> None:
    # cdk.json's removal_policy: "retain" must give Retain on every data resource (bucket, table,
    # key), on deletion and on replacement; "destroy" (dev) lets them go with the stack.
    environments = cdk_context()["mlops:environments"]
    current = _current(synthesized)
    checked = 0
    for env, settings_ in environments.items():
        if settings_["removal_policy"] != "retain":
            continue
        for stack, resources in current.items():
            if not stack.startswith(f"mlops-{env}-"):
                continue
            for logical_id, resource in resources.items():
                if not STATEFUL_TYPES[resource["type"]].data:
                    continue
                checked += 1
                for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                    assert resource[policy] == "Retain", f"{stack}/{logical_id}: {policy} is {resource[policy]}"
    assert checked >= 5  # prod: key, data bucket, access-log bucket, registry and audit tables


@pytest.mark.parametrize("resource_type", sorted(STATEFUL_TYPES))
def test_replacement_properties_cover_cloudformation_create_only_properties(resource_type: str) -> None:
    # CloudFormation's resource schema (as cfn-lint ships it) marks create-only properties: changing
    # one replaces the resource. Our list must hold every one of them.
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    create_only = {path.split("/")[2] for path in schema.get("createOnlyProperties", [])}
    assert create_only <= set(STATEFUL_TYPES[resource_type].replacement_properties)


# ---------------------------------------------------------------- the comparison itself


def _template() -> dict[str, Any]:
    """A small template shaped like the stateful stack's."""
    retain = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    return {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True, "KeyPolicy": {}}, **retain},
            "DataBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"VersioningConfiguration": {"Status": "Enabled"}, "Tags": []},
                **retain,
            },
            "DataBucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": []}}},
            "Registry": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                        {"AttributeName": "gsi1pk", "AttributeType": "S"},
                    ],
                    "GlobalSecondaryIndexes": [
                        {"IndexName": "gsi1", "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}]}
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                },
                **retain,
            },
        }
    }


def _compare(before: dict[str, Any], after: dict[str, Any]) -> Comparison:
    baseline = stateful_resources({"mlops-test-stateful": before})
    return compare(baseline, stateful_resources({"mlops-test-stateful": after}))


def test_an_unchanged_template_is_safe() -> None:
    comparison = _compare(_template(), _template())
    assert comparison.safe and not comparison.added and comparison.report() == ""


def test_a_renamed_bucket_logical_id_is_a_replacement() -> None:
    after = _template()
    after["Resources"]["DataBucketRenamed"] = after["Resources"].pop("DataBucket")
    comparison = _compare(_template(), after)
    assert not comparison.safe
    [finding] = comparison.replacements
    assert "mlops-test-stateful/DataBucket (AWS::S3::Bucket)" in finding
    assert "logical id DataBucket is gone" in finding and "DataBucketRenamed" in finding
    assert "its objects stay in the old bucket" in finding
    assert REGENERATE in comparison.report()


def test_a_changed_table_key_schema_is_a_replacement() -> None:
    after = _template()
    after["Resources"]["Registry"]["Properties"]["KeySchema"][1]["AttributeName"] = "gsi1pk"
    # The sort key becomes gsi1pk: the key schema changes, and so do the key attributes' definitions.
    definitions, key_schema = _compare(_template(), after).replacements
    assert "mlops-test-stateful/Registry (AWS::DynamoDB::Table): KeySchema changes from" in key_schema
    assert '"AttributeName": "gsi1pk"' in key_schema and "aws-resource-dynamodb-table.html" in key_schema
    assert "Registry (AWS::DynamoDB::Table): AttributeDefinitions changes" in definitions


def test_a_changed_key_attribute_type_is_a_replacement() -> None:
    after = _template()
    after["Resources"]["Registry"]["Properties"]["AttributeDefinitions"][1]["AttributeType"] = "N"
    [finding] = _compare(_template(), after).replacements
    assert "Registry (AWS::DynamoDB::Table): AttributeDefinitions changes" in finding


def test_a_changed_key_spec_is_reported() -> None:
    after = _template()
    after["Resources"]["Key"]["Properties"]["KeySpec"] = "RSA_4096"
    [finding] = _compare(_template(), after).replacements
    assert 'Key (AWS::KMS::Key): KeySpec changes from (not set) to "RSA_4096"' in finding
    assert "can no longer be decrypted" in finding


def test_naming_a_bucket_is_a_replacement() -> None:
    after = _template()
    after["Resources"]["DataBucket"]["Properties"]["BucketName"] = "mlops-data"
    assert "BucketName changes" in _compare(_template(), after).replacements[0]


def test_a_changed_type_is_a_replacement() -> None:
    after = _template()
    after["Resources"]["Registry"]["Type"] = "AWS::DynamoDB::GlobalTable"
    comparison = _compare(_template(), after)
    # The GlobalTable is not a stateful type here, so the table's logical id is gone from the list.
    assert any("Registry" in line for line in comparison.replacements)


def test_dropping_retain_is_reported() -> None:
    after = _template()
    after["Resources"]["DataBucket"]["DeletionPolicy"] = "Delete"
    comparison = _compare(_template(), after)
    assert not comparison.safe and not comparison.replacements
    assert comparison.unprotected == [
        "mlops-test-stateful/DataBucket (AWS::S3::Bucket): DeletionPolicy changes from Retain to Delete"
    ]


def test_a_removed_stack_is_reported() -> None:
    baseline = stateful_resources({"mlops-test-stateful": _template()})
    comparison = compare(baseline, {})
    assert len(comparison.replacements) == 3
    assert all("stack mlops-test-stateful is no longer synthesized" in line for line in comparison.replacements)


def test_tag_policy_and_index_changes_are_safe() -> None:
    # Tags, the bucket policy, the key policy, versioning, a new global secondary index and
    # billing: all updated in place.
    after = _template()
    resources = after["Resources"]
    resources["DataBucket"]["Properties"]["Tags"] = [{"Key": "team", "Value": "ml"}]
    resources["DataBucket"]["Properties"]["LifecycleConfiguration"] = {"Rules": []}
    resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"].append({"Effect": "Deny"})
    resources["Key"]["Properties"]["KeyPolicy"] = {"Statement": [{"Effect": "Allow"}]}
    registry = resources["Registry"]["Properties"]
    registry["AttributeDefinitions"].append({"AttributeName": "gsi2pk", "AttributeType": "S"})
    registry["GlobalSecondaryIndexes"].append(
        {"IndexName": "gsi2", "KeySchema": [{"AttributeName": "gsi2pk", "KeyType": "HASH"}]}
    )
    registry["BillingMode"] = "PROVISIONED"
    comparison = _compare(_template(), after)
    assert comparison.safe and not comparison.added, comparison.report()


def test_a_new_stateful_resource_is_an_addition_not_a_replacement() -> None:
    after = _template()
    after["Resources"]["DigestBucket"] = {"Type": "AWS::S3::Bucket", "Properties": {"ObjectLockEnabled": True}}
    comparison = _compare(_template(), after)
    assert comparison.safe
    assert comparison.added == ["mlops-test-stateful/DigestBucket (AWS::S3::Bucket)"]


# Every replacement-causing name of every type (on another type it is an ordinary property).
# AttributeDefinitions is left out: only its key attributes' entries matter, tested above.
_REPLACEMENT_NAMES = sorted(
    {name for kind in STATEFUL_TYPES.values() for name in kind.replacement_properties} - {"AttributeDefinitions"}
)
_MUTABLE = {
    "AWS::S3::Bucket": "DataBucket",
    "AWS::KMS::Key": "Key",
    "AWS::DynamoDB::Table": "Registry",
}


@settings(max_examples=60, deadline=None)
@given(
    target=st.sampled_from(sorted(_MUTABLE)),
    name=st.sampled_from(_REPLACEMENT_NAMES)
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20).filter(
        lambda n: n != "AttributeDefinitions"
    ),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
)
def test_any_non_replacement_property_change_is_safe_and_any_replacement_one_is_not(
    target: str, name: str, value: Any
) -> None:
    # Metamorphic: setting a property to a new value is a replacement exactly when the property
    # is one of the type's replacement-causing ones (and the value differs from what was there).
    before = _template()
    after = copy.deepcopy(before)
    properties = after["Resources"][_MUTABLE[target]]["Properties"]
    old = properties.get(name)
    properties[name] = value
    comparison = _compare(before, after)
    recorded = name in STATEFUL_TYPES[target].replacement_properties
    replaced = recorded and old != value
    assert comparison.safe is not replaced, comparison.report()
    assert not comparison.added
