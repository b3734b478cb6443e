"""Content identities: one canonical hash for configs, data descriptions and unit keys.

Equal values give equal keys on any machine and in any process (canonical JSON: sorted keys,
no spaces, `str()` for what JSON cannot hold), so a unit, a cached data set or a sweep is found
again by recomputing its key from what defines it.
"""

from __future__ import annotations

import hashlib
import json


def canonical_json(value) -> str:
    """The value as JSON with sorted keys and no whitespace (non-JSON values as `str()`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def stable_key(value, length: int = 20) -> str:
    """First `length` hex digits of the SHA-256 of the value's canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]
