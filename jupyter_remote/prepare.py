"""Turn a cell into a processing job: snapshot, bundle, request. Nothing is uploaded here."""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .analysis import CellNames, analyze_cell
from .bundle import JobBundle
from .errors import ConfigurationError
from .s3uri import S3Uri
from .snapshot import Snapshot, capture
from .spec import processing as spec
from .storage import check_local_path

RUNTIME_DIR = Path(__file__).parent / "runtime"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass
class ProcessingOptions:
    """Everything ``%%remote_process`` accepts, resolved against the settings."""

    instance_type: str
    instance_count: int
    volume_size: int
    max_runtime: int
    image: str
    role_arn: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    shard: list[str] = field(default_factory=list)
    continuous: list[str] = field(default_factory=list)
    requirements: str | None = None
    modules: list[str] = field(default_factory=list)
    config_command: str | None = None
    env: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    network: dict[str, Any] | None = None


@dataclass
class PreparedJob:
    """A cell made ready to submit."""

    job_name: str
    key: bytes
    names: CellNames
    snapshot: Snapshot
    bundle: JobBundle
    request: dict[str, Any]
    manifest_uri: S3Uri
    results_uri: S3Uri
    manifest: list[Any]


def _channels(texts: list[str], kind: str, modes: list[str], mode: str) -> list[spec.Channel]:
    channels = [spec.Channel.parse(t, kind=kind) for t in texts]
    names = {c.name for c in channels}
    unknown = sorted(set(modes) - names)
    if unknown:
        raise ConfigurationError(f"{unknown} named for {mode} but not given as --{kind} NAME=URI")
    reserved = names & {spec.CODE_INPUT, spec.RESULTS_OUTPUT}
    if reserved:
        raise ConfigurationError(f"{sorted(reserved)} is reserved for jupyter-remote's own use")
    return [spec.Channel(c.name, c.uri, mode if c.name in modes else "") for c in channels]


def _cloudpickle_sources() -> dict[str, bytes]:
    """The kernel's own cloudpickle sources, shipped beside the bootstrap.

    An AWS image need not have cloudpickle installed, and the notebook's own version is the one
    that pickled the payload; the bootstrap puts its folder first on ``sys.path``.
    """
    import cloudpickle

    folder = Path(cloudpickle.__file__).parent
    return {f"cloudpickle/{path.name}": path.read_bytes() for path in sorted(folder.glob("*.py"))}


def _environment(pairs: list[str]) -> dict[str, str]:
    from .spec.pairs import parse_pairs

    env = parse_pairs(pairs, "--env")
    if spec.SIGNING_KEY_ENV in env:
        raise ConfigurationError(f"--env {spec.SIGNING_KEY_ENV} is reserved")
    return env


def prepare_processing(
    cell: str,
    user_ns: dict[str, Any],
    options: ProcessingOptions,
    *,
    staging: S3Uri,
    workdir: Path,
    job_name: str | None = None,
) -> PreparedJob:
    """Check every option, capture the variables, build the bundle and the request.

    Every user mistake raises here, before anything is uploaded or recorded.
    """
    inputs = _channels(options.inputs, "input", options.shard, "ShardedByS3Key")
    outputs = _channels(options.outputs, "output", options.continuous, "Continuous")
    environment = _environment(options.env)
    spec.check_instance_type(options.instance_type)
    modules = [check_local_path(m, "--module") for m in options.modules]
    requirements = (
        check_local_path(options.requirements, "--requirements") if options.requirements else None
    )
    names = analyze_cell(cell)
    job_name = job_name or spec.make_job_name()
    key = secrets.token_bytes(32)
    snapshot = capture(user_ns, names.reads, workdir, exclude=options.exclude)

    bundle = JobBundle()
    runtime = bundle.add_group(
        {
            "processing_bootstrap.py": (RUNTIME_DIR / "processing_bootstrap.py").read_bytes(),
            "payload.py": (RUNTIME_DIR / "payload.py").read_bytes(),
            **_cloudpickle_sources(),
        }
    )
    from .runtime.payload import sign

    document = {
        "format": 1,
        "python": PYTHON,
        "cell": bundle.add_bytes("cell.py", cell.encode("utf-8")),
        "payload": {
            "path": bundle.add_file("payload.bin", snapshot.path, snapshot.sha256),
            "sha256": snapshot.sha256,
            "signature": sign(key, "payload", snapshot.sha256),
        },
        "imports": snapshot.imports,
        "reads": sorted(names.reads),
        "assigns": sorted(names.assigns),
        "deletes": sorted(names.deletes),
        "requirements": bundle.add_file("requirements.txt", requirements) if requirements else None,
        "modules": [bundle.add_module(m) for m in modules],
        "config_command": options.config_command,
        "code_input": spec.CODE_INPUT,
        "results_output": spec.RESULTS_DIR,
        "results_output_name": spec.RESULTS_OUTPUT,
    }
    job_document = bundle.add_bytes("job.json", json.dumps(document, sort_keys=True).encode())

    job_prefix = staging.join("jobs", job_name)
    manifest_uri = job_prefix.join("code.manifest.json")
    results_uri = job_prefix.join("results").as_prefix()
    request = spec.build_processing_request(
        job_name=job_name,
        image_uri=options.image,
        role_arn=options.role_arn,
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        volume_size=options.volume_size,
        max_runtime=options.max_runtime,
        code_manifest_uri=str(manifest_uri),
        entrypoint=[
            "python3",
            f"{spec.CODE_DIR}/{runtime['processing_bootstrap.py']}",
            f"{spec.CODE_DIR}/{job_document}",
        ],
        results_uri=str(results_uri),
        inputs=inputs,
        outputs=outputs,
        environment={**environment, spec.SIGNING_KEY_ENV: key.hex()},
        tags={"jupyter-remote:version": __version__, **options.tags},
        network=options.network,
    )
    return PreparedJob(
        job_name=job_name,
        key=key,
        names=names,
        snapshot=snapshot,
        bundle=bundle,
        request=request,
        manifest_uri=manifest_uri,
        results_uri=results_uri,
        manifest=bundle.manifest(f"s3://{staging.bucket}/{staging.join('parts').key}/"),
    )


def redacted(request: dict[str, Any]) -> dict[str, Any]:
    """The request with the signing key masked, for printing."""
    copy = json.loads(json.dumps(request))
    if spec.SIGNING_KEY_ENV in copy.get("Environment", {}):
        copy["Environment"][spec.SIGNING_KEY_ENV] = "***"
    return copy
