"""What the displays need to know about the kernel they run in (no ipywidgets import here)."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from typing import Any


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def in_kernel() -> bool:
    """Whether we run inside a Jupyter kernel (a frontend that may render widgets)."""
    return getattr(_shell(), "kernel", None) is not None


def in_cell() -> bool:
    """Whether a cell may be running here: in a kernel, on its main thread."""
    return in_kernel() and threading.current_thread() is threading.main_thread()


def widgets_available() -> bool:
    """In a kernel, with ipywidgets installed (found without importing it)."""
    return in_kernel() and importlib.util.find_spec("ipywidgets") is not None


def user_namespace() -> dict[str, Any] | None:
    """The notebook's namespace, if there is a shell."""
    shell = _shell()
    return None if shell is None else shell.user_ns


def call_in_kernel_thread(func: Callable[[], None]) -> None:
    """Run ``func`` on the kernel's main thread when it is free (between cells), else now.

    A background watcher uses this to write results into the namespace: a running cell never
    sees its variables change under it.
    """
    loop = getattr(getattr(_shell(), "kernel", None), "io_loop", None)
    if loop is None or threading.current_thread() is threading.main_thread():
        func()
    else:
        loop.add_callback(func)


def after_cell(func: Callable[[], None]) -> None:
    """Run ``func`` when the running cell ends (IPython's post_execute), or now if none runs.

    Only the main thread runs cells; from any other thread ``func`` runs at once.
    """
    if not in_cell():
        func()
        return
    shell = _shell()

    def once(*_: Any) -> None:
        shell.events.unregister("post_execute", once)
        func()

    shell.events.register("post_execute", once)
