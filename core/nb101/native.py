"""The project's C kernel (NB-101 hashing), compiled on first use, loaded by ctypes.

The sources sit beside this file; the shared library is rebuilt when a source is newer.
Without a C compiler `library()` returns None and callers use their plain-Python versions.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
SOURCES = (_HERE / "_wlhash.c",)
LIBRARY = _HERE / "_native.so"
_lib = None
_tried = False


def build(force: bool = False) -> Path | None:
    """Compile the sources into LIBRARY (atomically); None when no compiler works."""
    newest = max(src.stat().st_mtime for src in SOURCES)
    if LIBRARY.exists() and not force and LIBRARY.stat().st_mtime >= newest:
        return LIBRARY
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=LIBRARY.parent)
    os.close(fd)
    try:
        cmd = [compiler, "-O3", "-shared", "-fPIC", "-o", tmp, *map(str, SOURCES)]
        subprocess.run(cmd, check=True, capture_output=True)
        os.replace(tmp, LIBRARY)
    except (OSError, subprocess.CalledProcessError) as err:
        log.warning("could not compile %s (%s): using plain Python", LIBRARY.name, err)
        Path(tmp).unlink(missing_ok=True)
        return None
    return LIBRARY


def _declare(lib: ctypes.CDLL) -> None:
    lib.nb101_hash_batch.argtypes = [ctypes.c_int64, ctypes.c_int] + [ctypes.c_void_p] * 3
    lib.nb101_hash_batch.restype = ctypes.c_int


def library() -> ctypes.CDLL | None:
    """The loaded library, built on first use; None when unavailable."""
    global _lib, _tried
    if not _tried:
        _tried = True
        path = build()
        if path is not None:
            try:
                lib = ctypes.CDLL(str(path))
                _declare(lib)
                _lib = lib
            except OSError as err:
                log.warning("could not load %s (%s): using plain Python", path, err)
    return _lib
