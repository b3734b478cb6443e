"""The project's C kernel (NB-101 hashing), loaded by ctypes.

Installing the package compiles it into the wheel (setup.py: the extension `core.nb101._wlhash`),
so every node that installs the wheel has it and nothing is compiled at run time. The library is
the first of: the extension beside this file (an installed package, or `pip install -e .`); the
installed distribution's extension when this code is a copy shadowing it (a Ray job's
working_dir); else, in a bare checkout, the sources compiled on first use into `LIBRARY` (rebuilt
when a source is newer). Without any, `library()` returns None and callers use their
plain-Python versions. A library is used only once it hashes a known cell right.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
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
source = "not loaded yet"  # where the library came from, once loaded


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


def installed() -> Path | None:
    """The compiled extension of the installed package: beside this file, else in the installed
    distribution's files (when this code is a copy that shadows the package)."""
    spec = importlib.util.find_spec("core.nb101._wlhash")
    if spec is not None and spec.origin and spec.origin.endswith(".so"):
        return Path(spec.origin)
    try:
        files = importlib.metadata.distribution("nas-sweeps").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.parent.as_posix() == "core/nb101" and file.match("_wlhash.*.so"):
            path = Path(file.locate())
            return path if path.exists() else None
    return None


# NB-101's README cell and its hash: a library must reproduce it before it is used
_CHECK_ADJ = bytes(
    [0, 1, 1, 1, 0, 1, 0]
    + [0, 0, 0, 0, 0, 0, 1]
    + [0, 0, 0, 0, 0, 0, 1]
    + [0, 0, 0, 0, 1, 0, 0]
    + [0, 0, 0, 0, 0, 0, 1]
    + [0, 0, 0, 0, 0, 0, 1]
    + [0, 0, 0, 0, 0, 0, 0]
)
_CHECK_LABELS = bytes([255, 1, 0, 0, 0, 2, 254])  # -1 input, conv1x1, conv3x3 x3, maxpool, -2 output
_CHECK_HASH = b"28cfc7874f6d200472e1a9dcd8650aa0"


def _load(path: Path) -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(str(path))
        _declare(lib)
    except (OSError, AttributeError) as err:
        log.warning("could not load %s (%s)", path, err)
        return None
    out = ctypes.create_string_buffer(32)
    if lib.nb101_hash_batch(1, 7, _CHECK_ADJ, _CHECK_LABELS, out) != 0 or out.raw != _CHECK_HASH:
        log.warning("%s does not hash NB-101's reference cell right: not used", path)
        return None
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded library (see the module docstring); None when unavailable."""
    global _lib, _tried, source
    if not _tried:
        _tried = True
        for where, find in (("installed", installed), ("compiled on first use", build)):
            path = find()
            lib = _load(path) if path is not None else None
            if lib is not None:
                _lib, source = lib, f"{path} ({where})"
                break
        else:
            log.warning("no NB-101 C kernel: hashing uses plain Python")
    return _lib
