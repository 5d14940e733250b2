"""The wire protocol's constants: what the farm and its nodes must agree on."""

PROTOCOL_VERSION = 1  # /v1/... routes, /v1/health's "protocol"
SPEC_SCHEMA_VERSION = 1  # EditSpec's JSON "schema"
DEFAULT_PORT = 7788  # where `lanfarm node` listens unless told otherwise
SERVICE_TYPE = "_lanfarm._tcp.local."  # the mDNS service nodes advertise
