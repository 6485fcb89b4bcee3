"""Normalisations: batch, instance, layer, LRN, Lp."""
from . import generic_f32, lp_generic_f32  # noqa: F401
