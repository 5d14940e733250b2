"""Parsing of request bodies into typed values, pure: anything malformed raises Invalid or SpecError."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from farm.core.spec import EditSpec
from node.blobs import check_sha
from node.errors import BadRequest, Invalid

JOB_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")  # whole ids only: used with fullmatch
DEFAULT_CLIENT = "anonymous"
PRIORITY_RANGE = (-1000, 1000)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A valid ``POST /v1/jobs`` body."""

    id: str
    spec: EditSpec
    image: str
    mask: str | None
    client: str
    priority: int


def parse_json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None


def check_job_id(value: Any) -> str:
    if not isinstance(value, str) or not JOB_ID_RE.fullmatch(value):
        raise Invalid("job id must be 8-64 characters of A-Z, a-z, 0-9, _ and -")
    return value


def parse_job(body: Any) -> JobRequest:
    """Check a job submission's shape (not whether its engine or blobs exist here)."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object with id, spec and image")
    unknown = sorted(set(body) - {"id", "spec", "image", "mask", "client", "priority"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r} in the job")
    job_id = check_job_id(body.get("id"))
    image = body.get("image")
    if not isinstance(image, str):
        raise Invalid("image must be the SHA-256 of an uploaded blob")
    mask = body.get("mask")
    if mask is not None and not isinstance(mask, str):
        raise Invalid("mask must be the SHA-256 of an uploaded blob, or null")
    client = body.get("client", DEFAULT_CLIENT)
    if not isinstance(client, str) or not 1 <= len(client) <= 64:
        raise Invalid("client must be a name of 1-64 characters")
    priority = body.get("priority", 0)
    lo, hi = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not lo <= priority <= hi:
        raise Invalid(f"priority must be a whole number from {lo} to {hi}")
    if "spec" not in body:
        raise Invalid("the job has no spec")
    spec = EditSpec.from_dict(body["spec"])
    return JobRequest(
        id=job_id,
        spec=spec,
        image=check_sha(image),
        mask=None if mask is None else check_sha(mask),
        client=client,
        priority=priority,
    )
