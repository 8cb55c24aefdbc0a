"""jupyter-remote: run one notebook cell on AWS, or on an embedded local engine.

``%load_ext jupyter_remote`` registers ``%%remote_process``, ``%%s3batch`` and ``%remote_jobs``.
Nothing heavy (boto3, ipywidgets, sagemaker) is imported until a magic runs.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = [
    "JupyterRemoteError",
    "PermanentFailure",
    "RemoteExecutionError",
    "S3BatchJob",
    "TemporaryFailure",
    "__version__",
    "attach",
    "jobs",
    "load_ipython_extension",
    "remote_process",
    "s3_client",
    "s3batch",
]

_LAZY = {
    "remote_process": "api",
    "attach": "api",
    "jobs": "api",
    "s3_client": "api",
    "RemoteJob": "api",
    "JupyterRemoteError": "errors",
    "RemoteExecutionError": "errors",
    "JobFailedError": "errors",
    "RemoteSettings": "config",
    "TemporaryFailure": "runtime.lambda_handler",
    "PermanentFailure": "runtime.lambda_handler",
    "s3batch": "s3batch",
    "S3BatchJob": "s3batch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext jupyter_remote``)."""
    from .magics import RemoteMagics

    magics = RemoteMagics(shell=ipython, parent=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    from .magics_s3batch import S3BatchMagics

    ipython.register_magics(S3BatchMagics(shell=ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond what IPython does itself."""
