"""Execute a ``CreateProcessingJob`` request on this machine.

Run as ``python -m jupyter_remote.engines.local_processing JOBDIR`` by the local engine, in its own
session so the job outlives the kernel that started it. JOBDIR holds ``request.json`` (the exact
request) and ``endpoint.json`` (where S3 is); this process writes ``status.json`` (a
DescribeProcessingJob-shaped document) and ``logs/algo-N.log``.

Per instance ``algo-N`` a sandbox folder stands in for ``/opt/ml``: config files, inputs
downloaded in File mode (FullyReplicated or ShardedByS3Key), output folders, the exit message.
The container command runs with ``JUPYTER_REMOTE_OPT_ML`` pointing at the sandbox; arguments under
``/opt/ml`` are mapped the same way; user code is never edited.

Choices where the contract is UNCONFIRMED (aws-contracts.md section E), each the documented-closest:
- ShardedByS3Key: keys sorted, key i goes to host ``algo-((i mod N) + 1)``.
- MaxRuntimeInSeconds exceeded: the containers are stopped and the job ends ``Stopped`` with
  FailureReason ``MaxRuntimeExceeded: ...`` (the training-job behaviour).
- Outputs are uploaded whatever the outcome (the SDK's local mode uploads in a ``finally``).
- Non-zero exit: ``Failed`` with FailureReason ``AlgorithmError: ..., exit code: N``.
- Stop: SIGTERM to each container's process group, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..s3uri import S3Uri
from ..storage import Endpoint, Storage, make_client

OPT_ML = "/opt/ml"
STOP_FILE = "stop-requested"
GRACE_SECONDS = float(os.environ.get("JUPYTER_REMOTE_STOP_GRACE", "10"))
_PYTHONS = frozenset({"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"})


def now_iso() -> str:
    """UTC timestamp as SageMaker reports it."""
    return dt.datetime.now(dt.timezone.utc).isoformat()


def write_json(path: Path, document: Any) -> None:
    """Write JSON atomically (readers never see half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str))
    os.replace(tmp, path)


class Supervisor:
    """Runs one processing job from its JOBDIR."""

    def __init__(self, jobdir: Path) -> None:
        self.jobdir = jobdir
        self.request = json.loads((jobdir / "request.json").read_text())
        self.endpoint = Endpoint(**json.loads((jobdir / "endpoint.json").read_text()))
        self.storage = Storage(make_client(self.endpoint), S3Uri("unused"))
        cluster = self.request["ProcessingResources"]["ClusterConfig"]
        self.hosts = [f"algo-{i + 1}" for i in range(cluster.get("InstanceCount", 1))]
        self.status: dict[str, Any] = json.loads((jobdir / "status.json").read_text())
        self.logs = jobdir / "logs"
        self.logs.mkdir(exist_ok=True)

    # -- status -------------------------------------------------------------------------------
    def set_status(self, **fields: Any) -> None:
        """Merge ``fields`` into status.json."""
        self.status.update(fields, LastModifiedTime=now_iso())
        write_json(self.jobdir / "status.json", self.status)

    def note(self, host: str, message: str) -> None:
        """Write a platform line into a host's log (SageMaker's own lines appear there too)."""
        with open(self.logs / f"{host}.log", "a", encoding="utf-8") as log:
            log.write(f"[local-engine] {message}\n")

    # -- sandbox ------------------------------------------------------------------------------
    def root(self, host: str) -> Path:
        """The folder that stands in for /opt/ml on ``host``."""
        return self.jobdir / host / "opt" / "ml"

    def local(self, host: str, path: str) -> Path:
        """Map a container path under /opt/ml to the host's sandbox."""
        if path == OPT_ML or path.startswith(OPT_ML + "/"):
            return Path(str(self.root(host)) + path[len(OPT_ML) :])
        return Path(path)

    def write_config(self, host: str) -> None:
        """Write processingjobconfig.json and resourceconfig.json for one host."""
        config = json.loads(json.dumps(self.request))
        config.setdefault("ProcessingJobArn", self.status.get("ProcessingJobArn"))
        app = config["AppSpecification"]
        app.setdefault("ContainerEntrypoint", None)
        app.setdefault("ContainerArguments", None)
        for item in config.get("ProcessingInputs", []):
            if "S3Input" in item:
                item["S3Input"]["S3DownloadMode"] = "StartOfJob"
        folder = self.root(host) / "config"
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "processingjobconfig.json", config)
        write_json(folder / "resourceconfig.json", {"current_host": host, "hosts": self.hosts})
        (self.root(host) / "output").mkdir(parents=True, exist_ok=True)

    def input_objects(self, s3: dict[str, Any]) -> list[tuple[S3Uri, str]]:
        """``(object, relative local path)`` pairs of one S3 input, sorted by key."""
        uri = S3Uri.parse(s3["S3Uri"])
        if s3.get("S3DataType") == "ManifestFile":
            entries = self.storage.get_json(uri)
            prefix = S3Uri.parse(entries[0]["prefix"])
            pairs = [(S3Uri(prefix.bucket, prefix.key + rel), rel) for rel in entries[1:]]
            return sorted(pairs, key=lambda p: p[0].key)
        pairs = []
        for obj in self.storage.iter_objects(uri):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            rel = Path(key).name if key == uri.key else key[len(uri.key) :].lstrip("/")
            pairs.append((S3Uri(uri.bucket, key), rel))
        return sorted(pairs, key=lambda p: p[0].key)

    def download_inputs(self) -> None:
        """Copy every input to every host that should see it (File mode)."""
        for item in self.request.get("ProcessingInputs", []):
            s3 = item.get("S3Input")
            if not s3:
                raise RuntimeError(f"input {item['InputName']}: only S3Input is supported locally")
            if s3.get("S3InputMode", "File") != "File":
                raise RuntimeError(f"input {item['InputName']}: Pipe mode is not supported locally")
            pairs = self.input_objects(s3)
            sharded = s3.get("S3DataDistributionType") == "ShardedByS3Key"
            for index, (obj, rel) in enumerate(pairs):
                targets = [self.hosts[index % len(self.hosts)]] if sharded else self.hosts
                for host in targets:
                    self.storage.download(obj, self.local(host, s3["LocalPath"]) / rel)
            for host in self.hosts:
                self.local(host, s3["LocalPath"]).mkdir(parents=True, exist_ok=True)
                mine = (
                    len(pairs)
                    if not sharded
                    else len(pairs[self.hosts.index(host) :: len(self.hosts)])
                )
                self.note(host, f"input {item['InputName']}: {mine} object(s) from {s3['S3Uri']}")

    def outputs(self) -> list[dict[str, Any]]:
        """The request's S3 outputs."""
        config = self.request.get("ProcessingOutputConfig") or {}
        return [o for o in config.get("Outputs", []) if "S3Output" in o]

    def upload_outputs(self, *, only_continuous: bool = False, seen: dict | None = None) -> None:
        """Upload output folders' contents (symlinks are not followed, as on SageMaker)."""
        for item in self.outputs():
            s3 = item["S3Output"]
            if only_continuous and s3.get("S3UploadMode") != "Continuous":
                continue
            prefix = S3Uri.parse(s3["S3Uri"])
            for host in self.hosts:
                folder = self.local(host, s3["LocalPath"])
                if not folder.is_dir():
                    continue
                if seen is None:
                    self.storage.upload_tree(folder, prefix)
                    continue
                for path in sorted(
                    p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                ):
                    stamp = (path.stat().st_mtime_ns, path.stat().st_size)
                    if seen.get(path) != stamp:
                        seen[path] = stamp
                        self.storage.upload_file(
                            path, prefix.join(path.relative_to(folder).as_posix())
                        )

    # -- containers ---------------------------------------------------------------------------
    def command(self, host: str) -> list[str]:
        """The container command, with the interpreter and /opt/ml paths mapped to this machine."""
        app = self.request["AppSpecification"]
        argv = list(app.get("ContainerEntrypoint") or []) + list(
            app.get("ContainerArguments") or []
        )
        if not argv:
            raise RuntimeError("the local engine needs ContainerEntrypoint (it runs no image)")
        if argv[0] in _PYTHONS:
            argv[0] = sys.executable
        return [str(self.local(host, a)) if a.startswith(OPT_ML) else a for a in argv]

    def launch(self, host: str) -> subprocess.Popen[bytes]:
        """Start one "container"."""
        env = dict(os.environ)
        env.update(self.endpoint.job_env)
        env.update(self.request.get("Environment") or {})
        env.update(JUPYTER_REMOTE_OPT_ML=str(self.root(host)), PYTHONUNBUFFERED="1")
        log = open(self.logs / f"{host}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen(
                self.command(host),
                cwd=self.root(host),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def terminate(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        """SIGTERM every running container's process group; SIGKILL after the grace period."""
        for proc in procs.values():
            if proc.poll() is None:
                _killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
            time.sleep(0.1)
        for proc in procs.values():
            if proc.poll() is None:
                _killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def exit_message(self) -> str:
        """Concatenated /opt/ml/output/message of all hosts, first 1 KB."""
        texts = []
        for host in self.hosts:
            path = self.root(host) / "output" / "message"
            if path.exists():
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(texts).encode("utf-8")[:1024].decode("utf-8", errors="ignore")

    def run(self) -> None:
        """Run the job to a terminal status."""
        deadline = time.monotonic() + self.request["StoppingCondition"]["MaxRuntimeInSeconds"]
        self.set_status(ProcessingStartTime=now_iso(), Phase="Downloading inputs")
        for host in self.hosts:
            self.write_config(host)
            for item in self.outputs():
                self.local(host, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        self.download_inputs()
        self.set_status(Phase="Running")
        procs = {host: self.launch(host) for host in self.hosts}
        seen: dict[Path, tuple[int, int]] = {}
        outcome: dict[str, str] = {}
        last_sync = time.monotonic()
        try:
            while any(p.poll() is None for p in procs.values()):
                if (self.jobdir / STOP_FILE).exists():
                    self.set_status(ProcessingJobStatus="Stopping", Phase="Stopping")
                    self.terminate(procs)
                    outcome = {"ProcessingJobStatus": "Stopped"}
                    break
                if time.monotonic() > deadline:
                    self.set_status(ProcessingJobStatus="Stopping", Phase="Stopping")
                    self.terminate(procs)
                    limit = self.request["StoppingCondition"]["MaxRuntimeInSeconds"]
                    outcome = {
                        "ProcessingJobStatus": "Stopped",
                        "FailureReason": f"MaxRuntimeExceeded: the job ran longer than "
                        f"MaxRuntimeInSeconds={limit} and was stopped",
                    }
                    break
                if time.monotonic() - last_sync > 2:
                    self.upload_outputs(only_continuous=True, seen=seen)
                    last_sync = time.monotonic()
                time.sleep(0.1)
            codes = {host: p.wait() for host, p in procs.items()}
            if not outcome:
                failed = {h: c for h, c in codes.items() if c != 0}
                if failed:
                    host, code = sorted(failed.items())[0]
                    outcome = {
                        "ProcessingJobStatus": "Failed",
                        "FailureReason": f"AlgorithmError: the container on {host} exited with "
                        f"a non-zero code, exit code: {code}. See the job logs.",
                    }
                else:
                    outcome = {"ProcessingJobStatus": "Completed"}
        finally:
            self.set_status(Phase="Uploading outputs")
            self.upload_outputs()
        self.set_status(
            **outcome, ExitMessage=self.exit_message(), ProcessingEndTime=now_iso(), Phase="Done"
        )


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def main(argv: list[str]) -> int:
    """Entry point: run the job in ``argv[1]``; always leave a terminal status behind."""
    jobdir = Path(argv[1])
    # A SIGTERM to the supervisor (a user's `kill`) stops the job the documented way.
    signal.signal(signal.SIGTERM, lambda *_: (jobdir / STOP_FILE).touch())
    try:
        Supervisor(jobdir).run()
    except Exception as exc:
        traceback.print_exc()
        reason = f"InternalServerError: the local engine failed: {type(exc).__name__}: {exc}"
        status = json.loads((jobdir / "status.json").read_text())
        status.update(
            ProcessingJobStatus="Failed",
            FailureReason=reason[:1024],
            ProcessingEndTime=now_iso(),
            Phase="Done",
        )
        write_json(jobdir / "status.json", status)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
