"""The one place the version lives (the wire protocol's numbers: farm.core.protocol)."""

__version__ = "0.1.0"
