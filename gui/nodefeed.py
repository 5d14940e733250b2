"""Discovery -> farm and dashboard: which nodes the app's farm uses, and what the dashboard shows.

``farm.runtime.discovery.Discovery`` finds nodes (mDNS, when the settings allow it, and saved or typed peers)
and checks they are alive; :class:`AppBridge` hands online ones to the farm (skipping nodes the user
ignores) and :class:`DashboardFeed` shows every state, unauthorised and offline included.
"""

from __future__ import annotations

from typing import Protocol

from farm.runtime.discovery import DownReason, NodeListener, NodeRecord
from farm.runtime.dispatch import DiscoveryBridge, Farm


class NodeView(Protocol):
    def node_up(self, node_id: str, name: str, address: str, info: dict) -> None: ...  # type: ignore[type-arg]
    def node_down(self, node_id: str, reason: str) -> None: ...
    def node_unauthorised(self, node_id: str, address: str, error: str) -> None: ...


class AppBridge(DiscoveryBridge):
    """The farm's bridge, minus the nodes the user chose to ignore."""

    def __init__(self, farm: Farm) -> None:
        super().__init__(farm)
        self.ignored: set[str] = set()

    def _sync(self, record: NodeRecord) -> None:
        if record.id in self.ignored:
            self.farm.remove_node(record.id, "ignored")
            return
        super()._sync(record)


class DashboardFeed(NodeListener):
    """Every discovery event, as the dashboard's node up / down / unauthorised calls."""

    def __init__(self, view: NodeView) -> None:
        self.view = view

    def on_node_up(self, record: NodeRecord) -> None:
        self._show(record)

    def on_node_changed(self, record: NodeRecord) -> None:
        self._show(record)

    def on_node_down(self, node_id: str, reason: DownReason) -> None:
        self.view.node_down(node_id, {"timeout": "stopped answering", "goodbye": "shut down"}.get(reason, reason))

    def _show(self, record: NodeRecord) -> None:
        if record.state == "unauthorised":
            self.view.node_unauthorised(record.id, record.address.url, f"{record.address} answered 401")
        elif record.state == "offline":
            self.view.node_down(record.id, "offline")
        else:
            self.view.node_up(record.id, record.name, record.address.url, dict(record.info))
