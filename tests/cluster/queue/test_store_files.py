"""The queue's database holds every job's config: readable by its owner only (0600, with its WAL
files), in a folder made 0700, whatever the umask."""

from __future__ import annotations

import os
import sqlite3
import stat

from cluster.queue.store import JobQueue


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_queue_file_and_its_folder_are_private(tmp_path):
    before = os.umask(0o022)
    try:
        queue = JobQueue(tmp_path / "queue" / "jobs.db")
        reader = sqlite3.connect(queue.path)  # another client: the WAL files stay while it is open
        reader.execute("SELECT COUNT(*) FROM jobs").fetchone()
        queue.add("probe", {"units": 1}, "key")
        files = sorted(p.name for p in (tmp_path / "queue").iterdir())
        reader.close()
        assert "jobs.db-wal" in files  # WAL mode: its companions exist while in use
        assert {name: mode(tmp_path / "queue" / name) for name in files} == dict.fromkeys(files, 0o600)
        assert mode(tmp_path / "queue") == 0o700
    finally:
        os.umask(before)


def test_a_queue_file_made_before_is_tightened(tmp_path):
    path = tmp_path / "jobs.db"
    JobQueue(path)
    path.chmod(0o644)
    JobQueue(path).add("probe", {}, "key")
    assert mode(path) == 0o600
