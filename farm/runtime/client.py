"""An async client for one node's HTTP API (docs/protocol.md): blobs, jobs, results, events."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from farm.core import signing
from farm.core.availability import Availability
from farm.core.nodeinfo import NodeInfo, NodeInfoError
from farm.core.protocol import PROTOCOL_VERSION
from farm.core.spec import EditSpec
from farm.errors import FarmError
from farm.local.files import sha256_hex
from farm.runtime.trust import Trust

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=3, sock_connect=3, sock_read=30)


class NodeError(FarmError):
    """A node could not be used for a request."""


class NodeUnavailable(NodeError):
    """The node did not answer (refused, timed out, reset, 5xx): it may be gone. ``reason`` says why, briefly."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class NodeUnauthorised(NodeError):
    """The node refused our farm token (401)."""


class NodeUnreachable(NodeUnavailable):
    """Nothing listens at the node's address any more (connection refused): the process is gone."""


class NodeUntrusted(NodeError):
    """The node did not prove it is the one pinned (another certificate, or no proof of the farm token):
    it gets no signed request and no work. ``node_id`` is the id it claimed, when known."""

    def __init__(self, message: str, node_id: str = "") -> None:
        super().__init__(message)
        self.node_id = node_id
        self.reason = message


class NodeRejected(NodeError):
    """The node answered the request with a 4xx error that is about the request itself."""

    def __init__(self, status: int, code: str, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason or message


class NodeClient:
    """Requests to one node over a shared, pooled ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
        trust: Trust | None = None,
    ) -> None:
        """``trust``: check the node's identity (farm.runtime.trust) before any signed request; None
        (tools, tests) signs without checking who answers and does not verify an https certificate."""
        self.base_url = base_url.rstrip("/")
        self.https = self.base_url.startswith("https://")
        self._session = session
        self._token = token
        self._timeout = timeout or DEFAULT_TIMEOUT
        self._trust = trust
        self._known_blobs: set[str] = set()
        self.claimed: tuple[str, str] = ("", "")  # (id, certificate fingerprint) /v1/health named

    def __repr__(self) -> str:
        return f"NodeClient({self.base_url})"

    async def health(self) -> str:
        """The id of the LAN Farm node answering here (no token needed). Raises NodeError otherwise."""
        health = await self._json("GET", "/v1/health", auth=False, ssl=not self.https)  # https: checked below
        node_id = health.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise NodeRejected(200, "not_a_node", "not a LAN Farm node (no id in /v1/health)")
        if health.get("protocol") != PROTOCOL_VERSION:
            raise NodeRejected(
                200, "protocol", f"speaks protocol {health.get('protocol')}, this farm {PROTOCOL_VERSION}"
            )
        fingerprint = str(health.get("fingerprint") or "") if self.https else ""
        self.claimed = (node_id, fingerprint)
        if self._trust is not None:
            refusal = self._trust.check(node_id, fingerprint, self.base_url)
            if refusal is not None:
                raise NodeUntrusted(refusal.message, node_id)
        return node_id

    async def pause(self, seconds: float | None = None, reason: str = "") -> Availability:
        """Its owner pauses the node (None: until resumed)."""
        body: dict[str, Any] = {"for": seconds} | ({"reason": reason} if reason else {})
        return Availability.from_dict(await self._json("POST", "/v1/pause", json=body))

    async def resume(self) -> Availability:
        """Undo the owner's pause (and a drain)."""
        return Availability.from_dict(await self._json("POST", "/v1/resume", json={}))

    async def identity(self) -> tuple[str, str]:
        """Make sure the node proved the farm token bound to its certificate (pinning it the first
        time); returns (node id, certificate fingerprint, "" for plain HTTP). Raises NodeUntrusted."""
        if self._trust is None:
            raise NodeUntrusted(f"{self.base_url}: no trust store to check this node against")
        async with self._trust.lock(self.base_url):
            proven = self._trust.proven(self.base_url)
            if proven is not None and self.claimed[1] in ("", proven):
                return self.claimed[0], proven
            node_id = await self.health()
            fingerprint = self.claimed[1]
            if self.https and not fingerprint:
                raise NodeUntrusted(f"{self.base_url}: serves https but names no certificate", node_id)
            nonce = secrets.token_hex(16)
            ssl = pinned(fingerprint) if self.https else True
            try:
                answer = await self._json("GET", f"/v1/identity?nonce={nonce}", ssl=ssl)
            except NodeRejected as exc:
                raise NodeUntrusted(
                    f"{self.base_url}: did not prove it holds the farm token ({exc}); not trusted", node_id
                ) from None
            if answer.get("id") != node_id or not signing.identity_proven(
                self._token, nonce, node_id, fingerprint, answer.get("proof")
            ):
                raise NodeUntrusted(
                    f"{self.base_url}: did not prove it holds the farm token for its certificate; "
                    "it is not trusted and gets no work",
                    node_id,
                )
            await self._trust.accept(
                self.base_url, node_id, str(answer.get("name") or node_id), self.base_url, fingerprint
            )
            return node_id, fingerprint

    async def info(self) -> NodeInfo:
        """The node's ``/v1/info``, parsed (NodeUnavailable if it is not a valid answer)."""
        data = await self._json("GET", "/v1/info")
        try:
            return NodeInfo.from_dict(data)
        except NodeInfoError as exc:
            raise NodeUnavailable(f"{self.base_url}: {exc}", str(exc)) from None

    async def has_blob(self, sha: str) -> bool:
        async with self._request("HEAD", f"/v1/blobs/{sha}") as resp:
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
            await self._raise_for(resp)
        raise AssertionError("unreachable")

    async def put_blob(self, data: bytes, sha: str | None = None) -> str:
        """Upload ``data`` unless the node already has it; returns its sha256."""
        sha = sha or sha256_hex(data)
        await self.send_blob(data, sha)
        return sha

    async def send_blob(self, data: bytes, sha: str) -> bool:
        """Upload ``data`` (named by its ``sha``) unless the node already has it; True if the body was sent.

        One round trip either way: ``Expect: 100-continue`` lets the node decline the body when it
        holds the blob already (an image edited five ways crosses the network once).
        """
        if sha in self._known_blobs:
            return False
        body = io.BytesIO(data)  # streamed in chunks: raw bytes of many MB would hold up the loop
        async with self._request(
            "PUT", f"/v1/blobs/{sha}", data=body, expect100=True, headers={"Content-Type": "application/octet-stream"}
        ) as resp:
            if resp.status not in (200, 201):
                await self._raise_for(resp)
            sent = resp.status == 201
        self._known_blobs.add(sha)
        return sent

    def forget_blobs(self) -> None:
        """The node may have evicted or lost blobs (it restarted, or answered 409): ask again."""
        self._known_blobs.clear()

    async def submit(
        self, job_id: str, spec: EditSpec, image: str, mask: str | None, *, client: str = "", priority: int = 0
    ) -> dict[str, Any]:
        body = {
            "id": job_id,
            "spec": spec.to_dict(),
            "image": image,
            "mask": mask,
            "client": client,
            "priority": priority,
        }
        return await self._json("POST", "/v1/jobs", json=body)

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/v1/jobs/{job_id}")

    async def cancel(self, job_id: str) -> None:
        with contextlib.suppress(NodeRejected):
            await self._json("DELETE", f"/v1/jobs/{job_id}")

    async def result(self, job_id: str) -> bytes:
        """The encoded result, checked against the hash the node sent."""
        async with self._request("GET", f"/v1/jobs/{job_id}/result") as resp:
            if resp.status != 200:
                await self._raise_for(resp)
            try:
                data = await resp.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise NodeUnavailable(f"{self.base_url}: result download broke off ({exc})") from None
            expected = resp.headers.get("X-Content-SHA256", "")
        if await asyncio.to_thread(sha256_hex, data) != expected:  # megabytes: hashed off the loop
            raise NodeUnavailable(f"{self.base_url}: result of {job_id[:8]} arrived corrupt (hash mismatch)")
        return data

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The node's event stream until it closes; raises NodeUnavailable if it cannot connect."""
        try:
            ssl = await self._ssl()
            ws = await self._session.ws_connect(
                f"{self.base_url}/v1/events",
                headers=self._signed("GET", "/v1/events", signing.EMPTY_DIGEST),
                heartbeat=10,
                timeout=aiohttp.ClientWSTimeout(ws_close=2),
                ssl=ssl,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise NodeUnauthorised(f"{self.base_url}: missing or wrong farm token") from None
            raise NodeUnavailable(f"{self.base_url}: events refused ({exc.status})") from None
        except aiohttp.ServerFingerprintMismatch as exc:
            raise self._mismatch(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise NodeUnavailable(f"{self.base_url}: cannot open events ({exc})") from None
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    with contextlib.suppress(ValueError):
                        yield json.loads(msg.data)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
        finally:
            await ws.close()

    async def call(
        self, method: str, path: str, *, timeout: aiohttp.ClientTimeout | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A signed request answered with a JSON object (routes with no method of their own: model pushes).

        ``json=`` or ``data=`` as in aiohttp; raises NodeRejected / NodeUnavailable like the rest.
        """
        if timeout is not None:
            kwargs["timeout"] = timeout
        return await self._json(method, path, **kwargs)

    # ------------------------------------------------------------------ internals
    async def _ssl(self) -> aiohttp.Fingerprint | bool:
        """The ``ssl`` of a signed request: the pinned certificate once the node proved the token."""
        if self._trust is None:
            return not self.https  # unchecked (tools, tests)
        _node_id, fingerprint = await self.identity()
        return pinned(fingerprint) if self.https else True

    def _mismatch(self, exc: aiohttp.ServerFingerprintMismatch) -> NodeUntrusted:
        if self._trust is not None:
            self._trust.forget(self.base_url)
        return NodeUntrusted(
            f"{self.base_url}: the TLS certificate shown (SHA-256 {exc.got.hex()[:16]}…) is not the one "
            "this farm pinned for that node: refused (a reinstalled node needs `lanfarm nodes trust NAME`; "
            "otherwise something between the PCs is posing as it)",
            self.claimed[0],
        )

    def _signed(self, method: str, path: str, digest: str) -> dict[str, str]:
        """The request's signature (protocol 2): proof of the farm token, never the token itself."""
        if not self._token:
            return {}
        return {"Authorization": _authorization(self._token, method, path, digest)}

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        headers = dict(kwargs.pop("headers", {}) or {})
        if "json" in kwargs:  # serialised here: the signature covers the exact bytes sent
            kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
            headers["Content-Type"] = "application/json"
        if "ssl" not in kwargs:
            kwargs["ssl"] = await self._ssl() if auth else (not self.https)
        if auth:
            headers.update(self._signed(method, path, _digest(method, path, kwargs.get("data"))))
        try:
            async with self._session.request(
                method, self.base_url + path, headers=headers, timeout=kwargs.pop("timeout", self._timeout), **kwargs
            ) as resp:
                if resp.status == 401:
                    said = (await _message(resp)).removeprefix(": ") or "missing or wrong farm token"
                    raise NodeUnauthorised(f"{self.base_url}: {said}")
                if resp.status >= 500 and resp.status != 507:  # 507: no room for this model, an answer
                    raise NodeUnavailable(
                        f"{self.base_url}: {method} {path} answered {resp.status}{await _message(resp)}",
                        f"{path} answered HTTP {resp.status}",
                    )
                yield resp
        except aiohttp.ServerFingerprintMismatch as exc:
            raise self._mismatch(exc) from None
        except aiohttp.ClientConnectorError as exc:
            error = NodeUnreachable if isinstance(exc.os_error, ConnectionRefusedError) else NodeUnavailable
            raise error(f"{self.base_url}: {method} {path} failed ({_describe(exc)})", _describe(exc)) from None
        except TimeoutError:
            raise NodeUnavailable(f"{self.base_url}: {method} {path} timed out", "timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise NodeUnavailable(
                f"{self.base_url}: {method} {path} failed ({type(exc).__name__}: {exc})", _describe(exc)
            ) from None

    async def _json(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> dict[str, Any]:
        async with self._request(method, path, auth=auth, **kwargs) as resp:
            if resp.status >= 400:
                await self._raise_for(resp)
            try:
                data = await resp.json()
            except (aiohttp.ContentTypeError, ValueError):
                raise NodeUnavailable(f"{self.base_url}: {path} did not answer JSON", f"{path} is not JSON") from None
            if not isinstance(data, dict):
                raise NodeUnavailable(
                    f"{self.base_url}: {path} answered an unexpected shape", f"{path} is not a JSON object"
                )
            return data

    async def _raise_for(self, resp: aiohttp.ClientResponse) -> None:
        code, message = "error", f"HTTP {resp.status}"
        with contextlib.suppress(Exception):
            body = await resp.json()
            err = body.get("error", {}) if isinstance(body, Mapping) else {}
            code, message = str(err.get("code", code)), str(err.get("message", message))
        raise NodeRejected(
            resp.status, code, f"{self.base_url}: {message}", f"{resp.url.path} answered HTTP {resp.status}"
        )


async def _message(resp: aiohttp.ClientResponse) -> str:
    with contextlib.suppress(Exception):
        body = await resp.json()
        return f": {body['error']['message']}"
    return ""


def _describe(exc: BaseException) -> str:
    """A short cause for people: ``connection refused``, ``cannot connect: ...``."""
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return "TLS handshake failed (a node started with --no-tls? add it as http://HOST:PORT)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    return str(exc) or type(exc).__name__


def _digest(method: str, path: str, data: object) -> str:
    """What the signature says of the body: a blob's name (the node checks its bytes), else its hash."""
    if method == "PUT" and path.startswith("/v1/models/uploads/") and "/stream/" in path:
        return path.split("/")[4]  # a stream of chunks: the upload id (its signed manifest holds their hashes)
    if method == "PUT" and path.startswith(("/v1/blobs/", "/v1/models/uploads/")):
        return path.rsplit("/", 1)[1]  # the bytes' sha256, which the node checks as they arrive
    if isinstance(data, bytes | bytearray | memoryview):
        return signing.body_digest(bytes(data))
    return signing.EMPTY_DIGEST


# CPython before 3.12.8 (and 3.13.0) can leave a closed TLS connection's socket open
# (python/cpython#118960): aiohttp then aborts such transports itself when asked to.
_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


def connector(**options: Any) -> aiohttp.TCPConnector:
    """The TCP connector of the farm's sessions: TLS connections closed mid-request (a cancelled probe,
    a job cancelled while it downloads) are closed for good when the session closes."""
    return aiohttp.TCPConnector(enable_cleanup_closed=_CLEANUP_CLOSED, **options)


@functools.lru_cache(maxsize=256)
def pinned(fingerprint: str) -> aiohttp.Fingerprint:
    """The ``ssl`` that accepts only the certificate with this SHA-256: one object per fingerprint, since
    aiohttp pools connections by it (a new, unequal Fingerprint each request would open a new connection)."""
    return aiohttp.Fingerprint(bytes.fromhex(fingerprint))


def signed_by(token: str) -> tuple[aiohttp.ClientMiddlewareType, ...]:
    """Client middleware that signs every request as :class:`NodeClient` does, for a plain
    ``aiohttp.ClientSession(middlewares=signed_by(token))`` (scripts, benchmarks, tests)."""

    async def sign(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        path = request.url.raw_path_qs
        if path != "/v1/health" and "Authorization" not in request.headers:
            body = request.body
            if request.method == "PUT" and path.startswith(("/v1/blobs/", "/v1/models/uploads/")):
                digest = _digest(request.method, path, None)  # the name: a streamed body is never read here
            else:
                data = body if isinstance(body, bytes) else (await body.as_bytes() if body is not None else b"")
                digest = _digest(request.method, path, data)
            value = _authorization(token, request.method, path, digest)
            request.headers["Authorization"] = value
        return await handler(request)

    return (sign,)


def _authorization(token: str, method: str, path: str, digest: str) -> str:
    """A signed ``Authorization`` value for a request made now, with a fresh nonce."""
    return signing.authorization(token, method, path, digest, now=time.time(), nonce=secrets.token_hex(16))
