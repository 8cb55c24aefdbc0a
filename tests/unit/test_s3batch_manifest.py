"""Manifest reading: streamed lines, rows, malformed rows as failures, key encoding."""

from __future__ import annotations

import io

import pytest

from jupyter_remote.s3batch_manifest import (
    count_rows,
    encode_key,
    iter_lines,
    parse_rows,
)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_lines_survive_any_chunk_boundary(chunk):
    text = "b,caf%C3%A9\r\nb,日本.png\n\nb,last"
    lines = list(iter_lines(io.BytesIO(text.encode()), chunk))
    assert lines == ["b,caf%C3%A9", "b,日本.png", "", "b,last"]


def test_lines_keep_their_ends_for_csv_and_split_only_on_newline():
    text = "a\u2028b,c\r\nd\n"
    assert list(iter_lines(io.BytesIO(text.encode()), 3, keepends=True)) == [
        "a\u2028b,c\r\n",
        "d\n",
    ]


def test_rows_with_and_without_versions():
    rows = list(parse_rows(["bkt,k%20one", "bkt,k2"], ("Bucket", "Key")))
    assert [(r.index, r.bucket, r.key, r.version, r.error) for r in rows] == [
        (0, "bkt", "k%20one", None, ""),
        (1, "bkt", "k2", None, ""),
    ]
    (row,) = parse_rows(["bucket,key,v1"], ("Bucket", "Key", "VersionId"))
    assert row.version == "v1"
    (row,) = parse_rows(["x,key,bucket"], ("Ignore", "Key", "Bucket"))
    assert (row.bucket, row.key) == ("bucket", "key")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("justonefield", "has 1 field(s)"),
        ("bkt,a,comma", "has 3 field(s)"),
        ("b,key", "is not a bucket name"),
        ("BAD BUCKET!,key", "is not a bucket name"),
        ("bucket,", "empty key"),
        ('bucket,"unterminated', ""),
    ],
)
def test_malformed_rows_carry_an_error_and_do_not_stop_the_rest(line, message):
    rows = list(parse_rows(["good,k1", line, "good,k3"], ("Bucket", "Key")))
    assert [r.index for r in rows] == [0, 1, 2]
    assert rows[0].error == "" and rows[2].error == ""
    if message:
        assert message in rows[1].error and "row 2" in rows[1].error


def test_blank_lines_are_not_tasks():
    assert count_rows(["a,b", "", "  ", "c,d"]) == 2
    assert len(list(parse_rows(["a1,b", "", "c1,d"], ("Bucket", "Key")))) == 2


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("raw/a b.png", "raw/a%20b.png"),
        ("raw/x+y.png", "raw/x%2By.png"),
        ("raw/50%.png", "raw/50%25.png"),
        ("raw/café,1.png", "raw/caf%C3%A9%2C1.png"),
    ],
)
def test_keys_are_url_encoded_for_manifests(key, encoded):
    from urllib.parse import unquote

    assert encode_key(key) == encoded
    assert unquote(encoded) == key
