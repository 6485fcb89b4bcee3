"""The C names generated code gives a model: one place, so the C array, the .incbin
embedding and kernels.h's macros always agree on them."""
import re


def c_identifier(name: str) -> str:
    """A model name (letters, digits, '_', '.', '-') as a C identifier."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return ident if not ident[:1].isdigit() else "_" + ident


def model_symbol(name: str) -> str:
    """The embedded model's data symbol (its size is <symbol>_size)."""
    return f"megcc_model_{c_identifier(name)}"
