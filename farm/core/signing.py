"""Signed requests: proof of holding the farm token without sending it (protocol 2, docs/protocol.md).

Every request to a node but ``/v1/health`` carries::

    Authorization: LANFarm-HMAC ts=<unix seconds>, nonce=<32 hex>, sig=<64 hex>

where ``sig`` is HMAC-SHA256, keyed by the farm token, of::

    LANFARM2 \\n METHOD \\n PATH?QUERY \\n ts \\n nonce \\n body digest

The body digest is the hex SHA-256 of the body (of nothing for GET, HEAD, DELETE and the events
WebSocket); for ``PUT /v1/blobs/<sha>`` it is ``<sha>``, which the node checks against the bytes as
it stores them. A sniffer sees only signatures of requests already made: it cannot make another one,
and a replay is refused (the node remembers each nonce for longer than the clock window). Pure: the
caller passes the time and the nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

SCHEME = "LANFarm-HMAC"
WINDOW = 120.0  # seconds a signed request stays valid either side of the node's clock
EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()
_HEADER = re.compile(r"LANFarm-HMAC ts=(\d{1,12}), nonce=([0-9a-f]{32}), sig=([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Signature:
    """The parts of a signed request's ``Authorization`` header."""

    ts: int
    nonce: str
    sig: str


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _mac(token: str, method: str, path: str, ts: int, nonce: str, digest: str) -> str:
    message = f"LANFARM2\n{method.upper()}\n{path}\n{ts}\n{nonce}\n{digest}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def authorization(token: str, method: str, path: str, digest: str, *, now: float, nonce: str) -> str:
    """The ``Authorization`` value for one request (``nonce``: 32 random hex digits, new each time)."""
    ts = int(now)
    return f"{SCHEME} ts={ts}, nonce={nonce}, sig={_mac(token, method, path, ts, nonce, digest)}"


def parse(header: str) -> Signature | None:
    """The signature in an ``Authorization`` value; None if it is not one (a Bearer token, junk)."""
    m = _HEADER.fullmatch(header.strip())
    return Signature(int(m.group(1)), m.group(2), m.group(3)) if m else None


def check(token: str, signature: Signature, method: str, path: str, digest: str, *, now: float) -> str:
    """Why the signed request must be refused ("" when it is good); the nonce is the caller's to track."""
    if abs(now - signature.ts) > WINDOW:
        return f"clock: the request was signed at {signature.ts}, this node's time is {int(now)}"
    try:
        expected = _mac(token, method, path, signature.ts, signature.nonce, digest)
    except UnicodeEncodeError:
        return "signature"
    return "" if hmac.compare_digest(expected, signature.sig) else "signature"


# --- the node's side: proof that it holds the token, bound to its TLS certificate (protocol 3) ---------

IDENTITY_NONCE = re.compile(r"[0-9a-f]{32}")


def identity_proof(token: str, nonce: str, node_id: str, fingerprint: str) -> str:
    """What a node answers to ``GET /v1/identity?nonce=N``: HMAC-SHA256, keyed by the farm token, of
    ``LANFARM-IDENTITY \\n nonce \\n node id \\n certificate fingerprint`` ("" for a plain node).

    Only a node holding the token can make it, and only for the certificate it names: a node without
    the token, or a man in the middle showing another certificate, cannot answer the farm's nonce.
    """
    message = f"LANFARM-IDENTITY\n{nonce}\n{node_id}\n{fingerprint.lower()}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def identity_proven(token: str, nonce: str, node_id: str, fingerprint: str, proof: object) -> bool:
    """Whether ``proof`` is the node's proof for ``nonce``, its id and ``fingerprint`` (constant time)."""
    if not isinstance(proof, str):
        return False
    return hmac.compare_digest(identity_proof(token, nonce, node_id, fingerprint), proof)
