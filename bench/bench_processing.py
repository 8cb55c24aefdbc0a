#!/usr/bin/env python3
"""Benchmarks for the ``%%remote_process`` path: extension load, launch overhead, capture+upload.

Prints ONE JSON document to stdout; progress and the children's chatter go to stderr.

Every measurement whose import time or peak memory matters runs in a child process (this same
script, run with ``--child NAME``), so nothing the parent imported or allocated leaks into it.
All children share one fresh data directory (``JUPYTER_REMOTE_DATA_DIR``) under the system temp
folder, get no AWS credentials (so the local engine and the embedded rclone S3 endpoint are
used), and the embedded server is stopped and the folder deleted at the end.

Usage::

    .venv/bin/python bench/bench_processing.py                 # full run (1 GiB array, 5 reps)
    .venv/bin/python bench/bench_processing.py --quick         # smoke run (64 MiB, 3 reps)
    .venv/bin/python bench/bench_processing.py --out result.json

See bench/README.md for what each number means and the goals.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1_000_000  # throughputs are reported in MB/s (10**6 bytes per second)

FULL_ARRAY_BYTES = GIB
QUICK_ARRAY_BYTES = 64 * MIB
FULL_REPS = 5
QUICK_REPS = 3
LAUNCH_PAYLOAD_BYTES = MIB
JOB_TIMEOUT = 120.0
CHILD_TIMEOUT = 1800.0
BUCKET = "jupyter-remote-bench"

GOAL_LOAD_EXT_SECONDS = 0.15
GOAL_LAUNCH_SECONDS = 0.3
GOAL_THROUGHPUT_RATIO = 0.7
GOAL_PEAK_RSS_OVER_ARRAY = 1.3

# Modules ``%load_ext jupyter_remote`` must not import (the goal); botocore is informational.
FORBIDDEN_AT_LOAD = ("boto3", "ipywidgets", "sagemaker")
WATCHED_AT_LOAD = (*FORBIDDEN_AT_LOAD, "botocore", "numpy")


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    """Progress line on stderr (stdout is reserved for the JSON document)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def max_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # KiB on Linux


def current_rss_bytes() -> int | None:
    """This process's resident set size now, in bytes, or None when it cannot be read."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def median(values: list[float]) -> float:
    """The median, rounded for the report."""
    return round(statistics.median(values), 4)


def mb_per_s(size: int, seconds: float) -> float:
    """Throughput in MB/s (10**6 bytes per second)."""
    return round(size / seconds / MB, 1) if seconds > 0 else float("inf")


def bench_environment(data_dir: Path) -> dict[str, str]:
    """The environment every benchmark process runs in.

    No AWS credentials or endpoints, no jupyter-remote settings from the caller's shell, a fresh
    data directory, and this checkout first on the path.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "JUPYTER_REMOTE_", "BOTO_"))
    }
    missing = data_dir / "no-such-aws-file"
    env.update(
        JUPYTER_REMOTE_DATA_DIR=str(data_dir),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(missing),
        AWS_SHARED_CREDENTIALS_FILE=str(missing),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_child(
    name: str, env: dict[str, str], scratch: Path, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``--child name`` in a fresh interpreter and return the JSON it wrote."""
    result_path = scratch / f"result-{name}-{time.monotonic_ns()}.json"
    command = [
        sys.executable,
        str(HERE),
        "--child",
        name,
        "--result",
        str(result_path),
        "--params",
        json.dumps(params or {}),
    ]
    # The child's stdout (job displays, library prints) goes to our stderr: stdout is the JSON.
    proc = subprocess.run(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"benchmark child {name!r} failed (exit code {proc.returncode})")
    result = json.loads(result_path.read_text())
    result_path.unlink()
    return result


# --------------------------------------------------------------------------- children


def child_load_ext(params: dict[str, Any]) -> dict[str, Any]:
    """Time ``%load_ext jupyter_remote`` in this (fresh) interpreter, after creating a shell."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    before = set(sys.modules)
    start = time.perf_counter()
    shell.run_line_magic("load_ext", "jupyter_remote")
    seconds = time.perf_counter() - start
    cell_magics = shell.magics_manager.magics["cell"]
    return {
        "seconds": seconds,
        "modules": {name: name in sys.modules for name in WATCHED_AT_LOAD},
        "new_modules": len(set(sys.modules) - before),
        "registered": "remote_process" in cell_magics,
    }


def _install_timers(sink: dict[str, float]) -> None:
    """Wrap the steps of ``remote_process`` so each call's time per step lands in ``sink``.

    Only the steps ``api.remote_process`` calls before it returns with ``wait=False`` are wrapped;
    the wrappers add a few microseconds each.
    """
    from jupyter_remote import api, prepare
    from jupyter_remote.engines import base
    from jupyter_remote.storage import Storage

    def wrap(owner: Any, attr: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                sink[label] = sink.get(label, 0.0) + time.perf_counter() - start
            if label == "upload_bundle":
                sink["bytes_uploaded"] = sink.get("bytes_uploaded", 0) + result.bytes_uploaded
            return result

        setattr(owner, attr, timed)

    wrap(api, "choose_engine", "choose_engine")
    wrap(api, "resolve_endpoint", "resolve_endpoint")
    wrap(api, "prepare_processing", "prepare_processing")
    wrap(prepare, "analyze_cell", "prepare.analyze_cell")
    wrap(prepare, "capture", "prepare.capture")
    wrap(api, "_engine", "make_client_and_engine")
    wrap(Storage, "upload_bundle", "upload_bundle")
    wrap(Storage, "put_json", "put_manifest")
    wrap(base.Engine, "submit", "engine_submit")


# The top-level steps whose sum is subtracted from the total to give "other".
_TOP_LEVEL_STEPS = (
    "choose_engine",
    "resolve_endpoint",
    "prepare_processing",
    "make_client_and_engine",
    "upload_bundle",
    "put_manifest",
    "engine_submit",
)


def child_launch(params: dict[str, Any]) -> dict[str, Any]:
    """Time ``remote_process(..., wait=False)`` with ~1 MB of variables, one warm-up first."""
    import numpy as np

    import jupyter_remote
    from jupyter_remote.display.text import TextDisplay

    reps = int(params["reps"])
    sink: dict[str, float] = {}
    _install_timers(sink)
    display = TextDisplay(sys.stderr)
    cell = "total = float(arr.sum()) + len(meta)"
    runs: list[dict[str, Any]] = []
    for i in range(reps + 1):
        # Fresh values every run: the payload is content-addressed, and an unchanged one would be
        # skipped as already uploaded, which would flatter the number.
        rng = np.random.default_rng(i)
        arr = rng.random(LAUNCH_PAYLOAD_BYTES // 8)
        meta = {"run": i, "name": "bench", "params": {"alpha": 0.5, "tags": ["a", "b", "c"]}}
        user_ns: dict[str, Any] = {"arr": arr, "meta": meta, "np": np}
        sink.clear()
        start = time.perf_counter()
        job = jupyter_remote.remote_process(cell, user_ns=user_ns, wait=False, display=display)
        seconds = time.perf_counter() - start
        steps = {k: v for k, v in sink.items() if k != "bytes_uploaded"}
        steps["other"] = seconds - sum(sink.get(k, 0.0) for k in _TOP_LEVEL_STEPS)
        bytes_uploaded = int(sink.get("bytes_uploaded", 0))
        # Let the job finish before the next launch so jobs do not pile up on 2 cores.
        written: dict[str, Any] = {}
        job.wait(written, display=display, timeout=JOB_TIMEOUT)
        expected = float(arr.sum()) + len(meta)
        if abs(written.get("total", float("nan")) - expected) > 1e-6 * abs(expected):
            raise RuntimeError(f"job {job.job_id} wrote back {written!r}, expected {expected}")
        runs.append(
            {
                "seconds": seconds,
                "steps": steps,
                "bytes_uploaded": bytes_uploaded,
                "job_id": job.job_id,
                "warmup": i == 0,
            }
        )
    return {"runs": runs}


def _bench_storage(prefix: str) -> Any:
    """A Storage on the endpoint the local engine would use, staged under ``prefix``."""
    from jupyter_remote.config import RemoteSettings, resolve_endpoint
    from jupyter_remote.s3uri import S3Uri
    from jupyter_remote.storage import Storage, make_client

    endpoint = resolve_endpoint(RemoteSettings())
    storage = Storage(make_client(endpoint), S3Uri(BUCKET, prefix))
    storage.ensure_bucket(BUCKET)
    return storage


def _delete_prefix(storage: Any, prefix: str) -> None:
    """Delete every object under ``prefix`` (keeps the embedded server's disk use bounded)."""
    from jupyter_remote.s3uri import S3Uri

    for item in list(storage.iter_objects(S3Uri(BUCKET, prefix))):
        storage.client.delete_object(Bucket=BUCKET, Key=item["Key"])


def child_capture_upload_ours(params: dict[str, Any]) -> dict[str, Any]:
    """Our path: ``snapshot.capture`` of one float64 array, then ``Storage.upload_bundle``."""
    import numpy as np

    from jupyter_remote.bundle import JobBundle
    from jupyter_remote.snapshot import capture

    size = int(params["array_bytes"])
    workdir = Path(params["workdir"])
    prefix = f"ours-{os.getpid()}/"
    storage = _bench_storage(prefix)
    _ = storage.transfer_config  # built lazily; build it outside the timed region
    baseline_rss = current_rss_bytes()
    baseline_max_rss = max_rss_bytes()

    arr = np.ones(size // 8)
    rss_with_array = current_rss_bytes()
    start = time.perf_counter()
    snap = capture({"arr": arr}, ["arr"], workdir)
    captured = time.perf_counter()
    bundle = JobBundle()
    bundle.add_file("payload.bin", snap.path, snap.sha256)
    report = storage.upload_bundle(bundle)
    done = time.perf_counter()
    peak = max_rss_bytes()

    if report.bytes_uploaded != snap.size or report.skipped:
        raise RuntimeError(f"expected one fresh upload of {snap.size} bytes, got {report}")
    _delete_prefix(storage, prefix)
    snap.path.unlink()
    return {
        "array_bytes": int(arr.nbytes),
        "payload_bytes": snap.size,
        "capture_seconds": captured - start,
        "upload_seconds": done - captured,
        "seconds": done - start,
        "baseline_rss_bytes": baseline_rss,
        "baseline_max_rss_bytes": baseline_max_rss,
        "rss_with_array_bytes": rss_with_array,
        "peak_rss_bytes": peak,
    }


def child_capture_upload_raw(params: dict[str, Any]) -> dict[str, Any]:
    """The yardstick: ``arr.tofile`` (untimed) then a plain boto3 ``client.upload_file``."""
    import numpy as np

    size = int(params["array_bytes"])
    workdir = Path(params["workdir"])
    prefix = f"raw-{os.getpid()}/"
    storage = _bench_storage(prefix)
    baseline_rss = current_rss_bytes()
    baseline_max_rss = max_rss_bytes()

    arr = np.ones(size // 8)
    rss_with_array = current_rss_bytes()
    path = workdir / f"raw-{os.getpid()}.bin"
    arr.tofile(path)
    start = time.perf_counter()
    storage.client.upload_file(str(path), BUCKET, f"{prefix}array.bin")  # boto3's defaults
    done = time.perf_counter()
    peak = max_rss_bytes()

    _delete_prefix(storage, prefix)
    path.unlink()
    return {
        "array_bytes": int(arr.nbytes),
        "seconds": done - start,
        "baseline_rss_bytes": baseline_rss,
        "baseline_max_rss_bytes": baseline_max_rss,
        "rss_with_array_bytes": rss_with_array,
        "peak_rss_bytes": peak,
    }


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "load_ext": child_load_ext,
    "launch": child_launch,
    "capture_upload_ours": child_capture_upload_ours,
    "capture_upload_raw": child_capture_upload_raw,
}


# --------------------------------------------------------------------------- measurements


def measure_load_ext(env: dict[str, str], workdir: Path, reps: int) -> dict[str, Any]:
    """``%load_ext jupyter_remote`` in ``reps`` fresh interpreters."""
    runs = []
    for i in range(reps):
        runs.append(run_child("load_ext", env, workdir))
        log(f"load_ext {i + 1}/{reps}: {runs[-1]['seconds']:.4f} s")
    modules = {name: any(r["modules"][name] for r in runs) for name in WATCHED_AT_LOAD}
    seconds = median([r["seconds"] for r in runs])
    lazy = not any(modules[name] for name in FORBIDDEN_AT_LOAD)
    return {
        "seconds": seconds,
        "runs_seconds": [round(r["seconds"], 4) for r in runs],
        "modules_loaded_after": modules,
        "heavy_modules_not_loaded": lazy,
        "new_modules_median": int(statistics.median(r["new_modules"] for r in runs)),
        "magics_registered": all(r["registered"] for r in runs),
        "goal_seconds": GOAL_LOAD_EXT_SECONDS,
        "goal_met": seconds <= GOAL_LOAD_EXT_SECONDS and lazy,
    }


def measure_launch(env: dict[str, str], workdir: Path, reps: int) -> dict[str, Any]:
    """``remote_process(..., wait=False)`` wall time: median of ``reps`` after one warm-up."""
    result = run_child("launch", env, workdir, {"reps": reps})
    warmup, *runs = result["runs"]
    for i, run in enumerate(result["runs"]):
        log(f"launch {'warm-up' if i == 0 else i}: {run['seconds']:.4f} s")
    labels = sorted({label for run in runs for label in run["steps"]})
    breakdown = {label: median([run["steps"].get(label, 0.0) for run in runs]) for label in labels}
    seconds = median([run["seconds"] for run in runs])
    return {
        "seconds": seconds,
        "runs_seconds": [round(run["seconds"], 4) for run in runs],
        "warmup_seconds": round(warmup["seconds"], 4),
        "variables_bytes": LAUNCH_PAYLOAD_BYTES,
        "bytes_uploaded_median": int(statistics.median(run["bytes_uploaded"] for run in runs)),
        "breakdown_median_seconds": breakdown,
        "warmup_breakdown_seconds": {k: round(v, 4) for k, v in warmup["steps"].items()},
        "goal_seconds": GOAL_LAUNCH_SECONDS,
        "goal_met": seconds <= GOAL_LAUNCH_SECONDS,
    }


def _rss_summary(runs: list[dict[str, Any]], array_bytes: int) -> dict[str, Any]:
    peak = max(run["peak_rss_bytes"] for run in runs)
    baselines = [run["baseline_rss_bytes"] for run in runs if run["baseline_rss_bytes"]]
    baseline = int(statistics.median(baselines)) if baselines else None
    summary: dict[str, Any] = {
        "peak_rss_bytes": peak,
        "peak_rss_over_array": round(peak / array_bytes, 3),
        "baseline_rss_bytes": baseline,
    }
    if baseline is not None:
        summary["peak_rss_above_baseline_over_array"] = round((peak - baseline) / array_bytes, 3)
    return summary


def measure_capture_upload(
    env: dict[str, str], workdir: Path, array_bytes: int, reps: int
) -> dict[str, Any]:
    """Capture+upload of one float64 array (ours) against a raw ``upload_file`` of its bytes."""
    ours: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    params = {"array_bytes": array_bytes, "workdir": str(workdir)}
    for i in range(reps):  # interleaved, so drift in the machine hits both alike
        ours.append(run_child("capture_upload_ours", env, workdir, params))
        raw.append(run_child("capture_upload_raw", env, workdir, params))
        mine, yard = ours[-1], raw[-1]
        log(
            f"capture_upload {i + 1}/{reps}: ours {mine['seconds']:.2f} s "
            f"(capture {mine['capture_seconds']:.2f} + upload {mine['upload_seconds']:.2f}), "
            f"raw {yard['seconds']:.2f} s; peak RSS ours {mine['peak_rss_bytes'] / MIB:.0f} MiB, "
            f"raw {yard['peak_rss_bytes'] / MIB:.0f} MiB"
        )
    size = ours[0]["array_bytes"]
    ours_seconds = median([r["seconds"] for r in ours])
    raw_seconds = median([r["seconds"] for r in raw])
    upload_seconds = median([r["upload_seconds"] for r in ours])
    ours_mbps = mb_per_s(size, ours_seconds)
    raw_mbps = mb_per_s(size, raw_seconds)
    ratio = round(ours_mbps / raw_mbps, 3)
    ours_rss = _rss_summary(ours, size)
    return {
        "array_bytes": size,
        "payload_bytes": ours[0]["payload_bytes"],
        "reps": reps,
        "ours": {
            "seconds": ours_seconds,
            "mb_per_s": ours_mbps,
            "capture_seconds": median([r["capture_seconds"] for r in ours]),
            "upload_seconds": upload_seconds,
            "upload_only_mb_per_s": mb_per_s(size, upload_seconds),
            "runs_seconds": [round(r["seconds"], 3) for r in ours],
            **ours_rss,
            "peak_rss_runs_bytes": [r["peak_rss_bytes"] for r in ours],
        },
        "raw": {
            "seconds": raw_seconds,
            "mb_per_s": raw_mbps,
            "runs_seconds": [round(r["seconds"], 3) for r in raw],
            **_rss_summary(raw, size),
        },
        "throughput_ratio": ratio,
        "upload_only_throughput_ratio": round(raw_seconds / upload_seconds, 3),
        "goal_throughput_ratio": GOAL_THROUGHPUT_RATIO,
        "goal_peak_rss_over_array": GOAL_PEAK_RSS_OVER_ARRAY,
        "goal_throughput_met": ratio >= GOAL_THROUGHPUT_RATIO,
        "goal_peak_rss_met": ours_rss["peak_rss_over_array"] <= GOAL_PEAK_RSS_OVER_ARRAY,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = None
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": mem,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "loadavg_1_5_15": load_average(),
    }


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages: other work on the machine skews every number here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def bench_sandbox() -> Iterator[tuple[dict[str, str], Path]]:
    """A fresh data dir + environment; stops the embedded server and deletes it all afterwards."""
    root = Path(tempfile.mkdtemp(prefix="jupyter-remote-bench-"))
    env = bench_environment(root / "data")
    workdir = root / "work"
    workdir.mkdir()
    saved = dict(os.environ)
    # This process starts and stops the embedded server, so it needs the same environment.
    os.environ.clear()
    os.environ.update(env)
    try:
        yield env, workdir
    finally:
        try:
            from jupyter_remote import embedded_s3

            stopped = embedded_s3.stop()
            log(f"embedded S3 server stopped: {stopped}")
        finally:
            os.environ.clear()
            os.environ.update(saved)
            shutil.rmtree(root, ignore_errors=True)


def run_benchmarks(quick: bool) -> dict[str, Any]:
    """Run all three measurements and assemble the report."""
    reps = QUICK_REPS if quick else FULL_REPS
    array_bytes = QUICK_ARRAY_BYTES if quick else FULL_ARRAY_BYTES
    sys.path.insert(0, str(REPO))
    from jupyter_remote import __version__

    report: dict[str, Any] = {
        "benchmark": "bench_processing",
        "jupyter_remote_version": __version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "reps": reps,
        "machine": machine(),
    }
    with bench_sandbox() as (env, workdir):
        log(f"load_ext: {reps} fresh interpreters")
        load_ext = measure_load_ext(env, workdir, reps)

        from jupyter_remote import embedded_s3

        log("starting the embedded S3 server (not timed)")
        server = embedded_s3.ensure_running()
        log(f"embedded S3 server at {server.endpoint_url} (pid {server.pid})")

        log(f"launch overhead: 1 warm-up + {reps} runs in one interpreter")
        launch = measure_launch(env, workdir, reps)

        log(f"capture+upload: {array_bytes / MIB:.0f} MiB array, {reps} x (ours, raw)")
        capture_upload = measure_capture_upload(env, workdir, array_bytes, reps)

    report.update(
        load_ext_seconds=load_ext["seconds"],
        load_ext=load_ext,
        launch_overhead_seconds=launch["seconds"],
        launch_overhead=launch,
        capture_upload=capture_upload,
        goals_met={
            "load_ext": load_ext["goal_met"],
            "launch_overhead": launch["goal_met"],
            "capture_upload_throughput": capture_upload["goal_throughput_met"],
            "capture_upload_peak_rss": capture_upload["goal_peak_rss_met"],
        },
    )
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point: the benchmark itself, or one child measurement (``--child``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="64 MiB instead of 1 GiB, 3 repetitions"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON document to this file")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = CHILDREN[args.child](json.loads(args.params))
        args.result.write_text(json.dumps(result))
        return 0

    started = time.monotonic()
    report = run_benchmarks(args.quick)
    report["bench_wall_seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["loadavg_1_5_15_at_end"] = load_average()
    document = json.dumps(report, indent=2)
    print(document, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(document + "\n")
    log("goals met: " + json.dumps(report["goals_met"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
