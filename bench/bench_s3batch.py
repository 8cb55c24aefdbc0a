#!/usr/bin/env python3
"""Benchmarks for ``%%s3batch`` on the local engine; prints ONE JSON document to stdout.

1. Throughput: N tasks (default 10,000), each reading a 1 KiB object from the embedded S3
   endpoint, through the local S3 Batch engine (``jupyter_remote.s3batch``, end to end: package,
   manifest, job, report) against a bare ``concurrent.futures.ProcessPoolExecutor`` doing the same
   reads with the same number of processes. Goal: engine / bare <= 1.5.
2. Memory: a manifest of M rows (default 1,000,000) of no-op tasks; the RSS of the job's
   supervisor process is sampled while it runs. Goal: growth <= 50 MB.

Objects and manifests are written straight into the embedded endpoint's folder (its objects are
plain files), so setting up a million rows takes seconds, not hours. A fresh data directory is
used and removed; no AWS credentials are read.

Usage::

    .venv/bin/python bench/bench_s3batch.py                     # 10,000 reads, 1,000,000 no-ops
    .venv/bin/python bench/bench_s3batch.py --tasks 2000 --rows 100000 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

DATA = Path(tempfile.mkdtemp(prefix="jupyter-remote-bench-s3batch-"))
os.environ["JUPYTER_REMOTE_DATA_DIR"] = str(DATA / "data")
os.environ["JUPYTER_REMOTE_S3_ROOT"] = str(DATA / "s3")
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_CONFIG_FILE=str(DATA / "none"),
    AWS_SHARED_CREDENTIALS_FILE=str(DATA / "none"),
    AWS_EC2_METADATA_DISABLED="true",
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUCKET = "bench"
GOAL_RATIO = 1.5
GOAL_RSS_MB = 50.0
READ_CELL = """
import boto3
s3 = boto3.client("s3")
def process(bucket, key):
    return len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
"""
NOOP_CELL = "def process(bucket, key):\n    return None\n"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class QuietDisplay:
    """A job display that keeps stdout for the JSON result."""

    def started(self, handle: Any, title: str) -> None:
        log(title)

    def status(self, status: Any) -> None:
        pass

    def log(self, stream: str, line: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finished(self, status: Any) -> None:
        log(f"finished: {status.state}")


def _bare_init(env: dict[str, str]) -> None:
    global _S3
    import boto3

    os.environ.update(env)
    _S3 = boto3.client("s3")


def _bare_read(key: str) -> int:
    return len(_S3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def write_objects(root: Path, count: int) -> list[str]:
    # 100 objects per "folder": the embedded server (rclone) lists a folder to serve an object
    # in it, so one folder of 10,000 files would measure rclone's listing, not the engine.
    body = os.urandom(1024)
    keys = []
    for i in range(count):
        key = f"small/{i // 100:04d}/obj-{i:06d}"
        path = root / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        keys.append(key)
    return keys


def write_manifest(root: Path, name: str, keys: Any) -> str:
    path = root / BUCKET / name
    with open(path, "w") as out:
        for key in keys:
            out.write(f"{BUCKET},{key}\n")
    return f"s3://{BUCKET}/{name}"


def throughput(root: Path, server: Any, tasks: int, concurrency: int) -> dict[str, Any]:
    from jupyter_remote.s3batch import s3batch

    keys = write_objects(root, tasks)
    manifest = write_manifest(root, "reads.csv", keys)
    log(f"bare ProcessPoolExecutor: {tasks} reads, {concurrency} processes")
    start = time.perf_counter()
    with ProcessPoolExecutor(concurrency, initializer=_bare_init, initargs=(server.env(),)) as pool:
        total = sum(pool.map(_bare_read, keys))
    bare = time.perf_counter() - start
    assert total == 1024 * tasks
    log(f"local engine: {tasks} tasks, concurrency {concurrency}")
    start = time.perf_counter()
    job = s3batch(
        READ_CELL,
        user_ns={},
        manifest=manifest,
        concurrency=concurrency,
        timeout=60,
        display=QuietDisplay(),
    )
    engine = time.perf_counter() - start
    status = job.status()
    table = job.table()
    assert status.state == "Complete", status
    assert len(table) == tasks and (table.status == "Succeeded").all()
    return {
        "tasks": tasks,
        "concurrency": concurrency,
        "bare_seconds": round(bare, 2),
        "engine_seconds": round(engine, 2),
        "engine_active_seconds": status.progress["elapsed"],
        "ratio": round(engine / bare, 3),
        "goal_ratio": GOAL_RATIO,
        "met": engine / bare <= GOAL_RATIO,
    }


def memory(root: Path, rows: int, concurrency: int) -> dict[str, Any]:
    import psutil

    from jupyter_remote.s3batch import s3batch

    manifest = write_manifest(root, "noop.csv", (f"noop/{i:07d}" for i in range(rows)))
    log(f"memory: {rows} no-op tasks, concurrency {concurrency}")
    start = time.perf_counter()
    job = s3batch(
        NOOP_CELL,
        user_ns={},
        manifest=manifest,
        concurrency=concurrency,
        wait=False,
        display=QuietDisplay(),
    )
    supervisor = psutil.Process(job.handle.data["pid"])
    samples: list[tuple[int, float]] = []
    last = ""
    while True:
        status = job.status()
        done = status.progress.get("succeeded", 0) + status.progress.get("failed", 0)
        try:
            rss = supervisor.memory_info().rss / 1e6
        except psutil.NoSuchProcess:
            rss = None
        if status.state != last:
            last = status.state
            log(f"{status.state} after {time.perf_counter() - start:.1f} s")
        if status.state == "Active" and rss is not None:
            samples.append((done, rss))
        if status.terminal:
            break
        time.sleep(1.0)
    elapsed = time.perf_counter() - start
    assert status.state == "Complete", status
    assert status.progress["succeeded"] == rows, status.progress
    # The baseline is taken once the pool runs (imports and workers settled), after 1 % of rows.
    settled = [rss for done, rss in samples if done >= rows // 100] or [s[1] for s in samples]
    base, peak = settled[0], max(settled)
    return {
        "rows": rows,
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "tasks_per_second": round(rows / elapsed),
        "supervisor_rss_mb_at_1pct": round(base, 1),
        "supervisor_rss_mb_peak": round(peak, 1),
        "supervisor_rss_growth_mb": round(peak - base, 1),
        "samples": len(samples),
        "goal_growth_mb": GOAL_RSS_MB,
        "met": peak - base <= GOAL_RSS_MB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip", choices=["throughput", "memory"], action="append", default=[])
    args = parser.parse_args()
    from jupyter_remote import embedded_s3

    server = embedded_s3.ensure_running()
    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    root = Path(os.environ["JUPYTER_REMOTE_S3_ROOT"])
    result: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        if "throughput" not in args.skip:
            result["throughput"] = throughput(root, server, args.tasks, args.concurrency)
        if "memory" not in args.skip:
            result["memory"] = memory(root, args.rows, args.concurrency)
    finally:
        embedded_s3.stop()
        shutil.rmtree(DATA, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
