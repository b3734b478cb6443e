"""NB-101's `graph_util.hash_module`, from the project's C kernel (core.nb101.hashing)."""

from core.nb101.hashing import hash_module

__all__ = ["hash_module"]
