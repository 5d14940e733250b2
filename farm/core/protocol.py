"""The wire protocol's constants: what the farm and its nodes must agree on."""

PROTOCOL_VERSION = 3  # /v1/health's "protocol"; 2: signed requests (the token never sent); 3: TLS + /v1/identity
SPEC_SCHEMA_VERSION = 1  # EditSpec's JSON "schema"
DEFAULT_PORT = 7788  # where `lanfarm node` listens unless told otherwise
SERVICE_TYPE = "_lanfarm._tcp.local."  # the mDNS service nodes advertise
