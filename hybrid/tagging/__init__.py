"""Sequence tagging: tagging schemes and their constraints."""

from .schemes import allowed_transitions

__all__ = ["allowed_transitions"]
