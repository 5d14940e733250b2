"""``GET /metrics``: the node in the Prometheus text format (prometheus-client), for a studio's Grafana.

Counters and the job-time histogram are fed once per finished job (``JobRunner.ended``); the gauges
(queue, busy slots, GPU memory, availability) are read at each scrape. Signed like every route,
unless the node's ``metrics_open`` setting opens it to an unsigned scraper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from farm.core.availability import State
from farm.core.job import JobState
from farm.local import hardware as hw
from node import keys
from node.jobs import NodeJob

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800)
METRICS: web.AppKey[NodeMetrics] = web.AppKey("metrics")


class _Gauges(Collector):
    def __init__(self, app: web.Application, owner: NodeMetrics) -> None:
        self.app = app
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        app = self.app
        runner = app[keys.RUNNER]
        current = app[keys.STEWARD].current
        queue = GaugeMetricFamily("lanfarm_node_queue_jobs", "Jobs whose engine has not started")
        queue.add_metric([], runner.queued)
        busy = GaugeMetricFamily("lanfarm_node_busy_slots", "Slots running an engine now")
        busy.add_metric([], runner.busy)
        slots = GaugeMetricFamily("lanfarm_node_slots", "Engine slots of this node")
        slots.add_metric([], runner.slots)
        state = GaugeMetricFamily(
            "lanfarm_node_availability", "1 for the node's availability state, 0 for the others", labels=["state"]
        )
        for s in State:
            state.add_metric([str(s)], 1.0 if current.state is s else 0.0)
        total = GaugeMetricFamily("lanfarm_node_gpu_memory_total_bytes", "GPU memory", labels=["gpu", "name"])
        used = GaugeMetricFamily("lanfarm_node_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu", "name"])
        for gpu in self.owner.hardware.gpus:
            total.add_metric([str(gpu.index), gpu.name], gpu.vram_total)
            used.add_metric([str(gpu.index), gpu.name], max(0, gpu.vram_total - gpu.vram_free))
        yield from (queue, busy, slots, state, total, used)


class NodeMetrics:
    """The node's Prometheus registry (its own, so two apps in one process never share counters)."""

    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Counter(
            "lanfarm_node_jobs", "Jobs finished, by engine and outcome", ["engine", "outcome"], registry=self.registry
        )
        self.seconds = Histogram(
            "lanfarm_node_job_seconds",
            "Engine start to end of each done job",
            ["engine"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.hardware = app[keys.HARDWARE]  # refreshed at each scrape (free VRAM)
        self.registry.register(_Gauges(app, self))

    def job_ended(self, job: NodeJob) -> None:
        outcome = {JobState.DONE: "done", JobState.FAILED: "failed"}.get(job.state, "cancelled")
        self.jobs.labels(job.spec.engine, outcome).inc()
        if job.state is JobState.DONE and job.started is not None and job.finished is not None:
            self.seconds.labels(job.spec.engine).observe(max(0.0, job.finished - job.started))


def install(app: web.Application) -> None:
    app[METRICS] = m = NodeMetrics(app)
    app[keys.RUNNER].ended.append(m.job_ended)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    m.hardware = await asyncio.get_running_loop().run_in_executor(None, hw.refresh, m.hardware)
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE})
