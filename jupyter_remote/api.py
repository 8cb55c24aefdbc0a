"""The Python API the magics, the CLI and scripts share."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from .config import (
    RemoteSettings,
    choose_engine,
    embedded_endpoint,
    resolve_endpoint,
    staging_uri,
)
from .display import JobDisplay, bind_job, follow_in_background, make_display
from .engines.base import PROCESSING, Engine, JobHandle, JobStatus
from .engines.registry import engine_class
from .errors import JobFailedError
from .jobstore import JobRecord, JobStore
from .monitor import watch
from .prepare import ProcessingOptions, prepare_processing, redacted
from .results import apply_results, fetch_results, remote_exception
from .spec.prices import estimate_line
from .spec.processing import network_config
from .spec.tags import job_tags
from .storage import Endpoint, Storage, make_client

SAGEMAKER = "sagemaker"


def _caller_namespace() -> MutableMapping[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns
    return sys._getframe(2).f_globals


def s3_client(settings: RemoteSettings | None = None) -> Any:
    """A boto3 S3 client for whatever endpoint the local engine uses (embedded, custom or AWS)."""
    return make_client(resolve_endpoint(settings or RemoteSettings()))


class RemoteJob:
    """A submitted job: watch it, stop it, bring its results home."""

    def __init__(self, engine: Engine, handle: JobHandle, record: JobRecord) -> None:
        self.engine = engine
        self.handle = handle
        self.record = record

    @property
    def job_id(self) -> str:
        """The job's name/id."""
        return self.handle.job_id

    def __repr__(self) -> str:
        return f"<RemoteJob {self.job_id} on {self.engine.name}: {self.status().state}>"

    def status(self) -> JobStatus:
        """The job's current status."""
        return self.engine.describe(self.handle)

    def stop(self) -> None:
        """Stop the job (it moves to Stopping, then Stopped)."""
        self.engine.stop(self.handle)

    def wait(
        self,
        user_ns: MutableMapping[str, Any] | None = None,
        *,
        display: JobDisplay | None = None,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> list[str]:
        """Follow the job to its end, then write its results into ``user_ns``.

        Returns the names written back. Raises the remote exception (as its own type) when the
        cell raised, :class:`JobFailedError` when the job failed or stopped otherwise, and
        :class:`~jupyter_remote.errors.JobTimeoutError` after ``timeout`` (the job keeps running).
        Ctrl-C stops watching, not the job.
        """
        if display is None:  # a display of our own: it has not been told which job it shows
            display = make_display()
            bind_job(display, self)
            display.started(self.handle, f"following {self.job_id} on {self.engine.name}")
        namespace = user_ns if user_ns is not None else _caller_namespace()
        try:
            status = watch(
                self.engine,
                self.handle,
                self._watch_display(display),
                store=self.engine.store,
                timeout=timeout,
                poll_interval=poll_interval,
            )
        except KeyboardInterrupt:
            hint = self._reattach_hint()
            display.message(f"Detached from {self.job_id}; it keeps running. {hint}")
            # A widget panel keeps following the job from a thread; its buttons work now.
            follow_in_background(display, self, poll_interval=poll_interval)
            raise
        display.finished(status)
        return self.write_back(status, namespace, display)

    def _watch_display(self, display: JobDisplay) -> JobDisplay:
        """What the monitor feeds while waiting (subclasses may thin the updates)."""
        return display

    def _reattach_hint(self) -> str:
        """How to find the job again after Ctrl-C."""
        return (
            f"Re-attach with jupyter_remote.attach({self.job_id!r}) or %remote_jobs; stop it with "
            f"jupyter_remote.attach({self.job_id!r}, wait=False).stop()."
        )

    def write_back(
        self, status: JobStatus, user_ns: MutableMapping[str, Any], display: JobDisplay
    ) -> list[str]:
        """Apply a finished job's results, or raise its failure."""
        key = bytes.fromhex(self.handle.data["key"])
        results = fetch_results(self.engine.storage, self.handle.data["results_uri"], key)
        if results is not None and results.get("error"):
            raise remote_exception(results["error"], self.job_id)
        if not status.succeeded or results is None:
            tails = self.engine.logs(self.handle)
            lines = [line for t in tails for line in t.read(final=True)][-20:]
            reason = status.reason or (
                "the job wrote no results" if status.succeeded else "no reason given"
            )
            if status.exit_message:
                reason += f" (exit message: {status.exit_message})"
            raise JobFailedError(self.job_id, status.state, reason, "\n".join(lines))
        written = apply_results(results, user_ns)
        for name, why in results.get("skipped", {}).items():
            display.message(f"not written back: {name} ({why})")
        self.engine.store.update(self.job_id, written_back=True)
        if written:
            display.message(f"written back: {', '.join(sorted(written))}")
        return written


def _engine(name: str, endpoint: Endpoint, staging: str, store: JobStore) -> Engine:
    from .s3uri import S3Uri

    storage = Storage(make_client(endpoint), S3Uri.parse(staging))
    return engine_class(name)(endpoint=endpoint, storage=storage, store=store)


def remote_process(
    cell: str,
    *,
    user_ns: MutableMapping[str, Any] | None = None,
    engine: str = "",
    instance_type: str | None = None,
    instance_count: int | None = None,
    volume_size: int | None = None,
    max_runtime: int | None = None,
    image: str | None = None,
    role: str | None = None,
    inputs: list[str] = (),  # type: ignore[assignment]
    outputs: list[str] = (),  # type: ignore[assignment]
    shard: list[str] = (),  # type: ignore[assignment]
    continuous: list[str] = (),  # type: ignore[assignment]
    requirements: str | None = None,
    modules: list[str] = (),  # type: ignore[assignment]
    config_command: str | None = None,
    env: list[str] = (),  # type: ignore[assignment]
    exclude: list[str] = (),  # type: ignore[assignment]
    allow_python_mismatch: bool = False,
    network_isolation: bool = False,
    subnets: list[str] = (),  # type: ignore[assignment]
    security_groups: list[str] = (),  # type: ignore[assignment]
    profile: str | None = None,
    region: str | None = None,
    wait: bool = True,
    dry_run: bool = False,
    timeout: float | None = None,
    settings: RemoteSettings | None = None,
    display: JobDisplay | None = None,
    store: JobStore | None = None,
) -> RemoteJob | dict[str, Any]:
    """Run ``cell`` as a SageMaker Processing job (or locally); see ``%%remote_process?``.

    With ``wait`` (the default) this follows the job and writes the names the cell assigned (and
    the variables it changed in place) back into ``user_ns``; the remote exception is re-raised
    as its own type. Returns the :class:`RemoteJob`, or the request dict with ``dry_run``.
    """
    settings = settings or RemoteSettings()
    namespace = user_ns if user_ns is not None else _caller_namespace()
    # A dry run prints a request to copy from: text, not a panel.
    display = display or make_display(widgets=settings.widgets and not dry_run)
    engine_name, why = choose_engine(engine, settings, PROCESSING, profile=profile, region=region)
    from .engines.local import LOCAL_ROLE_ARN

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    instance_type = instance_type or settings.instance_type
    target = None
    if engine_name == SAGEMAKER:
        from .engines.sagemaker_setup import resolve_target

        target = resolve_target(
            settings,
            python=py,
            instance_type=instance_type,
            region=region,
            profile=profile,
            role=role,
            image=image,
            allow_python_mismatch=allow_python_mismatch,
        )
        endpoint, staging = target.endpoint, target.staging
        image_uri, role_arn = target.image, target.role.arn
    else:
        endpoint = resolve_endpoint(settings, profile=profile, region=region)
        staging = staging_uri(settings, endpoint)
        image_uri = image or settings.image or f"jupyter-remote-local:python{py}"
        role_arn = role or settings.role or LOCAL_ROLE_ARN
    options = ProcessingOptions(
        instance_type=instance_type,
        instance_count=settings.instance_count if instance_count is None else instance_count,
        volume_size=settings.volume_size if volume_size is None else volume_size,
        max_runtime=settings.max_runtime if max_runtime is None else max_runtime,
        image=image_uri,
        role_arn=role_arn,
        inputs=list(inputs),
        outputs=list(outputs),
        shard=list(shard),
        continuous=list(continuous),
        requirements=requirements,
        modules=list(modules),
        config_command=config_command,
        env=list(env),
        exclude=list(exclude),
        tags=job_tags(),
        network=network_config(
            isolation=network_isolation, subnets=subnets, security_groups=security_groups
        ),
    )
    with tempfile.TemporaryDirectory(prefix="jupyter-remote-") as tmp:
        job = prepare_processing(cell, dict(namespace), options, staging=staging, workdir=Path(tmp))
        if dry_run:
            display.message(json.dumps(redacted(job.request), indent=2))
            display.message(
                estimate_line(
                    options.instance_type,
                    options.instance_count,
                    options.volume_size,
                    options.max_runtime,
                )
            )
            return redacted(job.request)
        display.message(why)
        store = store or JobStore()
        runner = _engine(engine_name, endpoint, str(staging), store)
        role_fresh = False
        if target is not None:
            from .engines.sagemaker_setup import prepare_resources

            role_fresh = prepare_resources(target, job.request, runner.storage.client)
        t0 = time.monotonic()
        report = runner.storage.upload_bundle(job.bundle)
        runner.storage.put_json(job.manifest_uri, job.manifest)
    record = JobRecord(
        job_id=job.job_name,
        engine=engine_name,
        kind=PROCESSING,
        state="Submitting",
        created=time.time(),
        updated=time.time(),
        request=job.request,
        handle={
            "key": job.key.hex(),
            "results_uri": str(job.results_uri),
            "staging": str(staging),
            "endpoint": {
                "kind": endpoint.kind,
                "url": endpoint.url,
                "region": endpoint.region,
                "profile": endpoint.profile,
            },
            "instance_count": options.instance_count,
            "role_fresh": role_fresh,
            "uploaded": report.uploaded,
            "skipped": report.skipped,
        },
        writeback={
            "assigns": sorted(job.names.assigns),
            "deletes": sorted(job.names.deletes),
            "reads": sorted(job.names.reads),
        },
        cell=cell,
    )
    handle = runner.submit(record)
    result = RemoteJob(runner, handle, record)
    bind_job(display, result)
    title = (
        f"{job.job_name}: {options.instance_count} x {options.instance_type} on {engine_name} "
        f"(uploaded {report.bytes_uploaded} bytes in {len(report.uploaded)} part(s), "
        f"{len(report.skipped)} unchanged, {time.monotonic() - t0:.2f} s)"
    )
    for what, url in handle.data.get("links", {}).items():
        title += f"\n  {what}: {url}"
    display.started(handle, title)
    if not wait:
        display.message(
            f"Submitted {job.job_name}; not waiting. jupyter_remote.attach({job.job_name!r}) "
            "waits and writes back; %remote_jobs lists jobs."
        )
        follow_in_background(display, result, poll_interval=settings.poll_interval)
        return result
    result.wait(namespace, display=display, timeout=timeout, poll_interval=settings.poll_interval)
    return result


def _endpoint_for(record: JobRecord, settings: RemoteSettings) -> Endpoint:
    saved = record.handle.get("endpoint", {})
    if saved.get("kind") == "embedded":
        return embedded_endpoint()
    profile = saved.get("profile") or settings.profile or None
    if saved.get("kind") == "custom":
        return Endpoint("custom", url=saved["url"], region=saved.get("region"), profile=profile)
    return Endpoint("aws", region=saved.get("region"), profile=profile)


def attach(
    job_id: str,
    *,
    user_ns: MutableMapping[str, Any] | None = None,
    wait: bool = True,
    timeout: float | None = None,
    display: JobDisplay | None = None,
    store: JobStore | None = None,
    settings: RemoteSettings | None = None,
) -> RemoteJob:
    """Find a recorded job (even from another kernel); with ``wait``, follow it and write back."""
    settings = settings or RemoteSettings()
    store = store or JobStore()
    record = store.get(job_id)
    endpoint = _endpoint_for(record, settings)
    runner = _engine(record.engine, endpoint, record.handle["staging"], store)
    handle = JobHandle(record.engine, record.kind, record.job_id, dict(record.handle))
    job: RemoteJob
    if record.kind == "s3batch":
        from .s3batch_job import S3BatchJob

        job = S3BatchJob(runner, handle, record)
    else:
        job = RemoteJob(runner, handle, record)
    if wait:
        namespace = user_ns if user_ns is not None else _caller_namespace()
        display = display or make_display(widgets=settings.widgets)
        bind_job(display, job)
        display.started(handle, f"attached to {record.job_id} on {record.engine}")
        job.wait(namespace, display=display, timeout=timeout, poll_interval=settings.poll_interval)
    return job


def jobs(
    *, engine: str | None = None, active_only: bool = False, store: JobStore | None = None
) -> list[JobRecord]:
    """Recorded jobs, newest first."""
    return (store or JobStore()).list(engine=engine, active_only=active_only)
