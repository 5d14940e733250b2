"""The one place the version and wire protocol numbers live."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
SPEC_SCHEMA_VERSION = 1
