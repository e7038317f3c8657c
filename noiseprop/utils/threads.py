"""BLAS thread control (threadpoolctl, imported on first use)."""
from __future__ import annotations

import functools
from contextlib import contextmanager

__all__ = ["single_threaded_blas"]


@contextmanager
def single_threaded_blas():
    """Run the body with BLAS on one thread.

    Many small stacked matrix products (one per input) gain nothing from BLAS
    threads, and on a busy machine their start-up and spinning make such
    products tens of times slower.  Without threadpoolctl the body runs
    unchanged (correct, only slower on few cores).
    """
    controller = _blas_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """The threadpoolctl controller, made once (it scans the loaded libraries)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()
