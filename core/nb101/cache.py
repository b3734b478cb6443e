"""Import a benchmark file once: later opens read a cached Parquet store keyed by the file's identity.

The official `nasbench_only108.tfrecord` (499 MB) or `nasbench_full.tfrecord` (1.95 GB) takes
tens of seconds to import; the Parquet store it becomes opens in well under a second. The key
is the file's size and a SHA-256 of its content (the whole file up to 16 MiB; beyond, 16
blocks of 1 MiB spread over it), so a copy or a move of the same file hits the cache and a
changed or truncated one does not. The store is written atomically: a crash leaves no half
file, and two processes importing at once both end with a complete one. Its pages are neither
compressed nor dictionary-encoded (about twice the size of a zstd store, half the time to read).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from core.paths import cache_dir

_WHOLE = 16 << 20
_BLOCK = 1 << 20
_BLOCKS = 16
CACHE_FOLDER = "nb101-stores"


def fingerprint(path: Path) -> str:
    """Size and content digest of a file: its identity for the cache (reads at most 16 MiB).

    A folder (the real subset's .npz parts) is identified by its files' names and fingerprints.
    """
    path = Path(path)
    if path.is_dir():
        parts = [f"{f.name}:{fingerprint(f)}" for f in sorted(path.iterdir()) if f.is_file()]
        return f"dir-{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:32]}"
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= _WHOLE:
            digest.update(f.read())
        else:
            for k in range(_BLOCKS):
                f.seek((size - _BLOCK) * k // (_BLOCKS - 1))
                digest.update(f.read(_BLOCK))
    return f"{size}-{digest.hexdigest()[:32]}"


def cached_store(path, fmt: str = "auto", verbose: bool = True, root: Path | None = None) -> Path:
    """The Parquet store of a benchmark file, importing it on first use (with progress lines).

    Parquet files are their own store and are returned as they are. Corrupt records stop the
    import with their record number and byte offset (nothing is cached then).
    """
    from core.nb101.importers import detect_format, import_any
    from core.nb101.space import write_table

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    if path.suffix.lower() == ".parquet":
        return path
    fmt = detect_format(path) if fmt == "auto" else fmt
    store = (root or cache_dir() / CACHE_FOLDER) / f"{path.stem}-{fingerprint(path)}.parquet"
    if store.exists():
        return store
    if verbose:
        print(f"importing {path} once into {store} (later opens read the store)", file=sys.stderr)
    table, _ = import_any(path, fmt, skip_corrupt=False, verbose=verbose)
    write_table(table, store, compression="none", use_dictionary=False)  # plain pages: fastest to read
    return store
