"""Compiling the Monte Carlo kernels: where numba caches them, and the first-run notice.

The kernels (:mod:`noiseprop.simulation._kernels`, :mod:`noiseprop.recurrent._kernels`)
are compiled by numba on their first call for each floating type (the
feed-forward kernel also separately for the control variate; 5-12 s of CPU time
each on a 2-core machine) and cached on disk (``cache=True``), so
that later processes load them in well under a second.  Where the cache goes:

1. ``NUMBA_CACHE_DIR`` if set (numba's own rule);
2. else ``__pycache__`` beside the kernel sources when that folder is writable
   (an editable install, or a wheel installed into a user's environment);
3. else numba's per-user cache folder (``~/.cache/numba`` on Linux), e.g. for a
   wheel in a read-only system site-packages;
4. else (neither writable: a read-only home as well) a folder in the system's
   temporary directory, chosen by :func:`ensure_cache_location` -- without it
   numba would refuse to import the kernels at all.

While numba compiles a kernel (not when it loads it from the cache) a single
line on stderr says so and how long it may take (:func:`announce_compilation`).
"""
from __future__ import annotations

import os
import sys
import tempfile

import numba
from numba.core import caching, event

__all__ = ["COMPILE_ESTIMATE", "announce_compilation", "ensure_cache_location"]

#: How long one kernel compilation takes, said in the first-run notice of a kernel
#: announced without an estimate of its own.
COMPILE_ESTIMATE = "about 15-60 s"

#: Dispatchers whose compilation is announced (with the estimate of each), and the
#: (dispatcher, argument types) already announced in this process.
_WATCHED: dict = {}
_ANNOUNCED: set = set()
_listener = None


def ensure_cache_location(source_file: str) -> "str | None":
    """Make sure numba has somewhere to cache the kernels of ``source_file``.

    Numba tries ``NUMBA_CACHE_DIR``, the source's ``__pycache__`` and the
    per-user cache folder, and refuses to compile a ``cache=True`` function
    (a RuntimeError at import) when none is writable.  In that case only,
    this points numba at ``<tmp>/noiseprop-numba-cache-<user id>`` instead.

    Returns the folder it chose, or None where numba's own locations serve.
    """
    if numba.config.CACHE_DIR:
        return None
    try:
        locators = caching.CacheImpl._locator_classes
    except AttributeError:  # a numba whose internals differ: leave it to numba
        return None

    def probe():  # pragma: no cover - never called, only located
        pass

    for locator in locators:
        try:
            if locator.from_function(probe, source_file) is not None:
                return None
        except Exception:  # noqa: BLE001 - a locator that fails is one that does not serve
            continue
    user = os.getuid() if hasattr(os, "getuid") else "user"
    folder = os.path.join(tempfile.gettempdir(), f"noiseprop-numba-cache-{user}")
    numba.config.CACHE_DIR = folder
    return folder


def announce_compilation(*kernels, estimate: str = COMPILE_ESTIMATE) -> None:
    """Print one line on stderr whenever numba compiles one of ``kernels`` for argument
    types not yet announced in this process (a cache load prints nothing: numba
    starts its "numba:compile" event only for a real compilation); ``estimate``: how
    long a compilation of these kernels takes, as the line says it."""
    global _listener
    _WATCHED.update(dict.fromkeys(kernels, estimate))
    if _listener is None:
        _listener = _CompileNotice()
        event.register("numba:compile", _listener)


def _describe(args) -> str:
    """The floating types among a kernel's argument types, e.g. "float32", and
    ", with the control variate" where it gets the linearised network."""
    text = str(args)
    names = "/".join(sorted({name for name in ("float32", "float64") if name in text})) or "default"
    return names + (", with the control variate" if "Linearisation" in text else "")


class _CompileNotice(event.Listener):
    """Announces the compilations of the watched kernels, once per kernel and float type."""

    def on_start(self, ev):
        dispatcher = ev.data.get("dispatcher")
        if dispatcher not in _WATCHED:
            return
        key = (dispatcher, _describe(ev.data.get("args")))
        if key in _ANNOUNCED:
            return
        _ANNOUNCED.add(key)
        print(f"noiseprop: compiling the Monte Carlo kernel {dispatcher.py_func.__module__}."
              f"{dispatcher.py_func.__name__} ({key[1]}) for this machine; this happens once "
              f"and takes {_WATCHED[dispatcher]} (cached for later runs)", file=sys.stderr, flush=True)

    def on_end(self, ev):
        pass
