"""Submit overhead of the ``s3batch`` engine: a new cell (roles + deploy) against an unchanged one.

Everything AWS is moto's ThreadedMotoServer over HTTP, S3 Control is the local endpoint
(:mod:`jupyter_remote.engines.s3control_server`), so what is measured is our own work per submit
and the number of calls it makes, not AWS latency (add real round trips for AWS: each call is
one). Prints one JSON document on stdout::

    .venv/bin/python bench/bench_s3batch_aws.py [--runs 5]

``cold``: a cell never seen (a new function: CreateFunction, waiter, PublishVersion, widening the
two roles' policies). ``warm``: the same cell again (GetFunction + ListVersionsByFunction, no
deployment). ``seconds`` is ``s3batch(..., wait=False)`` from the call to the job submitted; the
job is then waited for, untimed, before the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

CELL = "def process(bucket, key):\n    return len(key)\n"


def _isolate(root: Path, moto_url: str) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "JUPYTER_REMOTE_")):
            del os.environ[name]
    os.environ.update(
        JUPYTER_REMOTE_DATA_DIR=str(root / "data"),
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(root / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(root / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )


def _one(cell: str, calls: Counter[str], objects: int) -> dict[str, Any]:
    from jupyter_remote import s3batch
    from jupyter_remote.config import RemoteSettings
    from jupyter_remote.display.text import TextDisplay

    calls.clear()
    display = TextDisplay(sys.stderr)  # stdout is the JSON
    settings = RemoteSettings(widgets=False, poll_interval=0.1)
    start = time.perf_counter()
    job = s3batch.s3batch(
        cell, user_ns={}, bucket="bench", prefix="in/", engine="s3batch", wait=False,
        settings=settings, display=display,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    lambda_calls = dict(calls)
    job.wait({}, display=display, timeout=120, poll_interval=0.1)
    assert len(job.table()) == objects
    return {"seconds": seconds, "lambda_calls": lambda_calls}


def main() -> int:
    """Run the measurement; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--objects", type=int, default=10)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with tempfile.TemporaryDirectory(prefix="jr-bench-s3batch-aws-") as tmp:
        root = Path(tmp)
        _isolate(root, f"http://{host}:{port}")
        from jupyter_remote.config import RemoteSettings, resolve_endpoint
        from jupyter_remote.engines.s3control_server import start_s3control_server
        from jupyter_remote.storage import make_client

        url, stop = start_s3control_server(state_dir=root / "s3control")
        os.environ["AWS_ENDPOINT_URL_S3_CONTROL"] = url
        endpoint = resolve_endpoint(RemoteSettings())
        s3 = make_client(endpoint)
        s3.create_bucket(Bucket="bench")
        for i in range(args.objects):
            s3.put_object(Bucket="bench", Key=f"in/{i}.txt", Body=b"x")
        calls: Counter[str] = Counter()
        lam = make_client(endpoint, "lambda")
        lam.meta.events.register(
            "before-call.lambda.*",
            lambda event_name, **_: calls.update([event_name.split(".")[-1]]),
        )
        try:
            cold = [_one(f"{CELL}# run {i}\n", calls, args.objects) for i in range(args.runs)]
            _one(CELL, calls, args.objects)  # deploys CELL once; the warm runs reuse it
            warm = [_one(CELL, calls, args.objects) for _ in range(args.runs)]
        finally:
            stop()
            server.stop()
            from jupyter_remote import embedded_s3

            embedded_s3.stop()

    def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
        times = [r["seconds"] for r in runs]
        return {
            "median_seconds": round(statistics.median(times), 3),
            "min_seconds": round(min(times), 3),
            "max_seconds": round(max(times), 3),
            "lambda_calls_last_run": runs[-1]["lambda_calls"],
        }

    print(
        json.dumps(
            {
                "what": "s3batch(engine='s3batch', wait=False): moto + the local S3 Control",
                "runs": args.runs,
                "objects": args.objects,
                "cold_new_cell": summary(cold),
                "warm_unchanged_cell": summary(warm),
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
