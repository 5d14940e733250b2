"""Typed application keys: everything the handlers share, in one place."""

from __future__ import annotations

import weakref

from aiohttp import web

from farm.engines import Registry
from farm.local.hardware import Hardware
from node.availability import Steward
from node.blobs import BlobStore
from node.config import NodeConfig
from node.events import EventHub
from node.executor import Clock, JobRunner
from node.model_library import ModelLibrary

CONFIG = web.AppKey("config", NodeConfig)
TOKEN = web.AppKey("token", str)
NODE_ID = web.AppKey("node_id", str)
REGISTRY = web.AppKey("registry", Registry)
HARDWARE = web.AppKey("hardware", Hardware)
BLOBS = web.AppKey("blobs", BlobStore)
HUB = web.AppKey("hub", EventHub)
RUNNER = web.AppKey("runner", JobRunner)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STARTED = web.AppKey("started", float)
MODELS = web.AppKey("models", ModelLibrary)
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
STEWARD = web.AppKey("steward", Steward)
SLOT_DEVICES: web.AppKey[list[str]] = web.AppKey("slot_devices")  # the device of each job slot
FINGERPRINT = web.AppKey("fingerprint", str)  # the served TLS certificate's SHA-256 ("" : plain HTTP)
