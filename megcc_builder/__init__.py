"""megcc-builder: an ahead-of-time compiler for neural networks on phones and MCUs."""
from ._version import __version__

__all__ = ["__version__", "InferenceSession"]


def __getattr__(name: str):
    # Imported on first use: `import megcc_builder` stays cheap for the CLI and the build
    # tools, which do not need the session.
    if name == "InferenceSession":
        from .session import InferenceSession

        return InferenceSession
    raise AttributeError(f"module 'megcc_builder' has no attribute {name!r}")
