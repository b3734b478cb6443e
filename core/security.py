"""Small rules the services share: what counts as this machine only, and files kept private.

A folder the project creates for results (the tracking server's home, the queue's folder) is
made 0700 and a file that holds results or secrets 0600, so other accounts on a shared machine
cannot read them. A folder that already exists is left as it is unless it only holds the
caller's files (it may be shared, such as /tmp); the files inside are private either way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def is_loopback(host: str) -> bool:
    """Whether a host name or address (IPv4, IPv6, in brackets or not) is this machine's loopback."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def private_dir(path: str | Path, tighten: bool = False) -> Path:
    """Create the folder (and its parents) when missing; a folder created here is 0700. With
    `tighten`, an existing folder of this user's is made 0700 too (a folder that only holds the
    caller's files), unless it is a shared one (sticky bit, such as /tmp)."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(PRIVATE_DIR)
    elif tighten:
        mode = path.stat()
        if mode.st_uid == os.getuid() and not mode.st_mode & stat.S_ISVTX and mode.st_mode & 0o077:
            path.chmod(PRIVATE_DIR)
    return path


def private_file(path: str | Path) -> Path:
    """Create the file empty with mode 0600 when missing, or take group and others' access off
    an existing one (a SQLite database made before: its -wal/-shm/-journal files too)."""
    path = Path(path)
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for each in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        if each.exists() and each.stat().st_mode & 0o077:
            each.chmod(each.stat().st_mode & 0o700)
    return path


def write_private_text(path: str | Path, text: str) -> Path:
    """Text to a file that is 0600 before anything is written into it."""
    path = private_file(path)
    path.write_text(text)
    return path
