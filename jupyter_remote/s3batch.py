"""``s3batch()``: run a cell's function over every object of a manifest (S3 Batch Operations).

The cell becomes a Lambda package (:mod:`.engines.lambda_package`) and an S3 Control
``CreateJob`` request (:mod:`.spec.s3batch`); an engine runs that request. The result is the
completion report as a table (:mod:`.s3batch_report`). ``%%s3batch`` (:mod:`.magics_s3batch`)
is argument parsing over :func:`s3batch`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple

from .api import _caller_namespace, _engine
from .config import RemoteSettings, choose_engine, resolve_endpoint, staging_uri
from .display import JobDisplay, bind_job, follow_in_background, make_display
from .engines.base import S3BATCH
from .errors import ConfigurationError
from .jobstore import JobRecord, JobStore
from .s3batch_cleanup import cleanup  # noqa: F401  (public: jupyter_remote.s3batch.cleanup)
from .s3batch_job import S3BatchJob
from .s3uri import S3Uri
from .spec.lambda_function import DEFAULT_EPHEMERAL, FunctionSettings, parse_env
from .spec.s3batch import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MEMORY,
    DEFAULT_PRIORITY,
    DEFAULT_SCHEMA,
    DEFAULT_TIMEOUT,
    ManifestLocation,
)

SIGNING_KEY_ENV = "JUPYTER_REMOTE_SIGNING_KEY"
KEY_FILE = "s3batch-signing.key"


def signing_key() -> bytes:
    """Return this user's key for %%s3batch payloads, created once (``0600``).

    One key per user, not per job: the signature is part of the package, so a per-job key would
    give every run a new package hash and a new Lambda function even when nothing changed.
    """
    from .paths import data_dir

    path = data_dir() / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key


def _check_options(
    manifest: str | None,
    bucket: str | None,
    prefix: str | None,
    schema: str,
    report_scope: str,
    concurrency: int,
    output_var: str | None,
    *,
    function: FunctionSettings,
    priority: int,
    generator: bool = False,
) -> None:
    from .spec.s3batch import MAX_PRIORITY, REPORT_SCOPES, SCHEMAS

    if bool(manifest) == bool(bucket):
        raise ConfigurationError(
            "give either --manifest s3://bucket/manifest.csv or --bucket NAME [--prefix P]"
        )
    if prefix and not bucket:
        raise ConfigurationError("--prefix needs --bucket")
    if generator and not bucket:
        raise ConfigurationError("--manifest-generator lists --bucket/--prefix; give --bucket")
    if schema not in SCHEMAS:
        raise ConfigurationError(f"--schema must be one of {', '.join(SCHEMAS)}, not {schema!r}")
    if report_scope not in REPORT_SCOPES:
        raise ConfigurationError(
            f"--report-scope must be one of {', '.join(REPORT_SCOPES)}, not {report_scope!r}"
        )
    if not 1 <= concurrency <= 1000:
        raise ConfigurationError(f"--concurrency must be 1-1000, got {concurrency}")
    # Checked here as well as in the requests, so that nothing (a listed manifest) is written
    # for a job that would be refused.
    function.check(reserved=[SIGNING_KEY_ENV])
    if not 0 <= priority <= MAX_PRIORITY:
        raise ConfigurationError(f"--priority must be 0-{MAX_PRIORITY}, got {priority}")
    if output_var is not None and not output_var.isidentifier():
        raise ConfigurationError(f"--output-var {output_var!r} is not a Python name")


def _check_layers(engine_name: str, endpoint: Any, layers: tuple[str, ...], unzipped: int) -> None:
    """Each ``--layer`` exists, and code plus layers may fit Lambda's 250 MB; before uploading.

    GetLayerVersion gives each layer's zipped size, a lower bound of its unzipped size, so
    a total over the limit is certainly refused by Lambda (one under it may still be).
    """
    if not layers:
        return
    if engine_name == "local":
        raise ConfigurationError(
            "--layer: the local engine cannot run Lambda layers (their code lives in AWS). "
            "Put the packages in --requirements, or run on AWS with --engine s3batch."
        )
    from botocore.exceptions import ClientError

    from .spec.lambda_function import UNZIPPED_LIMIT
    from .storage import make_client

    lam = make_client(endpoint, "lambda")
    total = unzipped
    for arn in layers:
        try:
            # GetLayerVersion with the unversioned ARN: the same answer as GetLayerVersionByArn,
            # which moto's server does not implement.
            layer, _, version = arn.rpartition(":")
            content = lam.get_layer_version(LayerName=layer, VersionNumber=int(version))["Content"]
        except ClientError as exc:
            raise ConfigurationError(f"--layer {arn}: {exc}") from exc
        total += int(content.get("CodeSize") or 0)
    if total > UNZIPPED_LIMIT:
        raise ConfigurationError(
            f"--layer: the package ({unzipped / 1e6:.1f} MB unzipped) and its layers "
            f"({(total - unzipped) / 1e6:.1f} MB zipped, so at least that unzipped) exceed the "
            f"{UNZIPPED_LIMIT / 1e6:.0f} MB Lambda allows for code plus layers"
        )


class _Objects(NamedTuple):
    """What a job runs over: a manifest object or a generator, the count if known, in words."""

    location: ManifestLocation | None
    generator: dict[str, Any] | None
    count: int | None
    text: str


def _objects(
    runner: Any,
    staging: S3Uri,
    job_id: str,
    *,
    manifest: str | None,
    bucket: str | None,
    prefix: str | None,
    generator: bool,
    dry_run: bool,
) -> _Objects:
    """Locate ``--manifest``, or list ``--bucket/--prefix`` into one (or leave that to the job)."""
    from .s3batch_manifest import generate_manifest, locate_manifest

    client = runner.storage.client
    if manifest:
        location = locate_manifest(client, S3Uri.parse(manifest, what="--manifest"))
        return _Objects(location, None, None, f"the objects of {manifest}")
    source = S3Uri.parse(f"s3://{bucket}/{prefix or ''}", what="--bucket/--prefix")
    if generator:
        from .s3batch_generator import generator_request

        request = generator_request(
            source_bucket=source.bucket,
            prefix=source.key,
            output_bucket=staging.bucket,
            output_prefix=staging.join("s3batch-manifests").key,
        )
        count = None
        if dry_run:  # the cost estimate needs a count: list, write nothing
            dest = staging.join("s3batch-manifests", f"{job_id}.csv")
            count = generate_manifest(client, source, dest, upload=False)[1]
        return _Objects(None, request, count, f"the objects under {source} (listed by the job)")
    if not dry_run:
        runner.storage.ensure_bucket(staging.bucket)
    dest = staging.join("s3batch-manifests", f"{job_id}.csv")
    location, count = generate_manifest(client, source, dest, upload=not dry_run)
    return _Objects(location, None, count, f"{count:,} objects of {source}")


def _entry_point(cell: str) -> str:
    from .analysis import analyze_cell

    assigns = analyze_cell(cell).assigns
    for entry in ("process", "handler"):
        if entry in assigns:
            return entry
    raise ConfigurationError(
        "the %%s3batch cell must define process(bucket, key) (called once per object) or "
        "handler(event, context) (a raw Lambda handler)"
    )


def _account(engine_name: str, endpoint: Any) -> str:
    if engine_name == "local":
        from .engines.local import LOCAL_ACCOUNT

        return LOCAL_ACCOUNT
    from .storage import make_client

    return str(make_client(endpoint, "sts").get_caller_identity()["Account"])


def _redacted(document: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    variables = copy.get("Environment", {}).get("Variables", {})
    if SIGNING_KEY_ENV in variables:
        variables[SIGNING_KEY_ENV] = "***"
    return copy


def _given_roles(
    engine_name: str, endpoint: Any, lambda_role: str | None, batch_role: str | None
) -> tuple[str | None, str | None]:
    """ARNs of ``--lambda-role``/``--batch-role`` (a name or an ARN), checked to exist.

    Resolved before anything is uploaded, so a misspelt role costs nothing. The local engine
    assumes no role, so it ignores both.
    """
    if engine_name == "local" or not (lambda_role or batch_role):
        return None, None
    from .engines.aws_calls import caller_identity
    from .engines.iam import _named_role
    from .engines.s3batch_iam import BATCH_ROLE, LAMBDA_ROLE
    from .storage import make_client

    iam = make_client(endpoint, "iam")
    identity = caller_identity(make_client(endpoint, "sts"))
    resolved = []
    for requested, option, managed in (
        (lambda_role, "--lambda-role", LAMBDA_ROLE),
        (batch_role, "--batch-role", BATCH_ROLE),
    ):
        resolved.append(
            _named_role(requested, iam=iam, identity=identity, option=option, managed=managed)
            if requested
            else None
        )
    return resolved[0], resolved[1]


def s3batch(
    cell: str,
    *,
    user_ns: MutableMapping[str, Any] | None = None,
    manifest: str | None = None,
    bucket: str | None = None,
    prefix: str | None = None,
    manifest_generator: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: int = DEFAULT_TIMEOUT,
    memory: int = DEFAULT_MEMORY,
    ephemeral_storage: int = DEFAULT_EPHEMERAL,
    env: Iterable[str] | Mapping[str, str] = (),
    layers: Iterable[str] = (),
    user_args: Iterable[str] = (),
    schema: str = DEFAULT_SCHEMA,
    report_scope: str = "AllTasks",
    confirm: bool = False,
    priority: int = DEFAULT_PRIORITY,
    requirements: str | None = None,
    exclude: Iterable[str] = (),
    allow_bucket: Iterable[str] = (),
    lambda_role: str | None = None,
    batch_role: str | None = None,
    tags: Iterable[str] = (),
    expected_seconds: float = 1.0,
    output_var: str | None = None,
    engine: str = "",
    wait: bool = True,
    dry_run: bool = False,
    settings: RemoteSettings | None = None,
    display: JobDisplay | None = None,
    store: JobStore | None = None,
) -> S3BatchJob | dict[str, Any]:
    """Run the cell's ``process(bucket, key)`` over every object of a manifest; see ``%%s3batch?``.

    Objects come from ``manifest`` (an S3 URI of a CSV manifest) or from listing ``bucket``
    under ``prefix``: here, or with ``manifest_generator`` by the job itself (CreateJob
    ``ManifestGenerator``; the list it made is kept in the staging prefix). With ``wait`` (the
    default) this follows the job and stores the report table in ``output_var``; with
    ``confirm`` the job waits, Suspended, for :meth:`S3BatchJob.confirm`. ``lambda_role`` (the
    function's execution role) and ``batch_role`` (the role S3 Batch Operations assumes) are
    names or ARNs; each one left out is created, scoped to the job, by the ``s3batch`` engine.
    ``settings.role`` is never used here: one role cannot be trusted by both Lambda and S3 Batch
    Operations. ``tags`` are ``K=V`` job tags. ``timeout``, ``memory``, ``ephemeral_storage``
    (MB of ``/tmp``), ``env`` (``K=V`` strings or a mapping) and ``layers`` (layer version ARNs,
    AWS only) configure the function. Returns the :class:`S3BatchJob`, or with ``dry_run`` the
    ``{"CreateJob": ..., "CreateFunction": ...}`` requests.
    """
    from .engines.lambda_package import PYTHON, build_package, function_config
    from .engines.local import LOCAL_ROLE_ARN
    from .snapshot import capture
    from .spec import s3batch as spec
    from .storage import check_local_path

    settings = settings or RemoteSettings()
    namespace = user_ns if user_ns is not None else _caller_namespace()
    display = display or make_display(widgets=settings.widgets and not dry_run)
    function_settings = FunctionSettings(
        timeout=timeout,
        memory=memory,
        ephemeral_storage=ephemeral_storage,
        environment=dict(env) if isinstance(env, Mapping) else parse_env(env),
        layers=tuple(layers),
    )
    _check_options(
        manifest,
        bucket,
        prefix,
        schema,
        report_scope,
        concurrency,
        output_var,
        function=function_settings,
        priority=priority,
        generator=manifest_generator,
    )
    arguments = spec.parse_user_args(user_args)
    if arguments and schema != "2.0":
        raise ConfigurationError("--user-arg needs --schema 2.0 (schema 1.0 carries no arguments)")
    job_tags = spec.parse_tags(tags)
    req_path = check_local_path(requirements, "--requirements") if requirements else None
    entry = _entry_point(cell)
    engine_name, why = choose_engine(engine, settings, S3BATCH)
    endpoint = resolve_endpoint(settings)
    staging = staging_uri(settings, endpoint)
    lambda_role_arn, batch_role_arn = _given_roles(engine_name, endpoint, lambda_role, batch_role)
    key = signing_key()
    from .analysis import analyze_cell
    from .runtime.payload import sign

    with tempfile.TemporaryDirectory(prefix="jupyter-remote-") as tmp:
        snapshot = capture(namespace, analyze_cell(cell).reads, tmp, exclude=exclude)
        document = {
            "format": 1,
            "python": PYTHON,
            "entry": entry,
            "cell": "cell.py",
            "payload": {
                "path": "payload.bin",
                "sha256": snapshot.sha256,
                "signature": sign(key, "payload", snapshot.sha256),
            },
            "imports": snapshot.imports,
        }
        files: dict[str, bytes | Path] = {
            "job.json": json.dumps(document, sort_keys=True).encode(),
            "cell.py": cell.encode("utf-8"),
            "payload.bin": snapshot.path,
        }
        package = build_package(files, requirements=req_path)
    _check_layers(engine_name, endpoint, function_settings.layers, package.unzipped_size)
    store = store or JobStore()
    runner = _engine(engine_name, endpoint, str(staging), store)
    client = runner.storage.client
    job_id = str(uuid.uuid4())
    objects = _objects(
        runner,
        staging,
        job_id,
        manifest=manifest,
        bucket=bucket,
        prefix=prefix,
        generator=manifest_generator,
        dry_run=dry_run,
    )
    location, count = objects.location, objects.count
    account = _account(engine_name, endpoint)
    region = endpoint.region or "us-east-1"
    code = staging.join("lambda", f"{package.sha256}.zip")
    # LOCAL_ROLE_ARN tells the s3batch engine to create (or widen) its own scoped role.
    function = function_config(
        package,
        code={"S3Bucket": code.bucket, "S3Key": code.key},
        role=lambda_role_arn or LOCAL_ROLE_ARN,
        settings=function_settings,
        extra_env={SIGNING_KEY_ENV: key.hex()},
    )
    report_prefix = staging.join("s3batch-reports").key
    first_line = next((ln.strip() for ln in cell.splitlines() if ln.strip()), "")
    request = spec.build_create_job_request(
        account_id=account,
        function_arn=package.function_arn(region, account),
        manifest=location,
        manifest_generator=objects.generator,
        report_bucket=staging.bucket,
        report_prefix=report_prefix,
        role_arn=batch_role_arn or LOCAL_ROLE_ARN,
        client_request_token=job_id,
        report_scope=report_scope,
        priority=priority,
        confirmation_required=confirm,
        schema=schema,
        user_arguments=arguments,
        description=f"jupyter-remote %%s3batch: {first_line}"[:256],
        tags=job_tags,
    )
    if dry_run:
        shown = {"CreateJob": request, "CreateFunction": _redacted(function)}
        if engine_name != "local":
            from . import s3batch_cost

            if count is None:  # a given manifest: its rows are the tasks
                from .s3batch_manifest import count_rows, iter_lines

                assert location is not None  # only a generator job counts nothing up front
                uri = location.uri
                count = count_rows(
                    iter_lines(client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"])
                )
            shown["EstimatedCost"] = s3batch_cost.estimate(
                count,
                memory_mb=memory,
                expected_seconds=expected_seconds,
                ephemeral_mb=ephemeral_storage,
            )
        display.message(json.dumps(shown, indent=2, default=str))
        if "EstimatedCost" in shown:
            display.message(s3batch_cost.describe(shown["EstimatedCost"]))
        return shown
    display.message(why)
    runner.storage.ensure_bucket(staging.bucket)
    if not runner.storage.exists(code):
        runner.storage.upload_file(package.path, code)
    record = JobRecord(
        job_id=job_id,
        engine=engine_name,
        kind=S3BATCH,
        state="Submitting",
        created=time.time(),
        updated=time.time(),
        request=request,
        handle={
            "key": key.hex(),
            "staging": str(staging),
            "endpoint": {"kind": endpoint.kind, "url": endpoint.url, "region": endpoint.region},
            "function": function,
            "package_sha256": package.sha256,
            "concurrency": concurrency,
            # Buckets the function may read and write when the s3batch engine creates its role.
            "buckets": sorted({*([bucket] if bucket else []), *allow_bucket}),
            "report": {"bucket": staging.bucket, "prefix": report_prefix},
        },
        writeback={"output_var": output_var or ""},
        cell=cell,
    )
    handle = runner.submit(record)
    job = S3BatchJob(runner, handle, record)
    bind_job(display, job)
    display.started(
        handle,
        f"{job_id}: {entry}() over {objects.text}, {concurrency} at a time, timeout {timeout} s, "
        f"on {engine_name} (Lambda package {package.size / 1e6:.1f} MB, {package.function_name})",
    )
    if confirm:
        display.message(
            "The job waits (Suspended) until confirmed: job.confirm() (from another kernel: "
            f"jupyter_remote.s3batch.S3BatchJob.find({job_id!r}).confirm()), then job.wait()."
        )
        follow_in_background(display, job, poll_interval=settings.poll_interval)
        return job
    if not wait:
        display.message(
            f"Submitted {job_id}; not waiting. job.wait() (from another kernel: "
            f"jupyter_remote.s3batch.S3BatchJob.find({job_id!r}).wait()) follows it."
        )
        follow_in_background(display, job, poll_interval=settings.poll_interval)
        return job
    job.wait(namespace, display=display, poll_interval=settings.poll_interval)
    return job


class _CallableModule(types.ModuleType):
    """The module type of this module: callable, as :func:`s3batch`.

    ``jupyter_remote.s3batch`` is both this submodule and the public function: once the
    submodule is imported, the import system binds the package attribute to the module, so the
    module forwards calls to the function and ``jupyter_remote.s3batch(cell, ...)`` always works.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> S3BatchJob | dict[str, Any]:
        return s3batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
