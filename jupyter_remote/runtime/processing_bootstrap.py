"""Entry point of a ``%%remote_process`` job inside the processing container.

Standard library + cloudpickle only (the payload module ships beside this file). Steps:

1. read ``/opt/ml/config/processingjobconfig.json`` and ``resourceconfig.json``;
2. check that this Python's major.minor equals the notebook's;
3. install requirements, run the configuration command in a shell, put modules on ``sys.path``;
4. restore the signed payload and run the cell with ``INPUTS`` / ``OUTPUTS`` dicts of local paths;
5. pickle what the cell assigned (and what it changed in place) into a signed results payload in
   the results output; on error write the first 1 KB to ``/opt/ml/output/message``, exit non-zero.

``JUPYTER_REMOTE_OPT_ML`` lets a local engine map ``/opt/ml`` to a sandbox without editing any
user code; on SageMaker it is unset and the real paths are used.
"""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
import time
import traceback
import types
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import payload

OPT_ML = "/opt/ml"
ML_ROOT = os.environ.get("JUPYTER_REMOTE_OPT_ML", OPT_ML)
KEY_ENV = "JUPYTER_REMOTE_SIGNING_KEY"
EXIT_PYTHON_MISMATCH = 3


def log(message: str) -> None:
    """Print a bootstrap line (the cell's own output is not prefixed)."""
    print(f"[jupyter-remote] {message}", flush=True)


def local(path: str) -> Path:
    """Map a container path under /opt/ml to where it really is on this host."""
    if path == OPT_ML or path.startswith(OPT_ML + "/"):
        return Path(ML_ROOT + path[len(OPT_ML) :])
    return Path(path)


def write_message(text: str) -> None:
    """Write the first 1 KB of ``text`` (UTF-8, cut at a character boundary) as ExitMessage."""
    target = local(f"{OPT_ML}/output/message")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")[:1024].decode("utf-8", errors="ignore")
    target.write_text(data, encoding="utf-8")


def install_requirements(path: Path, site: Path) -> None:
    """Install a requirements file into ``site`` (kept off the image's own site-packages)."""
    log(f"installing requirements from {path.name}")
    site.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*cmd, "--target", str(site), "-r", str(path)], check=True)
    sys.path.insert(0, str(site))


def add_modules(paths: list[Path], into: Path) -> None:
    """Unpack zipped module folders and copy module files into ``into``; put it on sys.path."""
    into.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                archive.extractall(into)
        else:
            (into / path.name).write_bytes(path.read_bytes())
    sys.path.insert(0, str(into))


def run_cell(source: str, namespace: dict[str, Any]) -> None:
    """Execute the cell as the body of a fresh ``__main__`` module."""
    module = types.ModuleType("__main__")
    module.__dict__.update(namespace)
    previous = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    # Registered so tracebacks show the cell's own lines, as they would in the notebook.
    linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
    try:
        code = compile(source, "<cell>", "exec")
        exec(code, module.__dict__)
    finally:
        namespace.clear()
        namespace.update(module.__dict__)
        if previous is not None:
            sys.modules["__main__"] = previous


def collect_results(
    job: dict[str, Any], namespace: dict[str, Any], before: dict[str, str | None]
) -> dict[str, Any]:
    """Gather the names to write back: assigned, deleted and changed-in-place."""
    values: dict[str, Any] = {}
    imports: dict[str, str] = {}
    skipped: dict[str, str] = {}
    wanted = list(job["assigns"])
    for name, digest in before.items():
        if name in namespace and payload.value_digest(namespace[name]) != digest:
            wanted.append(name)  # read and changed in place
    for name in dict.fromkeys(wanted):
        if name not in namespace:
            continue
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            imports[name] = value.__name__
        elif payload.value_digest(value) is None:
            skipped[name] = f"{type(value).__module__}.{type(value).__qualname__} cannot be pickled"
        else:
            values[name] = value
    deleted = [n for n in job["deletes"] if n not in namespace]
    return {"values": values, "imports": imports, "skipped": skipped, "deleted": deleted}


def write_results(results: dict[str, Any], out_dir: Path, key: bytes, host: str) -> None:
    """Write the signed results payload and its small index file for this host."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = out_dir / f"results-{host}.bin"
    digest = payload.dump(results, data_path)
    index = {"sha256": digest, "signature": payload.sign(key, "results", digest), "host": host}
    (out_dir / f"results-{host}.json").write_text(json.dumps(index))


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Describe an exception so the notebook can re-raise the same type."""
    # Frames of this bootstrap are noise for the user: start at the cell's own frame.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    exception: BaseException | None = exc
    if payload.value_digest(exc) is None:
        exception = None
    else:
        exc.__traceback__ = None
    return {
        "type": type(exc).__qualname__,
        "module": type(exc).__module__,
        "message": str(exc),
        "traceback": text,
        "exception": exception,
    }


def main(argv: list[str]) -> int:
    """Run the job described by the job document named in ``argv[1]``."""
    job_path = local(argv[1])
    job = json.loads(job_path.read_text())
    code_dir = job_path.parent.parent  # parts live at <code>/<sha>/<name>
    resource = json.loads(local(f"{OPT_ML}/config/resourceconfig.json").read_text())
    config = json.loads(local(f"{OPT_ML}/config/processingjobconfig.json").read_text())
    host = resource["current_host"]
    key = bytes.fromhex(os.environ.get(KEY_ENV, ""))
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != job["python"]:
        write_message(
            f"Python version mismatch: the notebook runs Python {job['python']} but this image "
            f"runs Python {here}; pickled code cannot move between them. Pick an image with "
            f"Python {job['python']} (--image)."
        )
        log(f"Python {here} here, notebook has {job['python']}: refusing to run")
        return EXIT_PYTHON_MISMATCH
    if not key:
        write_message(f"{KEY_ENV} is not set: cannot verify the payload")
        return 2
    results_dir = local(job["results_output"])
    inputs = {
        item["InputName"]: str(local(item["S3Input"]["LocalPath"]))
        for item in config.get("ProcessingInputs") or []
        if item["InputName"] != job["code_input"] and item.get("S3Input")
    }
    outputs = {
        item["OutputName"]: str(local(item["S3Output"]["LocalPath"]))
        for item in (config.get("ProcessingOutputConfig") or {}).get("Outputs", [])
        if item["OutputName"] != job["results_output_name"]
    }
    work = local(f"{OPT_ML}/processing/jupyter-remote")
    started = time.monotonic()
    try:
        if job.get("requirements"):
            install_requirements(code_dir / job["requirements"], work / "site-packages")
        if job.get("config_command"):
            log(f"running configuration command: {job['config_command']}")
            subprocess.run(job["config_command"], shell=True, check=True)
        if job.get("modules"):
            add_modules([code_dir / m for m in job["modules"]], work / "modules")
        namespace, _ = payload.load(
            code_dir / job["payload"]["path"],
            key=key,
            purpose="payload",
            signature=job["payload"]["signature"],
        )
        for name, module_name in job["imports"].items():
            namespace[name] = __import__(module_name, fromlist=["_"])
        namespace["INPUTS"] = inputs
        namespace["OUTPUTS"] = outputs
        before = {n: payload.value_digest(namespace[n]) for n in job["reads"] if n in namespace}
        source = (code_dir / job["cell"]).read_text(encoding="utf-8")
        log(f"running cell on {host} (Python {here})")
        run_cell(source, namespace)
        results = collect_results(job, namespace, before)
        results["error"] = None
        write_results(results, results_dir, key, host)
        log(f"cell finished in {time.monotonic() - started:.1f} s")
        return 0
    except BaseException as exc:  # the cell's own exceptions, SystemExit included
        error = describe_error(exc)
        sys.stderr.write(error["traceback"])
        sys.stderr.flush()
        write_message(f"{error['type']}: {error['message']}")
        empty = {"values": {}, "imports": {}, "skipped": {}, "deleted": []}
        try:
            write_results({**empty, "error": error}, results_dir, key, host)
        except Exception as inner:  # never hide the user's error behind ours
            log(f"could not write the error results: {inner!r}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
