"""megcc-builder: an ahead-of-time compiler for neural networks on phones and MCUs."""
__version__ = "0.1.0"
