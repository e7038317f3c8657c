"""BLAS thread control (threadpoolctl, imported on first use).

Many small stacked matrix products (one per input) and the Monte Carlo
kernels (whose tiles already run in parallel) gain nothing from BLAS threads;
on a busy machine the threads' start-up and spinning make such work many
times slower.  :func:`single_threaded_blas` limits BLAS to one thread.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager

__all__ = ["single_threaded_blas", "blas_controller"]


#: Simulations running now, and the lock around the BLAS limit they share (see below).
_BLAS_USERS = {"count": 0, "limiter": None}
_BLAS_LOCK = threading.Lock()


@contextmanager
def single_threaded_blas():
    """BLAS on one thread while the body runs (without threadpoolctl the body
    runs unchanged: correct, only slower on few cores).

    The BLAS thread count is one setting of the whole process, so the limit
    is shared: the first user to start sets it, the last to finish
    restores the count found before (users running in several threads
    at once would otherwise restore each other's limit and leave BLAS at one
    thread for good).
    """
    controller = blas_controller()
    if controller is None:  # correct without threadpoolctl, only slower on few cores
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_USERS["count"] == 0:
            _BLAS_USERS["limiter"] = controller.limit(limits=1, user_api="blas")
        _BLAS_USERS["count"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS["count"] -= 1
            if _BLAS_USERS["count"] == 0:
                _BLAS_USERS["limiter"].restore_original_limits()
                _BLAS_USERS["limiter"] = None


@functools.lru_cache(maxsize=1)
def blas_controller():
    """The threadpoolctl controller, made once (it scans the loaded libraries)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()
