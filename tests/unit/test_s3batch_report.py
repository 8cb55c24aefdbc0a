"""Completion reports: AWS's layout, column order, scope, and the reader's table."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re

from jupyter_remote import s3batch_report as report


class FakeS3:
    """Just the calls the report code makes, in memory."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def upload_file(self, path, bucket, key):
        with open(path, "rb") as handle:
            self.objects[bucket, key] = handle.read()

    def put_object(self, Bucket, Key, Body):
        self.objects[Bucket, Key] = Body

    def get_object(self, Bucket, Key):
        return {"Body": io.BytesIO(self.objects[Bucket, Key])}


def write(tmp_path, scope="AllTasks"):
    writer = report.ReportWriter(tmp_path / "report", scope)
    writer.add("photos", "raw/a%20b.png", None, True, "", '{"w": 1, "h": 2}')
    writer.add(
        "photos", "raw/x%2By.png", "v1", False, "PermanentFailure", 'ValueError: "bad", very'
    )
    writer.add("photos", "raw/ok.png", None, True, "", "null")
    return writer.close()


def test_layout_index_and_rows_match_the_documented_format(tmp_path):
    client = FakeS3()
    files = write(tmp_path)
    now = dt.datetime(2024, 5, 6, 7, 8, 9, 725000, tzinfo=dt.timezone.utc)
    key = report.publish(client, files, bucket="rep", prefix="p/q/", job_id="j1", now=now)
    assert key == "p/q/job-j1/manifest.json"
    index = json.loads(client.objects["rep", key])
    assert index["Format"] == "Report_CSV_20180820"
    assert index["ReportCreationDate"] == "2024-05-06T07:08:09.725Z"
    assert index["ReportSchema"] == (
        "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    )
    assert [r["TaskExecutionStatus"] for r in index["Results"]] == ["succeeded", "failed"]
    for result in index["Results"]:
        assert result["Bucket"] == "rep"
        assert re.fullmatch(r"p/q/job-j1/results/[0-9a-f]{40}\.csv", result["Key"])
        body = client.objects["rep", result["Key"]]
        assert result["MD5Checksum"] == hashlib.md5(body).hexdigest()
    failed = client.objects["rep", index["Results"][1]["Key"]].decode()
    # Example order (HTTPStatusCode before ErrorCode), RFC-4180 quoting, no header.
    assert (
        failed
        == 'photos,raw/x%2By.png,v1,failed,200,PermanentFailure,"ValueError: ""bad"", very"\n'
    )
    rows = list(csv.reader(io.StringIO(client.objects["rep", index["Results"][0]["Key"]].decode())))
    assert rows[0] == ["photos", "raw/a%20b.png", "", "succeeded", "200", "", '{"w": 1, "h": 2}']


def test_failed_tasks_only_scope(tmp_path):
    files = write(tmp_path, "FailedTasksOnly")
    assert [status for status, _ in files] == ["failed"]


def test_reader_returns_the_table_with_decoded_keys(tmp_path):
    client = FakeS3()
    report.publish(client, write(tmp_path), bucket="rep", prefix="", job_id="j2")
    index = report.read_index(client, "rep", "", "j2")
    table = report.to_table(report.table_rows(report.iter_rows(client, index)))
    assert list(table.columns) == list(report.TABLE_COLUMNS)
    records = table.to_dict("records")
    assert [r["key"] for r in records] == ["raw/a b.png", "raw/ok.png", "raw/x+y.png"]
    assert records[0]["status"] == "Succeeded" and json.loads(records[0]["result"]) == {
        "w": 1,
        "h": 2,
    }
    assert records[2]["status"] == "PermanentFailure"
    assert records[2]["error"] == 'ValueError: "bad", very' and records[2]["version"] == "v1"


def test_reader_places_columns_by_content():
    aws_order = ["b", "k", "", "failed", "200", "PermanentFailure", "m"]
    schema_order = ["b", "k", "", "failed", "PermanentFailure", "200", "m"]
    assert report.parse_row(aws_order) == report.parse_row(schema_order)
    assert report.parse_row(aws_order)["ErrorCode"] == "PermanentFailure"


def test_table_without_pandas_is_a_list_of_dicts(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    rows = [
        {
            "bucket": "b",
            "key": "k",
            "version": None,
            "status": "Succeeded",
            "result": "1",
            "error": None,
        }
    ]
    assert report.to_table(rows) == rows
