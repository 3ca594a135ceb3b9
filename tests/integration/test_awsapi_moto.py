"""mlops.serving.awsapi over real HTTP against moto's server: the same answers as boto3, both ways round."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from mlops.errors import NotFoundError
from mlops.registry.dynamo import DynamoStore
from mlops.registry.tables import Condition, ConditionFailedError, Put, TableSchema
from mlops.registry.versions import Registry
from mlops.serving.awsapi import S3, AwsError, DynamoDB, clients_from_env
from mlops.serving.predictors import S3Artifacts
from mlops_local.testing import create_registry_tables

REGION = "us-east-1"
REGISTRY_TABLE = "awsapi-registry"
AUDIT_TABLE = "awsapi-audit"
BUCKET = "awsapi-artifacts"
ODD_KEY = "models/churn v1/modèle+ü=~.onnx"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def env(endpoint: str) -> dict[str, str]:
    # Every test starts from empty backends (the server lives for the module).
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=5).read()
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "session-token",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


@pytest.fixture
def ours(env: dict[str, str]) -> tuple[DynamoDB, S3]:
    clients = clients_from_env(env)
    assert clients is not None
    return clients


def _boto(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def boto_dynamodb(env: dict[str, str]) -> Any:
    client = _boto("dynamodb", env["AWS_ENDPOINT_URL"])
    create_registry_tables(client, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    return client


@pytest.fixture
def boto_s3(env: dict[str, str]) -> Any:
    client = _boto("s3", env["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    return client


def _plain(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


# ----------------------------------------------------------------------------------------- DynamoDB
ITEMS = [
    {
        "pk": {"S": "MODEL#churn"},
        "sk": {"S": f"VERSION#{n:08d}"},
        "metrics": {"M": {"auc": {"N": f"0.{80 + n}"}, "names": {"L": [{"S": "a"}, {"NULL": True}]}}},
        "blob": {"B": b"\x00\x01raw"},
        "flags": {"SS": ["x", "y"]},
        "ok": {"BOOL": n % 2 == 0},
    }
    for n in range(1, 4)
]


def test_dynamodb_answers_like_boto3(ours: tuple[DynamoDB, S3], boto_dynamodb: Any) -> None:
    # GIVEN items written half by boto3 and half by awsapi
    dynamodb, _ = ours
    boto_dynamodb.put_item(TableName=REGISTRY_TABLE, Item=ITEMS[0])
    for item in ITEMS[1:]:
        wire = {**item, "blob": {"B": "AAFyYXc="}}  # the JSON API carries binary as base64 text
        assert dynamodb.put_item(TableName=REGISTRY_TABLE, Item=wire) == {}
    key = {"pk": ITEMS[1]["pk"], "sk": ITEMS[1]["sk"]}
    query = {
        "TableName": REGISTRY_TABLE,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
        "ExpressionAttributeValues": {":pk": {"S": "MODEL#churn"}, ":v": {"S": "VERSION#"}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }

    # WHEN both clients read them back
    ours_item = dynamodb.get_item(TableName=REGISTRY_TABLE, Key=key, ConsistentRead=True)
    boto_item = boto_dynamodb.get_item(TableName=REGISTRY_TABLE, Key=key, ConsistentRead=True)
    ours_query = dynamodb.query(**query)
    boto_query = boto_dynamodb.query(**query)

    # THEN the answers are the same, binary being base64 on our side and bytes on boto3's
    assert boto_item["Item"] == ITEMS[1]
    assert {**ours_item["Item"], "blob": boto_item["Item"]["blob"]} == boto_item["Item"]
    assert ours_item["Item"]["blob"] == {"B": "AAFyYXc="}
    assert ours_query["Count"] == 3
    assert [i["sk"] for i in ours_query["Items"]] == [i["sk"] for i in _plain(boto_query)["Items"]]
    for mine, theirs in zip(ours_query["Items"], boto_query["Items"], strict=True):
        assert {**mine, "blob": theirs["blob"]} == theirs
    assert {k: v for k, v in ours_query.items() if k != "Items"} == {
        k: v for k, v in _plain(boto_query).items() if k != "Items"
    }


def test_conditional_put_failure_raises_aws_error(ours: tuple[DynamoDB, S3], boto_dynamodb: Any) -> None:
    # GIVEN an existing item
    dynamodb, _ = ours
    item = {"pk": {"S": "MODEL#a"}, "sk": {"S": "MODEL"}}
    dynamodb.put_item(TableName=REGISTRY_TABLE, Item=item)

    # WHEN it is written again on condition it does not exist
    with pytest.raises(AwsError) as raised:
        dynamodb.put_item(TableName=REGISTRY_TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")

    # THEN the error carries the code boto3's ClientError would
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_table_raises_resource_not_found(ours: tuple[DynamoDB, S3]) -> None:
    # GIVEN no tables at all / WHEN one is read / THEN ResourceNotFoundException
    dynamodb, _ = ours
    with pytest.raises(AwsError) as raised:
        dynamodb.get_item(TableName="nope", Key={"pk": {"S": "x"}, "sk": {"S": "y"}})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_dynamo_store_conditions_through_awsapi(ours: tuple[DynamoDB, S3], boto_dynamodb: Any) -> None:
    # GIVEN a DynamoStore on the awsapi client
    dynamodb, _ = ours
    store = DynamoStore(dynamodb, [TableSchema(REGISTRY_TABLE, "pk", "sk")])
    item = {"pk": "MODEL#b", "sk": "MODEL", "n": 1}
    store.write(Put(REGISTRY_TABLE, item, Condition(item_exists=False)))

    # WHEN the same conditional put is repeated, alone and inside a transaction
    # THEN both are told apart as condition failures (by code and cancellation reasons)
    with pytest.raises(ConditionFailedError):
        store.write(Put(REGISTRY_TABLE, item, Condition(item_exists=False)))
    other = {"pk": "MODEL#c", "sk": "MODEL"}
    with pytest.raises(ConditionFailedError) as raised:
        store.transact([Put(REGISTRY_TABLE, other), Put(REGISTRY_TABLE, item, Condition(item_exists=False))])
    assert raised.value.failed == (1,)
    assert store.get(REGISTRY_TABLE, {"pk": "MODEL#c", "sk": "MODEL"}) is None
    assert store.get(REGISTRY_TABLE, {"pk": "MODEL#b", "sk": "MODEL"}) == item


def test_registry_works_the_same_on_either_client(ours: tuple[DynamoDB, S3], boto_dynamodb: Any) -> None:
    # GIVEN one registry on boto3 and one on awsapi, over the same tables
    dynamodb, _ = ours
    with_boto = Registry.for_dynamodb(boto_dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    with_ours = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    digest = hashlib.sha256(b"model").hexdigest()

    # WHEN each registers a version, ours approves boto3's and makes it champion
    first = with_boto.register_version(
        "churn", actor="alice", metrics={"auc": 0.91}, artifact_uri="s3://b/k", artifact_sha256=digest
    )
    second = with_ours.register_version("churn", actor="bob", metrics={"auc": 0.5}, params={"depth": 3})
    with_ours.approve("churn", first.version, actor="carol")
    with_ours.set_alias("churn", "champion", first.version, actor="carol")

    # THEN numbers are consecutive, each client reads what the other wrote, and the chain holds
    assert (first.version, second.version) == (1, 2)
    assert with_ours.get_version("churn", 1) == with_boto.get_version("churn", 1)
    assert with_boto.get_version("churn", 2) == second
    assert with_boto.get_by_alias("churn", "champion").artifact_sha256 == digest
    assert with_ours.get_model("churn") == with_boto.get_model("churn")
    assert list(with_ours.iter_versions("churn")) == list(with_boto.iter_versions("churn"))
    assert with_boto.audit.verify("churn").ok
    with pytest.raises(NotFoundError):
        with_ours.get_version("churn", 3)


# ----------------------------------------------------------------------------------------------- S3
@pytest.mark.parametrize("key", ["plain/model.onnx", ODD_KEY])
def test_s3_round_trip_both_ways(ours: tuple[DynamoDB, S3], boto_s3: Any, key: str) -> None:
    # GIVEN bytes of every value, written by awsapi under one key and by boto3 under another
    _, s3 = ours
    body = bytes(range(256)) * 3
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/octet-stream")
    boto_s3.put_object(Bucket=BUCKET, Key=key + ".boto", Body=body, ContentType="application/x-onnx")

    # WHEN each client reads the other's object
    ours_read = s3.get_object(Bucket=BUCKET, Key=key + ".boto")
    boto_read = boto_s3.get_object(Bucket=BUCKET, Key=key)

    # THEN the bytes and content types survive, under exactly the key given
    assert ours_read["Body"].read() == body
    assert ours_read["ContentType"] == "application/x-onnx"
    assert ours_read["ContentLength"] == len(body)
    assert boto_read["Body"].read() == body
    assert boto_read["ContentType"] == "application/octet-stream"
    listed = {o["Key"] for o in boto_s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert listed == {key, key + ".boto"}


def test_s3_empty_object(ours: tuple[DynamoDB, S3], boto_s3: Any) -> None:
    # GIVEN an empty object written by awsapi / WHEN read by both / THEN empty for both
    _, s3 = ours
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    assert s3.get_object(Bucket=BUCKET, Key="empty")["Body"].read() == b""
    assert boto_s3.get_object(Bucket=BUCKET, Key="empty")["ContentLength"] == 0


def test_s3_missing_key(ours: tuple[DynamoDB, S3], boto_s3: Any) -> None:
    # GIVEN a bucket without the key
    _, s3 = ours

    # WHEN it is read directly and as an artifact
    # THEN NoSuchKey as boto3 offers it, and the artifact reader's NotFoundError
    with pytest.raises(s3.exceptions.NoSuchKey) as raised:
        s3.get_object(Bucket=BUCKET, Key="missing")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(NotFoundError, match="does not exist"):
        S3Artifacts(s3).read(f"s3://{BUCKET}/missing")


def test_s3_artifacts_read_through_awsapi(ours: tuple[DynamoDB, S3], boto_s3: Any) -> None:
    # GIVEN an artifact uploaded by boto3 under an awkward key
    _, s3 = ours
    boto_s3.put_object(Bucket=BUCKET, Key=ODD_KEY, Body=b"onnx bytes")

    # WHEN the inference's artifact reader reads it with awsapi / THEN the same bytes
    assert S3Artifacts(s3).read(f"s3://{BUCKET}/{ODD_KEY}") == b"onnx bytes"


def test_s3_missing_bucket_is_not_no_such_key(ours: tuple[DynamoDB, S3], env: dict[str, str]) -> None:
    # GIVEN no bucket at all / WHEN an object is read / THEN NoSuchBucket, not a missing key
    _, s3 = ours
    with pytest.raises(AwsError) as raised:
        s3.get_object(Bucket="no-such-bucket", Key="k")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"
    assert not isinstance(raised.value, s3.exceptions.NoSuchKey)


def test_s3_bucket_with_default_kms_encryption(ours: tuple[DynamoDB, S3], env: dict[str, str]) -> None:
    # GIVEN a bucket encrypted by default with a KMS key
    _, s3 = ours
    endpoint = env["AWS_ENDPOINT_URL"]
    key_id = _boto("kms", endpoint).create_key()["KeyMetadata"]["KeyId"]
    boto_s3 = _boto("s3", endpoint)
    boto_s3.create_bucket(Bucket="encrypted-bucket")
    boto_s3.put_bucket_encryption(
        Bucket="encrypted-bucket",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]
        },
    )

    # WHEN awsapi writes and reads an object there
    s3.put_object(Bucket="encrypted-bucket", Key="capture/1.json", Body=b'{"x": 1}', ContentType="application/json")
    read = s3.get_object(Bucket="encrypted-bucket", Key="capture/1.json")

    # THEN the object is stored encrypted with that key and reads back unchanged
    assert read["Body"].read() == b'{"x": 1}'
    head = boto_s3.head_object(Bucket="encrypted-bucket", Key="capture/1.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]


# ------------------------------------------------------------------------------------------------
# The wire codec: the typed items mlops.serving.awsapi sends and reads are boto3's, for every type
# DynamoDB has. boto3's TypeSerializer makes the attribute values; awsapi carries them as DynamoDB's
# wire JSON, where a binary value is base64 text (botocore encodes and decodes it; awsapi leaves it).
_NUMBER = st.decimals(min_value=Decimal("-1e30"), max_value=Decimal("1e30"), allow_nan=False, places=6) | st.integers(
    min_value=-(10**37), max_value=10**37
)
_SCALAR = st.none() | st.booleans() | st.text(max_size=12) | st.binary(min_size=1, max_size=12) | _NUMBER
_SET = (
    st.sets(st.text(max_size=8), min_size=1, max_size=4)
    | st.sets(st.binary(min_size=1, max_size=8), min_size=1, max_size=4)
    | st.sets(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=4)
)
# Map keys are never empty here: moto's server mangles a map whose key is "" (DynamoDB allows it).
_VALUE = st.recursive(
    _SCALAR | _SET,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
    max_leaves=12,
)
_ITEM = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "pk"), _VALUE, max_size=5)
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
CODEC_TABLE = "awsapi-codec"


def _wire(typed: Mapping[str, Any], to_text: bool = True) -> dict[str, Any]:
    """One attribute value as DynamoDB's wire JSON carries it (binary as base64 text), or back."""
    ((kind, value),) = typed.items()
    code = (lambda b: base64.b64encode(bytes(b)).decode()) if to_text else base64.b64decode
    if kind == "B":
        return {kind: code(value)}
    if kind == "BS":
        return {kind: [code(b) for b in value]}
    if kind == "M":
        return {kind: {k: _wire(v, to_text) for k, v in value.items()}}
    if kind == "L":
        return {kind: [_wire(v, to_text) for v in value]}
    return {kind: value}


def _wire_item(item: Mapping[str, Any], to_text: bool = True) -> dict[str, Any]:
    return {k: _wire(v, to_text) for k, v in item.items()}


def _python(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


def test_items_of_every_type_cross_both_clients_unchanged(ours: tuple[DynamoDB, S3], boto_dynamodb: Any) -> None:
    dynamodb, _ = ours
    boto_dynamodb.create_table(
        TableName=CODEC_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    counter = iter(range(10**6))

    @settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(item=_ITEM)
    def cross(item: dict[str, Any]) -> None:
        # GIVEN an item of numbers (Decimal and int), strings, binary, sets, lists, maps, nulls and bools,
        # as boto3's TypeSerializer writes it
        n = next(counter)
        typed = {k: _SERIALIZER.serialize(v) for k, v in item.items()}
        expected = _python(typed)
        # WHEN awsapi writes it and boto3 reads it
        dynamodb.put_item(TableName=CODEC_TABLE, Item={**_wire_item(typed), "pk": {"S": f"a{n}"}})
        by_boto = boto_dynamodb.get_item(TableName=CODEC_TABLE, Key={"pk": {"S": f"a{n}"}}, ConsistentRead=True)
        # THEN boto3's TypeDeserializer reads back the item boto3 would have written
        assert _python({k: v for k, v in by_boto["Item"].items() if k != "pk"}) == expected
        # AND the other way round: boto3 writes, awsapi reads the same values
        boto_dynamodb.put_item(TableName=CODEC_TABLE, Item={**typed, "pk": {"S": f"b{n}"}})
        by_ours = dynamodb.get_item(TableName=CODEC_TABLE, Key={"pk": {"S": f"b{n}"}}, ConsistentRead=True)
        assert by_ours["Item"] == {**_wire_item(by_boto["Item"]), "pk": {"S": f"b{n}"}}
        assert _python(_wire_item({k: v for k, v in by_ours["Item"].items() if k != "pk"}, to_text=False)) == expected

    cross()
