"""The durable job queue: one SQLite file in WAL mode, safe for several processes at once.

Jobs go PENDING -> RUNNING -> SUCCEEDED / FAILED / CANCELLED. Every change is one short
transaction (BEGIN IMMEDIATE, with a busy timeout), so concurrent clients and dispatchers
neither corrupt the file nor see half-made changes. The file (and the folder, when the queue
makes it) is readable by its owner only: it holds every job's config.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.security import private_file

STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
ACTIVE = ("PENDING", "RUNNING")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    job TEXT NOT NULL,
    config TEXT NOT NULL,
    config_key TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    submission_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, priority DESC, seq);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (config_key, status);
"""


@dataclass(frozen=True)
class QueuedJob:
    id: str
    name: str
    job: str
    config: dict
    config_key: str
    priority: int
    status: str
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    submission_id: str | None
    attempts: int
    cancel_requested: bool
    message: str | None
    seq: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QueuedJob:
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


class JobQueue:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        private_file(self.path)  # 0600 (its -wal/-shm follow it), a folder made here 0700
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=60000")
        return db

    @contextmanager
    def _transaction(self):
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def add(
        self,
        job: str,
        config: dict,
        config_key: str,
        priority: int = 0,
        name: str | None = None,
        force: bool = False,
    ) -> tuple[QueuedJob, bool]:
        """Queue a job; returns (job, created). An identical config already PENDING or RUNNING
        is returned instead of a duplicate unless `force`."""
        with self._transaction() as db:
            if not force:
                row = db.execute(
                    "SELECT * FROM jobs WHERE config_key = ? AND status IN ('PENDING', 'RUNNING') "
                    "ORDER BY seq LIMIT 1",
                    (config_key,),
                ).fetchone()
                if row:
                    return QueuedJob.from_row(row), False
            job_id = uuid.uuid4().hex[:12]
            db.execute(
                "INSERT INTO jobs (id, name, job, config, config_key, priority, status, submitted_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?)",
                (
                    job_id,
                    name or f"{job}-{job_id}",
                    job,
                    json.dumps(config, sort_keys=True),
                    config_key,
                    int(priority),
                    time.time(),
                ),
            )
            return QueuedJob.from_row(
                db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            ), True

    def get(self, job_id: str) -> QueuedJob:
        db = self._connect()
        try:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        finally:
            db.close()
        if row is None:
            raise KeyError(f"no job {job_id!r} in the queue {self.path}")
        return QueuedJob.from_row(row)

    def list(self, status: str | None = None) -> list[QueuedJob]:
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {list(STATUSES)}")
        db = self._connect()
        try:
            if status:
                rows = db.execute("SELECT * FROM jobs WHERE status = ? ORDER BY seq", (status,)).fetchall()
            else:
                rows = db.execute("SELECT * FROM jobs ORDER BY seq").fetchall()
        finally:
            db.close()
        return [QueuedJob.from_row(r) for r in rows]

    def next_pending(self) -> QueuedJob | None:
        """The job to start next: highest priority, first submitted within a priority."""
        db = self._connect()
        try:
            row = db.execute(
                "SELECT * FROM jobs WHERE status = 'PENDING' AND cancel_requested = 0 "
                "ORDER BY priority DESC, seq LIMIT 1"
            ).fetchone()
        finally:
            db.close()
        return QueuedJob.from_row(row) if row else None

    def transition(self, job_id: str, expected: tuple[str, ...], status: str, **fields) -> bool:
        """Move a job to `status` only if it is in one of `expected` (so two dispatchers cannot
        both claim it); sets the extra columns given. Returns whether it moved."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        if status == "RUNNING":
            fields.setdefault("started_at", now)
        if status in TERMINAL:
            fields.setdefault("ended_at", now)
        sets = ", ".join(["status = ?", *(f"{k} = ?" for k in fields)])
        marks = ",".join("?" * len(expected))
        with self._transaction() as db:
            cur = db.execute(
                f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks})",
                (status, *fields.values(), job_id, *expected),
            )
            return cur.rowcount == 1

    def request_cancel(self, job_id: str) -> QueuedJob:
        """Flag a job for cancellation; a PENDING one is CANCELLED at once."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            db.execute(
                "UPDATE jobs SET status = 'CANCELLED', ended_at = ? WHERE id = ? AND status = 'PENDING'",
                (time.time(), job_id),
            )
        return self.get(job_id)
