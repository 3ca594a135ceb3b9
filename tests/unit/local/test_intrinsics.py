"""CloudFormation intrinsics resolved as CloudFormation resolves them."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_local.intrinsics import Resolver, TemplateError, references


def resolver(template: dict[str, Any] | None = None, **kwargs: Any) -> Resolver:
    defaults: dict[str, Any] = {
        "stack_name": "s",
        "region": "eu-west-1",
        "account": "123456789012",
        "template": template or {},
        "refs": {"Bucket": "my-bucket"},
        "attributes": {"Bucket": {"Arn": "arn:aws:s3:::my-bucket"}},
        "exports": {"other:Table": "tbl"},
        "stack_outputs": {"other": {"KeyArn": "arn:key"}},
    }
    defaults.update(kwargs)
    return Resolver(**defaults)


def test_ref_getatt_join_and_pseudo_parameters() -> None:
    # GIVEN a resolver with one created bucket
    r = resolver()
    # WHEN a Join mixes Ref, GetAtt (both forms) and pseudo parameters
    value = r.resolve(
        {
            "Fn::Join": [
                "|",
                [
                    {"Ref": "Bucket"},
                    {"Fn::GetAtt": ["Bucket", "Arn"]},
                    {"Fn::GetAtt": "Bucket.Arn"},
                    {"Ref": "AWS::Region"},
                    {"Ref": "AWS::URLSuffix"},
                ],
            ]
        }
    )
    # THEN each part is the created value
    assert value == "my-bucket|arn:aws:s3:::my-bucket|arn:aws:s3:::my-bucket|eu-west-1|amazonaws.com"


def test_sub_with_variables_attributes_and_escapes() -> None:
    # GIVEN a Sub with its own variable, a resource attribute and an escaped literal
    r = resolver()
    # WHEN it is resolved
    value = r.resolve({"Fn::Sub": ["${Name}:${Bucket.Arn}:${AWS::AccountId}:${!Literal}", {"Name": {"Ref": "Bucket"}}]})
    # THEN variables win, attributes and pseudo parameters resolve, ${!x} stays ${x}
    assert value == "my-bucket:arn:aws:s3:::my-bucket:123456789012:${Literal}"


def test_select_split_importvalue_getstackoutput() -> None:
    r = resolver()
    # WHEN cross-stack values are read
    assert r.resolve({"Fn::ImportValue": "other:Table"}) == "tbl"
    assert r.resolve({"Fn::GetStackOutput": {"StackName": "other", "OutputName": "KeyArn", "Region": "x"}}) == "arn:key"
    # THEN Select/Split compose as in CloudFormation
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"


def test_conditions_if_and_novalue() -> None:
    # GIVEN a template whose condition is false
    template = {
        "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        },
    }
    r = resolver(template)
    # WHEN If chooses and NoValue removes a key
    value = r.resolve(
        {
            "A": {"Fn::If": ["IsProd", "big", "small"]},
            "B": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]},
            "C": [{"Fn::If": ["NotProd", "kept", {"Ref": "AWS::NoValue"}]}],
        }
    )
    # THEN the false branch is used and the NoValue entry is gone
    assert value == {"A": "small", "C": ["kept"]}


def test_unknown_references_name_the_stack_and_resource() -> None:
    r = resolver()
    # WHEN a Ref names nothing created
    with pytest.raises(TemplateError, match=r"stack s.*Missing"):
        r.resolve({"Ref": "Missing"}, "Fn (AWS::Lambda::Function)")
    # AND an import nobody exports
    with pytest.raises(TemplateError, match="no stack exports it"):
        r.resolve({"Fn::ImportValue": "nope"})


def test_references_finds_dependencies_in_sub_and_getatt() -> None:
    # GIVEN properties that refer to three resources in three ways
    props = {
        "A": {"Ref": "One"},
        "B": {"Fn::GetAtt": ["Two", "Arn"]},
        "C": {"Fn::Sub": "${Three.Arn}-${AWS::Region}-${!No}"},
    }
    # THEN all three are found (and the escaped literal is not)
    assert references(props) >= {"One", "Two", "Three"}
    assert "No" not in references(props)
