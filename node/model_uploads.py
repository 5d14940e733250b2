"""Models pushed to this node (docs/protocol.md, "Pushing a model"): announce, send chunks, finish.

``POST /v1/models/uploads`` announces a model (its manifest); the node answers which chunks it still
needs and how many bytes of an unfinished chunk it kept, so a push cut short by a dropped connection
or a node restart resumes from there (``PUT .../stream/{file}/{index}?offset=N`` sends the rest).
``PUT /v1/models/uploads/{id}/{file}/{index}/{sha}`` sends one chunk, checked against ``sha`` before
it is recorded. ``POST .../finish`` hashes each file whole, runs the same load check as
``lanfarm models add`` (in a worker thread), and only then renames the model into the models folder
and offers it to the engines. The job upload limit does not apply: models have their own disk
budget (node/model_library.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from farm.engines.catalogue import classify, sd_architecture
from farm.engines.installed import check_loads, inspect_model
from farm.errors import EngineError
from node import keys
from node.errors import (
    DiskFull,
    HashMismatch,
    Incomplete,
    Invalid,
    ModelMissing,
    NameTaken,
    NodeError,
    NoEngine,
    NotFound,
    OffsetMismatch,
)
from node.model_library import ModelLibrary
from node.model_manifest import SHA_RE, Manifest, NotAModel, parse_manifest
from node.model_staging import (
    Staged,
    clean_stale,
    open_file,
    open_staged,
    read_prefix,
    record_chunk,
    record_prefix,
    remove,
    verify,
)
from node.requests import JobRequest, parse_json

UPLOADS: web.AppKey[dict[str, Staged]] = web.AppKey("model_uploads")
#: Bytes of a chunk written to disk at once while the rest still arrives.
WRITE_PIECE = 1 << 20
#: The most the loop reads of a body at once (a piece is written once it holds WRITE_PIECE).
READ = 1 << 18
LOCKS: web.AppKey[dict[str, asyncio.Lock]] = web.AppKey("model_upload_locks")


def setup_model_routes(app: web.Application) -> None:
    app[UPLOADS] = {}
    app[LOCKS] = {}
    r = app.router
    r.add_post("/v1/models/uploads", start_upload)
    r.add_get("/v1/models/uploads/{id}", upload_state, allow_head=False)
    r.add_put("/v1/models/uploads/{sha}/stream/{file}/{index}", put_stream)  # before the route it would match
    r.add_put("/v1/models/uploads/{id}/{file}/{index}/{sha}", put_chunk)
    r.add_post("/v1/models/uploads/{id}/finish", finish_upload)
    r.add_delete("/v1/models/uploads/{id}", abort_upload)


async def uploads_ctx(app: web.Application) -> AsyncIterator[None]:
    """Pushes left unfinished for a week are removed at start (younger ones can still resume)."""
    await asyncio.to_thread(clean_stale, app[keys.MODELS].staging)
    yield


def _state(staged: Staged) -> dict[str, Any]:
    missing = staged.missing()
    return {
        "id": staged.manifest.id,
        "name": staged.manifest.name,
        "state": "receiving",
        "chunk_size": staged.manifest.chunk_size,
        "chunks": sum(1 for _ in staged.manifest.all_chunks()),
        "missing": [list(c) for c in missing],
        "partial": [[f, i, n] for (f, i), n in sorted(staged.partial.items())],
    }


async def start_upload(request: web.Request) -> web.Response:
    app = request.app
    library = app[keys.MODELS]
    manifest = parse_manifest(parse_json(await request.read()))
    if app[keys.REGISTRY].lite:
        raise NoEngine(
            "this node has no AI engines to run or check a model with: install the ai extra there "
            "(pip install 'lanfarm[ai]')"
        )
    cards = await asyncio.to_thread(library.cards)
    same = next((c for c in cards if c.id == manifest.id), None)
    if same is not None:
        return web.json_response({"id": same.id, "name": same.name, "state": "installed", "model": same.to_dict()})
    other = next((c for c in cards if c.name == manifest.name), None)
    if other is not None:
        raise NameTaken(
            f"this node already has a different model named {manifest.name} (id {other.id[:12]}...); "
            "remove or rename it there to push this one"
        )
    staged = app[UPLOADS].get(manifest.id)
    if staged is None or staged.manifest != manifest:
        if not (library.staging / manifest.id).is_dir():
            busy = library.in_use()
            await asyncio.to_thread(library.make_room, manifest.size, busy)
        staged = await asyncio.to_thread(_open, library, manifest)
        app[UPLOADS][manifest.id] = staged
    return web.json_response(_state(staged))


def _open(library: ModelLibrary, manifest: Manifest) -> Staged:
    try:
        return open_staged(library.staging, manifest)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"this node's disk is full: cannot stage {manifest.name}") from None
        raise


async def _staged(request: web.Request, key: str = "id") -> Staged:
    """The upload a request names, resumed from disk after a node restart."""
    app = request.app
    upload_id = request.match_info[key].lower()
    if not SHA_RE.fullmatch(upload_id):
        raise Invalid("an upload is named by the model's content id: 64 hex digits")
    staged = app[UPLOADS].get(upload_id)
    if staged is None:
        staged = await asyncio.to_thread(_resume, app[keys.MODELS], upload_id)
        if staged is None:
            raise NotFound(f"no upload {upload_id} on this node: announce it with POST /v1/models/uploads")
        app[UPLOADS][upload_id] = staged
    return staged


def _resume(library: ModelLibrary, upload_id: str) -> Staged | None:
    try:
        manifest = parse_manifest(json.loads((library.staging / upload_id / "manifest.json").read_text("utf-8")))
    except (OSError, ValueError, NodeError):
        return None
    return open_staged(library.staging, manifest)


async def upload_state(request: web.Request) -> web.Response:
    return web.json_response(_state(await _staged(request)))


async def put_chunk(request: web.Request) -> web.Response:
    staged = await _staged(request)
    try:
        file, index = int(request.match_info["file"]), int(request.match_info["index"])
    except ValueError:
        raise Invalid("a chunk is named by its file number and chunk number") from None
    sha = request.match_info["sha"].lower()
    if not SHA_RE.fullmatch(sha):
        raise Invalid("a chunk is named by the sha256 of its bytes: 64 hex digits")
    offset, length = staged.manifest.chunk_span(file, index)
    if request.content_length is not None and request.content_length != length:
        raise Invalid(f"chunk {file}/{index} is {length} bytes, not {request.content_length}")
    if (file, index) in staged.have:
        return web.json_response({"stored": False, "missing": len(staged.missing())})
    try:
        await _receive(request, staged, (file, index, sha), offset, length)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(
                f"this node's disk is full: chunk {file}/{index} of {staged.manifest.name} not stored"
            ) from None
        raise
    return web.json_response({"stored": True, "missing": len(staged.missing())}, status=201)


async def put_stream(request: web.Request) -> web.Response:
    """Chunks ``index``, ``index + 1``... of a file in one body (to the end of the file, or until the
    sender stops): each is checked against the chunk hashes its manifest announced and recorded as soon
    as it is whole, so the link never waits for a chunk's answer. What arrives of an unfinished chunk is
    kept as it is written, so ``?offset=N`` (at most the bytes of chunk ``index`` the node said it kept)
    starts the body at byte N of that chunk and a cut loses only what was still on its way.
    The signature's body digest is the upload id (the manifest, signed, holds the chunk hashes)."""
    staged = await _staged(request, "sha")
    try:
        file, first = int(request.match_info["file"]), int(request.match_info["index"])
        skip = int(request.query.get("offset", "0"))
    except ValueError:
        raise Invalid("a stream is named by its file number and first chunk number, offset by a byte count") from None
    _at, first_length = staged.manifest.chunk_span(file, first)  # Invalid for a chunk the manifest does not have
    hashes = staged.manifest.files[file].chunks
    if not hashes:
        raise Invalid("streaming needs the chunk hashes in the manifest (files[].chunks); send chunk by chunk")
    kept = first_length if (file, first) in staged.have else staged.partial.get((file, first), 0)
    if not 0 <= skip <= kept or (skip and skip >= first_length):
        raise OffsetMismatch(
            f"chunk {file}/{first}: this node kept {kept} of its bytes, so a stream cannot start at byte {skip} "
            "(ask GET /v1/models/uploads/{id} where to resume)"
        )
    stored = 0
    try:
        fd = await asyncio.to_thread(open_file, staged, file)
        try:
            for index in range(first, staged.manifest.chunks(file)):
                offset, length = staged.manifest.chunk_span(file, index)
                if length and request.content.at_eof():
                    break  # the sender stopped here
                chunk = (file, index, hashes[index])
                await _receive(request, staged, chunk, offset, length, whole=False, fd=fd, kept=skip)
                skip = 0
                stored += 1
        finally:
            await asyncio.to_thread(os.close, fd)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"this node's disk is full: {staged.manifest.name} not stored") from None
        raise
    return web.json_response({"stored": stored, "missing": len(staged.missing())}, status=201)


async def _receive(
    request: web.Request,
    staged: Staged,
    chunk: tuple[int, int, str],
    offset: int,
    length: int,
    *,
    whole: bool = True,
    fd: int | None = None,
    kept: int = 0,
) -> None:
    """Stream a chunk's body to its offset and record it once it is whole and its hash is right. The loop
    only reads: each 1 MB piece is hashed and written in a worker thread while the next one arrives (sha256
    releases the GIL), and logged as kept, and the last piece, the check and the log line are one thread
    hop, so the answer is quick. ``fd``: the stream's open file (kept open across its chunks); None opens
    and closes one here. ``kept``: the body starts at this byte of the chunk (those before it are on disk,
    read back to hash the chunk whole)."""
    file, index, _sha = chunk
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    if kept:
        digest.update(await asyncio.to_thread(read_prefix, staged, file, index, kept))
    own = fd is None
    if fd is None:
        fd = await asyncio.to_thread(open_file, staged, file)
    pending: asyncio.Future[None] | None = None
    # two buffers in turn: the loop copies what arrives into one while a thread writes the other (a fresh
    # 1 MB bytes object per piece cost the loop more than the copy: page faults on every new allocation)
    room = min(length - kept, WRITE_PIECE + READ)
    spare, buf = bytearray(room), bytearray(room)
    buffered = 0
    size = kept
    position = offset + kept
    closed = not own
    try:
        while size < length or whole:
            # a stream's chunks share one body: read no further than this chunk's end
            piece = await request.content.read(READ if whole else min(length - size, READ))
            if not piece:
                break
            size += len(piece)
            if size > length:
                raise Invalid(f"chunk {file}/{index} is longer than its {length} bytes")
            buf[buffered : buffered + len(piece)] = piece
            buffered += len(piece)
            if buffered >= WRITE_PIECE:
                if pending is not None:
                    await pending
                data = memoryview(buf)[:buffered]
                upto = size if size < length else 0  # a whole chunk is logged as checked, or not at all
                pending = loop.run_in_executor(None, _keep, fd, data, position, digest, staged, chunk, upto)
                position += buffered
                buf, spare, buffered = spare, buf, 0
        if pending is not None:
            await pending
            pending = None
        if size != length:
            raise Invalid(f"chunk {file}/{index} was cut short: {size} of {length} bytes arrived")
        closed = True
        await asyncio.to_thread(_last_piece, fd, memoryview(buf)[:buffered], position, digest, staged, chunk, own)
    finally:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        if not closed:
            await asyncio.to_thread(os.close, fd)


def _write(fd: int, data: bytes | memoryview, position: int, digest: Any) -> None:
    """In a worker thread: hash a piece (in arrival order: the loop awaits each before the next) and write it."""
    digest.update(data)
    os.pwrite(fd, data, position)


def _keep(
    fd: int,
    data: bytes | memoryview,
    position: int,
    digest: Any,
    staged: Staged,
    chunk: tuple[int, int, str],
    upto: int,
) -> None:
    """In a worker thread: write a piece, then log the chunk's first ``upto`` bytes as kept (0: nothing to log)."""
    _write(fd, data, position, digest)
    if upto:
        record_prefix(staged, chunk[0], chunk[1], upto)


def _last_piece(
    fd: int,
    data: bytes | memoryview,
    position: int,
    digest: Any,
    staged: Staged,
    chunk: tuple[int, int, str],
    close: bool,
) -> None:
    """In a worker thread: the chunk's last piece, its hash checked, then its log line (only if right)."""
    file, index, sha = chunk
    try:
        if data:
            _write(fd, data, position, digest)
    finally:
        if close:
            os.close(fd)
    got = digest.hexdigest()
    if got != sha:
        record_prefix(staged, file, index, 0)  # sent whole next time
        raise HashMismatch(f"chunk {file}/{index} hashes to {got}, not {sha}: it was corrupted on the way (not stored)")
    record_chunk(staged, *chunk)


async def finish_upload(request: web.Request) -> web.Response:
    app = request.app
    staged = await _staged(request)
    lock = app[LOCKS].setdefault(staged.manifest.id, asyncio.Lock())
    async with lock:
        if app[UPLOADS].get(staged.manifest.id) is not staged:  # a concurrent finish installed it
            return await _installed_answer(app[keys.MODELS], staged.manifest)
        missing = staged.missing()
        if missing:
            raise Incomplete(f"{len(missing)} chunks of {staged.manifest.name} have not arrived yet")
        try:
            card = await asyncio.to_thread(_install, app[keys.MODELS], staged)
        except (HashMismatch, NotAModel, NoEngine):
            app[UPLOADS].pop(staged.manifest.id, None)
            await asyncio.to_thread(remove, staged.folder)
            raise
        app[UPLOADS].pop(staged.manifest.id, None)
    app[LOCKS].pop(staged.manifest.id, None)
    return web.json_response({"id": card["id"], "name": card["name"], "state": "installed", "model": card}, status=201)


async def _installed_answer(library: ModelLibrary, manifest: Manifest) -> web.Response:
    cards = await asyncio.to_thread(library.cards)
    card = next((c for c in cards if c.id == manifest.id), None)
    if card is None:
        raise NotFound(f"the upload of {manifest.name} ended without installing it")
    return web.json_response({"id": card.id, "name": card.name, "state": "installed", "model": card.to_dict()})


def _install(library: ModelLibrary, staged: Staged) -> dict[str, Any]:
    """Whole-file hashes, the load check, then the one rename that makes the model visible."""
    verify(staged)
    name = staged.manifest.name
    model = classify(staged.model_path)
    if model is None or model.kind == "unknown" or model.note:
        why = model.note if model is not None and model.note else "not a model LAN Farm can use"
        raise NotAModel(f"{name} failed the load check: {why}; nothing was installed")
    try:
        check_loads(model)
        if model.format == "diffusers":
            architecture, scale = sd_architecture(model.path), 1
        elif model.format == "torchscript":
            architecture, scale = "LaMa (IOPaint TorchScript)", 1
        else:
            architecture, scale = inspect_model(model)
    except ImportError as exc:
        raise NoEngine(
            f"this node cannot load {name}: {exc} (install the ai extra there); nothing was installed"
        ) from None
    except (EngineError, OSError, ValueError, RuntimeError) as exc:
        raise NotAModel(f"{name} failed the load check: {exc}; nothing was installed") from None
    dest = library.folder / name
    if dest.exists() or dest.is_symlink():
        raise NameTaken(f"this node already has a model named {name}")
    staged.model_path.rename(dest)
    remove(staged.folder)
    installed = classify(dest)
    assert installed is not None
    library.installed(installed, staged.manifest.id, architecture, scale)
    card = library.ids.find(staged.manifest.id)
    assert card is not None
    return card.to_dict()


async def abort_upload(request: web.Request) -> web.Response:
    staged = await _staged(request)
    request.app[UPLOADS].pop(staged.manifest.id, None)
    await asyncio.to_thread(remove, staged.folder)
    return web.json_response({"id": staged.manifest.id, "state": "aborted"})


async def model_for_job(library: ModelLibrary, req: JobRequest) -> JobRequest:
    """A job that names its model by content id runs on this node's file with that id, under whatever
    name it has here; a node whose file of that name is other content refuses it (422 model_missing)."""
    spec = req.spec
    if spec.model_id is None:
        return req
    cards = await asyncio.to_thread(library.cards)
    card = next((c for c in cards if c.id == spec.model_id), None)
    if card is None:
        same_name = next((c for c in cards if c.name == spec.model), None)
        why = f"; its {spec.model} is other content (id {same_name.id[:12]}...)" if same_name else ""
        raise ModelMissing(f"this node has no model with id {spec.model_id[:12]}...{why}")
    if card.name == spec.model:
        return req
    return dataclasses.replace(req, spec=dataclasses.replace(spec, model=card.name))
