"""pykeepalived: a drop-in Python re-implementation of keepalived."""

from pykeepalived._version import __version__

__all__ = ["__version__"]
