"""Coalesce many small changes into few flushes, from a thread of its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Throttle:
    """Calls ``flush`` soon after :meth:`poke`, but never twice within ``interval`` seconds.

    Producers (a log tail delivering 1,000 lines at once) only mark the state dirty; one daemon
    thread turns a burst into a single flush. With ``tick`` it also flushes every ``tick``
    seconds while nothing happens (a clock that must advance). :meth:`stop` ends the thread and
    flushes a last time in the caller's thread, so the final state is sent before it returns.
    """

    def __init__(
        self, flush: Callable[[], None], *, interval: float = 0.5, tick: float | None = None
    ) -> None:
        self._flush = flush
        self.interval = interval
        self.tick = tick
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # one flush at a time: the thread's or stop()'s
        self._thread: threading.Thread | None = None
        self.flushes = 0

    def start(self) -> None:
        """Start the flushing thread (idempotent; a stopped throttle starts again)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name="jupyter-remote-display", daemon=True
            )
            self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the flushing thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> None:
        """Something changed: flush soon."""
        self._wake.set()

    def flush_now(self) -> None:
        """Flush in the caller's thread (after a state change that must be sent at once)."""
        self._wake.clear()
        self._guarded_flush()

    def stop(self, *, final: bool = True) -> None:
        """Stop the thread; flush once more in the caller's thread when ``final``."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if final:
            self._guarded_flush()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=self.tick)
            if self._stopping.is_set():
                return
            self._wake.clear()
            self._guarded_flush()
            # The spacing that makes this a throttle: changes during the wait pile up.
            self._stopping.wait(self.interval)

    def _guarded_flush(self) -> None:
        with self._lock:
            try:
                self._flush()
                self.flushes += 1
            except Exception:
                # A closed widget or a gone frontend must not kill the job's watcher.
                log.debug("display flush failed", exc_info=True)
