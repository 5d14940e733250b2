"""Node errors and the one middleware that turns every error into a JSON body a person can read."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from aiohttp import web

from farm.errors import EngineError, FarmError, ImageError, SpecError

log = logging.getLogger(__name__)

UNAUTHORISED_MESSAGE = "missing or wrong farm token"


class NodeError(FarmError):
    """An error with an HTTP status and a machine word; the message is for a person."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"


class BadRequest(NodeError):
    pass


class Unauthorised(NodeError):
    status, code = 401, "unauthorised"

    def __init__(self, message: str = UNAUTHORISED_MESSAGE) -> None:
        super().__init__(message)


class NotFound(NodeError):
    status, code = 404, "not_found"


class MissingBlob(NodeError):
    status, code = 409, "missing_blob"


class NotDone(NodeError):
    status, code = 409, "not_done"


class TooLarge(NodeError):
    status, code = 413, "too_large"


class TooSlow(NodeError):
    status, code = 408, "too_slow"


class Invalid(NodeError):
    status, code = 422, "invalid"


class HashMismatch(NodeError):
    status, code = 422, "hash_mismatch"


class Unavailable(NodeError):
    status, code = 503, "draining"


class NotAvailable(NodeError):
    """Its owner holds the node (paused, outside its schedule, NIMBY): it takes no new jobs now."""

    status, code = 503, "not_available"


class QueueFull(NodeError):
    status, code = 503, "queue_full"


# model pushes (node/model_uploads.py, node/model_library.py)
class NameTaken(NodeError):
    status, code = 409, "name_taken"


class Incomplete(NodeError):
    status, code = 409, "incomplete"


class OffsetMismatch(NodeError):
    """A stream that starts inside a chunk at a byte the node does not hold."""

    status, code = 409, "offset_mismatch"


class NoEngine(NodeError):
    status, code = 422, "no_engine"


class ModelMissing(NodeError):
    status, code = 422, "model_missing"


class DiskFull(NodeError):
    status, code = 507, "disk_full"


class OverBudget(NodeError):
    status, code = 507, "over_budget"


#: farm's own errors, as the node answers them.
FARM_STATUS: tuple[tuple[type[FarmError], int, str], ...] = (
    (SpecError, 422, "bad_spec"),
    (EngineError, 422, "engine"),
    (ImageError, 422, "bad_image"),
    (FarmError, 422, "invalid"),
)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> web.Response:
    resp = web.json_response(error_body(code, message), status=status)
    if status in (408, 413):
        resp.force_close()  # the rest of the body is not wanted: do not keep reading it
    return resp


def _http_code(exc: web.HTTPException) -> str:
    return (exc.reason or "error").lower().replace(" ", "_").replace("-", "_")


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The one place errors become HTTP: NodeError, farm errors, aiohttp's own, and bugs (500)."""
    try:
        return await handler(request)
    except NodeError as exc:
        return error_response(exc.status, exc.code, str(exc))
    except FarmError as exc:
        for kind, status, code in FARM_STATUS:
            if isinstance(exc, kind):
                return error_response(status, code, str(exc))
        raise AssertionError("unreachable") from exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        resp = error_response(exc.status, _http_code(exc), message)
        for name in ("Allow",):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error on the node; see its log")
