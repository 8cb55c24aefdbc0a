"""The Lambda deployment package of a ``%%s3batch`` cell: one deterministic zip, cached by hash.

Layout (the zip root is Lambda's task root, ``/var/task``)::

    jupyter_remote/__init__.py                 a stub exporting TemporaryFailure/PermanentFailure
    jupyter_remote/runtime/lambda_handler.py   the handler wrapper (stdlib + cloudpickle)
    jupyter_remote/runtime/payload.py          the signed payload format
    jupyter_remote_job/job.json                python, entry point, payload signature, imports
    jupyter_remote_job/cell.py                 the cell source
    jupyter_remote_job/payload.bin             the variables the cell reads (signed)
    cloudpickle/...                            the Lambda runtime does not ship it
    <requirements>                             installed for the Lambda platform

Entries are sorted with fixed timestamps and modes, so an unchanged cell with unchanged variables
gives the same bytes, the same sha256 and therefore the same function name: nothing is redeployed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import _SKIP_DIRS, _ZIP_EPOCH, _file_sha256
from ..errors import ConfigurationError
from ..paths import data_dir
from ..spec.lambda_function import UNZIPPED_LIMIT, FunctionSettings

HANDLER = "jupyter_remote.runtime.lambda_handler.handler"
JOB_FOLDER = "jupyter_remote_job"
PLATFORM = "manylinux2014_x86_64"
RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_STUB = (
    '"""Stand-in for jupyter-remote inside a Lambda package: only what a cell may import."""\n\n'
    "from .runtime.lambda_handler import PermanentFailure, TemporaryFailure\n\n"
    '__all__ = ["PermanentFailure", "TemporaryFailure"]\n'
)
_FORMAT = 1  # bump when the layout changes, so cached packages are not reused

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class LambdaPackage:
    """A built package in the local cache."""

    path: Path
    sha256: str
    size: int
    unzipped_size: int
    runtime: str
    handler: str = HANDLER

    @property
    def function_name(self) -> str:
        """The function name derived from the package hash (same code, same function)."""
        return f"jupyter-remote-{self.sha256[:12]}"

    def function_arn(self, region: str, account: str, version: str = "1") -> str:
        """The qualified ARN S3 Batch invokes (a pinned version, so updates never mix)."""
        return f"arn:aws:lambda:{region}:{account}:function:{self.function_name}:{version}"


def cache_dir() -> Path:
    """Where packages and installed requirements are cached."""
    path = data_dir() / "lambda-packages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def python_runtimes() -> list[str]:
    """The Python runtimes botocore's Lambda model allows for CreateFunction."""
    from ..spec.validation import enum_values

    return [r for r in enum_values("lambda", "CreateFunction", "Runtime") if r.startswith("python")]


def check_runtime(python: str = PYTHON) -> str:
    """Return ``pythonX.Y`` for this notebook's Python, or refuse one Lambda does not offer."""
    runtime = f"python{python}"
    allowed = python_runtimes()
    if runtime not in allowed:
        raise ConfigurationError(
            f"Lambda has no {runtime} runtime, and the cell's pickled variables only load in the "
            f"Python that wrote them. Run the notebook on one of: {', '.join(allowed)}; or use "
            "%%remote_process, whose container can run any Python."
        )
    return runtime


def install_requirements(
    requirements: Path, python: str = PYTHON, *, runner: Runner = subprocess.run
) -> Path:
    """Install a requirements file for Lambda's platform into a cached folder; return it.

    Wheels only (``--only-binary=:all:``) for ``manylinux2014_x86_64`` and CPython ``python``,
    so what lands in the package runs on Lambda whatever this machine is. The folder is keyed by
    the file's bytes, the Python version and the platform, and reused while they are unchanged.
    """
    text = requirements.read_bytes()
    digest = hashlib.sha256(b"%s\0%s\0%s" % (text, python.encode(), PLATFORM.encode()))
    target = cache_dir() / "requirements" / digest.hexdigest()[:32]
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--no-compile",
        "--target",
        str(tmp),
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--only-binary=:all:",
        "-r",
        str(requirements),
    ]
    done = runner(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
        raise ConfigurationError(
            f"--requirements {requirements}: pip could not install them for Lambda "
            f"({PLATFORM}, Python {python}, wheels only):\n{tail}"
        )
    (tmp / ".complete").touch()
    try:
        os.replace(tmp, target)
    except OSError:  # another kernel finished the same install first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _tree(root: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")) or name == ".complete":
                continue
            path = Path(dirpath) / name
            yield prefix + path.relative_to(root).as_posix(), path


def package_files(
    job_files: dict[str, bytes | Path], requirements_dir: Path | None = None
) -> dict[str, bytes | Path]:
    """Every entry of the package: arcname → bytes or a file to copy."""
    import cloudpickle

    files: dict[str, bytes | Path] = {}
    if requirements_dir is not None:
        files.update(_tree(requirements_dir))
    if not any(name.startswith("cloudpickle/") for name in files):
        files.update(_tree(Path(cloudpickle.__file__).parent, "cloudpickle/"))
    files.update(
        {
            "jupyter_remote/__init__.py": _STUB.encode(),
            "jupyter_remote/runtime/__init__.py": (RUNTIME_DIR / "__init__.py").read_bytes(),
            "jupyter_remote/runtime/lambda_handler.py": RUNTIME_DIR / "lambda_handler.py",
            "jupyter_remote/runtime/payload.py": RUNTIME_DIR / "payload.py",
        }
    )
    files.update({f"{JOB_FOLDER}/{name}": data for name, data in job_files.items()})
    return files


def _size(data: bytes | Path) -> int:
    return len(data) if isinstance(data, bytes) else data.stat().st_size


def package_too_big(what: str, size: int, limit: int) -> ConfigurationError:
    """The error for a package over one of Lambda's limits, with the ways out."""
    return ConfigurationError(
        f"The Lambda package is {size / 1e6:.1f} MB {what}; Lambda accepts at most "
        f"{limit / 1e6:.0f} MB {what}. Make it smaller (fewer or lighter --requirements, smaller "
        "variables read by the cell), deploy the function as a container image (up to 10 GB), "
        "or run the work with %%remote_process."
    )


def write_zip(files: dict[str, bytes | Path], dest: Path) -> None:
    """Write ``files`` as a deterministic zip (sorted names, fixed time, fixed modes)."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            data = files[name]
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            executable = isinstance(data, Path) and os.access(data, os.X_OK)
            info.external_attr = (0o755 if executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(data, bytes):
                archive.writestr(info, data)
                continue
            with open(data, "rb") as src, archive.open(info, "w") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)


def _inputs_digest(files: dict[str, bytes | Path]) -> str:
    sha = hashlib.sha256(f"format {_FORMAT}\n".encode())
    for name in sorted(files):
        data = files[name]
        part = hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else _file_sha256(data)
        sha.update(f"{name}\0{part}\n".encode())
    return sha.hexdigest()


def build_package(
    job_files: dict[str, bytes | Path],
    *,
    requirements: Path | None = None,
    python: str = PYTHON,
    runner: Runner = subprocess.run,
) -> LambdaPackage:
    """Build (or find in the cache) the package for one cell's job files.

    ``job_files`` maps names inside ``jupyter_remote_job/`` (``job.json``, ``cell.py``,
    ``payload.bin``) to bytes or paths. Raises :class:`ConfigurationError` for a runtime Lambda
    lacks, a failed requirements install, or a package over Lambda's unzipped size limit. A zip
    over the 50 MB Lambda takes inline is fine: it is deployed from the staging bucket.
    """
    runtime = check_runtime(python)
    req_dir = install_requirements(requirements, python, runner=runner) if requirements else None
    files = package_files(job_files, req_dir)
    unzipped = sum(_size(data) for data in files.values())
    if unzipped > UNZIPPED_LIMIT:
        raise package_too_big("unzipped", unzipped, UNZIPPED_LIMIT)
    cache = cache_dir()
    index = cache / "by-input" / f"{_inputs_digest(files)}.json"
    if index.exists():
        known = json.loads(index.read_text())
        path = cache / f"{known['sha256']}.zip"
        if path.exists():
            return LambdaPackage(path, known["sha256"], path.stat().st_size, unzipped, runtime)
    fd, tmp_name = tempfile.mkstemp(prefix=".building-", suffix=".zip", dir=cache)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_zip(files, tmp)
        size = tmp.stat().st_size
        sha = _file_sha256(tmp)
        path = cache / f"{sha}.zip"
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    index.parent.mkdir(exist_ok=True)
    index.write_text(json.dumps({"sha256": sha}))
    return LambdaPackage(path, sha, size, unzipped, runtime)


def function_config(
    package: LambdaPackage,
    *,
    code: dict[str, Any],
    role: str,
    settings: FunctionSettings,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The validated ``CreateFunction`` request that deploys ``package`` (``Code`` as given).

    ``settings`` must have passed :meth:`FunctionSettings.check`; ``extra_env`` are the variables
    jupyter-remote adds (the payload signing key).
    """
    from ..spec.validation import validate_with_botocore

    request = {
        "FunctionName": package.function_name,
        "Runtime": package.runtime,
        "Handler": package.handler,
        "Role": role,
        "Code": code,
        **settings.request_fields(extra_env),
        "Architectures": ["x86_64"],
        "PackageType": "Zip",
        "Publish": True,
        "Description": f"jupyter-remote %%s3batch cell, package sha256 {package.sha256[:12]}",
    }
    validate_with_botocore("lambda", "CreateFunction", request)
    return request
