"""``%%s3batch --manifest-generator``: the job lists the bucket itself (local engine, shell)."""

from __future__ import annotations

import contextlib
import gzip
import json

import pytest

pytestmark = pytest.mark.timeout(120)

CELL = """%%s3batch --bucket photos --prefix gen/ --manifest-generator --no-widgets --output-var t
def process(bucket, key):
    if key.endswith("bad.txt"):
        raise ValueError("bad " + key)
    return key.upper()
"""


@pytest.fixture
def s3(shell):
    import jupyter_remote
    from jupyter_remote.magics_s3batch import S3BatchMagics

    if "s3batch" not in shell.magics_manager.magics["cell"]:
        shell.register_magics(S3BatchMagics)
    client = jupyter_remote.s3_client()
    with contextlib.suppress(
        client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
    ):
        client.create_bucket(Bucket="photos")
    return client


def test_generated_manifest_runs_the_prefix_and_is_kept(shell, s3):
    from jupyter_remote import attach
    from jupyter_remote.jobstore import JobStore
    from jupyter_remote.s3uri import S3Uri

    keys = ["gen/a b.txt", "gen/x+y.txt", "gen/bad.txt"]
    # No folder marker here: rclone lists an empty folder "gen/folder/" as the key "gen/folder"
    # (docs/embedded-s3.md); the AWS-engine test covers markers on moto.
    for key in [*keys, "elsewhere/skip.txt"]:
        s3.put_object(Bucket="photos", Key=key, Body=b"x")
    result = shell.run_cell(CELL)
    assert result.success, result.error_in_exec or result.error_before_exec
    table = shell.user_ns["t"]
    assert sorted(table["key"]) == sorted(keys)  # the prefix only
    statuses = dict(zip(table["key"], table["status"], strict=True))
    assert statuses["gen/bad.txt"] == "PermanentFailure"

    record = JobStore().list(limit=1)[0]
    assert "Manifest" not in record.request
    generator = record.request["ManifestGenerator"]["S3JobManifestGenerator"]
    assert generator["Filter"] == {"KeyNameConstraint": {"MatchAnyPrefix": ["gen/"]}}

    job = attach(record.job_id)
    raw = job.status().raw
    assert raw["ProgressSummary"]["TotalNumberOfTasks"] == 3
    descriptor = raw["GeneratedManifestDescriptor"]
    assert descriptor["Format"] == "S3InventoryReport_CSV_20211130"
    where = S3Uri.parse("s3://" + descriptor["Location"]["ObjectArn"].split(":::", 1)[1])
    got = s3.get_object(Bucket=where.bucket, Key=where.key)
    assert got["ETag"].strip('"') == descriptor["Location"]["ETag"]
    document = json.loads(got["Body"].read())
    assert document["fileSchema"] == "Bucket, Key" and document["sourceBucket"] == "photos"
    data = s3.get_object(Bucket=where.bucket, Key=document["files"][0]["key"])["Body"].read()
    rows = gzip.decompress(data).decode().splitlines()
    assert sorted(rows) == sorted(
        ["photos,gen/a%20b.txt", "photos,gen/x%2By.txt", "photos,gen/bad.txt"]
    )

    # Re-running the failures of a generated job goes through an ordinary CSV manifest.
    again = job.rerun_failed()
    again.wait(shell.user_ns)
    assert again.status().state == "Complete"
    assert len(shell.user_ns["t"]) == 3  # the first job's table is not replaced by the re-run's
    assert again.table()["key"].tolist() == ["gen/bad.txt"]
    assert "ManifestGenerator" not in again.record.request


def test_generator_without_bucket_is_refused_before_anything_runs(shell, s3):
    from jupyter_remote.jobstore import JobStore

    before = len(JobStore().list())
    result = shell.run_cell(
        "%%s3batch --manifest s3://photos/m.csv --manifest-generator\n"
        "def process(b, k):\n    return 1\n"
    )
    assert "--manifest-generator lists --bucket/--prefix" in str(result.error_in_exec)
    assert len(JobStore().list()) == before
