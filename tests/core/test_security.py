"""core.security: what counts as loopback, and folders and files made private (under a umask that
would otherwise leave them readable by everyone)."""

from __future__ import annotations

import os
import stat

import pytest

from core.security import is_loopback, private_dir, private_file, write_private_text


@pytest.fixture(autouse=True)
def open_umask():
    """The usual umask 022: without the code's care, files 0644 and folders 0755."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.0.2.2", "head.example.org", ""])
def test_not_loopback(host):
    assert not is_loopback(host)


def test_a_folder_made_here_is_0700_an_existing_one_only_when_asked(tmp_path):
    made = private_dir(tmp_path / "a" / "b")
    assert mode(made) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_dir(shared)
    assert mode(shared) == 0o755  # not ours to change
    private_dir(shared, tighten=True)
    assert mode(shared) == 0o700


def test_tighten_leaves_a_sticky_shared_folder_alone(tmp_path):
    tmp_like = tmp_path / "tmp"
    tmp_like.mkdir()
    tmp_like.chmod(0o1777)
    private_dir(tmp_like, tighten=True)
    assert mode(tmp_like) == 0o1777


def test_files_are_created_0600_and_old_ones_tightened_with_their_sqlite_companions(tmp_path):
    new = private_file(tmp_path / "fresh" / "jobs.db")
    assert mode(new) == 0o600 and mode(new.parent) == 0o700 and new.stat().st_size == 0
    old = tmp_path / "old.db"
    for each in (old, tmp_path / "old.db-wal", tmp_path / "old.db-shm"):
        each.write_text("x")
        each.chmod(0o644)
    private_file(old)
    assert [mode(p) for p in (old, tmp_path / "old.db-wal", tmp_path / "old.db-shm")] == [0o600] * 3
    assert old.read_text() == "x"  # contents kept
    assert mode(write_private_text(tmp_path / "secret", "s")) == 0o600
