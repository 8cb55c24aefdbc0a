"""ManifestGenerator: the request we send and the filter the local engine applies."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jupyter_remote.s3batch_generator import GeneratorError, _Filter, generator_request
from jupyter_remote.spec.s3batch import validate_create_job_request

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
COLD = "raw/cold.png"


def obj(key: str, size: int = 10, day: int = 1, storage: str = "STANDARD") -> dict:
    return {
        "Key": key,
        "Size": size,
        "LastModified": T0.replace(day=day),
        "StorageClass": storage,
    }


def test_generator_request_is_a_valid_create_job_member():
    generator = generator_request(
        source_bucket="photos", prefix="raw/", output_bucket="staging", output_prefix="jr/m/"
    )
    inner = generator["S3JobManifestGenerator"]
    assert inner["SourceBucket"] == "arn:aws:s3:::photos"
    assert inner["EnableManifestOutput"] is True
    assert inner["ManifestOutputLocation"] == {
        "Bucket": "arn:aws:s3:::staging",
        "ManifestPrefix": "jr/m",
        "ManifestFormat": "S3InventoryReport_CSV_20211130",
    }
    assert inner["Filter"] == {"KeyNameConstraint": {"MatchAnyPrefix": ["raw/"]}}
    request = {
        "AccountId": "123456789012",
        "ConfirmationRequired": False,
        "Operation": {
            "LambdaInvoke": {
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:1",
                "InvocationSchemaVersion": "2.0",
            }
        },
        "Report": {"Enabled": False},
        "ClientRequestToken": "t",
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "ManifestGenerator": generator,
    }
    validate_create_job_request(request)
    assert (
        "Filter"
        not in generator_request(
            source_bucket="b", prefix="", output_bucket="s", output_prefix="p"
        )["S3JobManifestGenerator"]
    )


@pytest.mark.parametrize(
    ("spec", "admitted"),
    [
        ({}, {"raw/a.png", "raw/b.jpg", "other/c.png", "raw/big.png", "raw/cold.png"}),
        (
            {"KeyNameConstraint": {"MatchAnyPrefix": ["raw/"]}},
            {"raw/a.png", "raw/b.jpg", "raw/big.png", "raw/cold.png"},
        ),
        (
            {"KeyNameConstraint": {"MatchAnyPrefix": ["raw/"], "MatchAnySuffix": [".png"]}},
            {"raw/a.png", "raw/big.png", "raw/cold.png"},
        ),
        ({"KeyNameConstraint": {"MatchAnySubstring": ["b"]}}, {"raw/b.jpg", "raw/big.png"}),
        ({"ObjectSizeGreaterThanBytes": 10}, {"raw/big.png"}),
        (
            {"ObjectSizeLessThanBytes": 11},
            {"raw/a.png", "raw/b.jpg", "other/c.png", "raw/cold.png"},
        ),
        ({"CreatedAfter": T0.replace(day=2)}, {"raw/b.jpg"}),
        ({"CreatedBefore": "2026-01-02T00:00:00Z"}, {"raw/a.png", "other/c.png", "raw/big.png"}),
        ({"MatchAnyStorageClass": ["GLACIER"]}, {"raw/cold.png"}),
    ],
)
def test_filter_admits_what_each_rule_says(spec, admitted):
    objects = [
        obj("raw/a.png"),
        obj("raw/b.jpg", day=3),
        obj("other/c.png"),
        obj("raw/big.png", size=1000),
        obj("raw/cold.png", storage="GLACIER", day=2),
    ]
    rules = _Filter(spec)
    assert {o["Key"] for o in objects if rules.admits(o)} == admitted


def test_one_prefix_narrows_the_listing_several_do_not():
    assert _Filter({"KeyNameConstraint": {"MatchAnyPrefix": ["raw/"]}}).list_prefix == "raw/"
    assert _Filter({"KeyNameConstraint": {"MatchAnyPrefix": ["a/", "b/"]}}).list_prefix == ""


def test_filters_a_listing_cannot_answer_are_a_job_failure():
    with pytest.raises(GeneratorError, match="MatchAnyObjectEncryption") as info:
        _Filter({"MatchAnyObjectEncryption": [{"SSE-S3": {}}]})
    assert info.value.code == "UnsupportedFilter"
