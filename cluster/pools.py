"""Pools of workers that hold devices: made on first use, chosen by affinity, replaced when they
die, ended by `close()`.

`Pool` keeps members of any kind (a Ray actor, a gang of actors in a placement group): a member
is made by `make(index)` only when first used, so a re-submitted sweep whose work is all in
MLflow starts none. `ActorPool` adds calls: a call goes to the member an affinity key maps to
(the same supernet to the same evaluator, so it is loaded once) or round robin, and a call whose
actor died is handed back with `failed(ref)`, which replaces that member before the scheduler
launches the unit again (the unit resumes from its checkpoint). Like Ray's `ActorPool`, small
and explicit about resources: each member holds what its actor options ask for while it lives.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Generic, TypeVar

M = TypeVar("M")


class Pool(Generic[M]):
    """Up to `size` members, made on first use by `make(index)`, stopped by `stop(member)`."""

    def __init__(self, make: Callable[[int], M], size: int, stop: Callable[[M], None] | None = None):
        if size < 1:
            raise ValueError(f"a pool needs at least one member, got size {size}")
        self._make, self._stop, self.size = make, stop, size
        self._members: dict[int, M] = {}
        self._next = 0

    @property
    def started(self) -> int:
        """Members made so far."""
        return len(self._members)

    def get(self, index: int) -> M:
        """Member `index`, made now if it does not exist yet."""
        if not 0 <= index < self.size:
            raise IndexError(f"pool member {index} of {self.size}")
        if index not in self._members:
            self._members[index] = self._make(index)
        return self._members[index]

    def pick(self, affinity: str | None = None) -> int:
        """The member for a call: fixed per affinity key (a stable hash), else round robin."""
        if affinity is not None:
            return zlib.crc32(affinity.encode()) % self.size
        index = self._next % self.size
        self._next += 1
        return index

    def replace(self, index: int) -> M:
        """Stop member `index` (if it still runs) and make a fresh one in its place."""
        old = self._members.pop(index, None)
        if old is not None and self._stop is not None:
            self._stop(old)
        return self.get(index)

    def close(self) -> None:
        """Stop every member; the pool can be used again (members are made anew)."""
        members, self._members = list(self._members.values()), {}
        if self._stop is not None:
            for member in members:
                self._stop(member)


def _kill(actor) -> None:
    import ray

    ray.kill(actor, no_restart=True)


class ActorPool(Pool):
    """A pool of Ray actors of one class and options; `call` returns an ObjectRef."""

    def __init__(self, actor_class, size: int, options: dict, args: tuple = ()):
        self.actor_class, self.options, self.args = actor_class, dict(options), args
        super().__init__(lambda _i: actor_class.options(**self.options).remote(*args), size, _kill)
        self._owner: dict = {}  # ObjectRef -> member index, until `done` or `failed`

    def call(self, method: str, *args, affinity: str | None = None, **kwargs):
        """Run `method` on a member (see `pick`); the ObjectRef of its result."""
        index = self.pick(affinity)
        ref = getattr(self.get(index), method).remote(*args, **kwargs)
        self._owner[ref] = index
        return ref

    def done(self, ref) -> None:
        """The call finished: forget which member ran it."""
        self._owner.pop(ref, None)

    def failed(self, ref) -> None:
        """The actor that ran this call died: replace it, so that a retry lands on a live member."""
        index = self._owner.pop(ref, None)
        if index is not None:
            self.replace(index)
