"""The package version, in a module of its own so that modules needing it do not import the
package's __init__ (which exports the session, and so imports much of the package)."""
__version__ = "0.1.0"
