"""The farm's APIs for other programs, served by ``lanfarm serve`` (:mod:`farm.cli.serve`).

- :mod:`farm.api.iopaint`: IOPaint 1.6's HTTP API (``/api/v1/...``) answered by the whole farm;
- :mod:`farm.api.native`: the farm's own versioned API (``/farm/v1/...``, ``docs/farm-api.md``);
- :mod:`farm.api.progress`: IOPaint's socket.io progress events (python-socketio);
- :mod:`farm.api.access`: who may call which API (127.0.0.1; the farm token; the allow-list);
- :mod:`farm.api.edits`: one edit from bytes to bytes through :class:`farm.Farm`;
- :mod:`farm.api.app`: the aiohttp app that joins them.
"""
