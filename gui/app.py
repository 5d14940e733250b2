"""The desktop app: QApplication + qasync loop running the farm, the tray icon, one instance per user."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QLabel, QMenu, QSystemTrayIcon

from farm.engines import Registry
from farm.engines.installed import default_registry
from farm.local import paths
from gui.local_node import LocalNodeMenu
from gui.main_window import MainWindow
from gui.settings import SettingsStore
from gui.theme import apply_theme, follow_system, icon
from gui.viewmodels import FarmController

log = logging.getLogger(__name__)
NO_TRAY_NOTICE = (
    "This desktop has no system tray: LAN Farm runs as a normal window, and closing it stops the farm on this PC."
)


def tray_icon(state: str) -> QIcon:
    return icon(f"tray-{state}")


def instance_key() -> str:
    """One app per user (and per LANFARM_HOME, so tests and portable installs do not collide)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    digest = hashlib.sha256(f"{user}\0{paths.config_dir()}".encode()).hexdigest()[:12]
    return f"lanfarm-{user[:16]}-{digest}"


class SingleInstance(QObject):
    """The first instance listens on a local socket; later ones hand it their files and exit."""

    received = Signal(list)  # file paths (strings) from a second launch

    def __init__(self, key: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key or instance_key()
        self.server: QLocalServer | None = None

    def hand_over(self, files: Sequence[Path], timeout_ms: int = 1000) -> bool:
        """True when another instance is running and took the files (and came to the front)."""
        socket = QLocalSocket()
        socket.connectToServer(self.key)
        if not socket.waitForConnected(timeout_ms):
            return False
        payload = json.dumps({"files": [str(Path(f).resolve()) for f in files]}).encode() + b"\n"
        socket.write(payload)
        ok = socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return ok

    def listen(self) -> bool:
        QLocalServer.removeServer(self.key)  # a stale socket left by a crashed instance
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        return self.server.listen(self.key)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def _accept(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            conn = self.server.nextPendingConnection()
            buffer = bytearray()

            def read(conn: QLocalSocket = conn, buffer: bytearray = buffer) -> None:
                buffer.extend(bytes(conn.readAll().data()))
                if b"\n" in buffer:
                    line = bytes(buffer).split(b"\n", 1)[0]
                    try:
                        files = [str(f) for f in json.loads(line).get("files", [])]
                    except (ValueError, AttributeError):
                        files = []
                    conn.disconnectFromServer()
                    self.received.emit(files)

            conn.readyRead.connect(read)
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                read()


class Tray(QObject):
    """The tray icon and its menu; the icon shows idle / working / error."""

    def __init__(self, app: LanFarmApp) -> None:
        super().__init__(app)
        window, controller = app.window, app.controller
        self.icon = QSystemTrayIcon(tray_icon("idle"), self)
        self.icon.setToolTip("LAN Farm")
        menu = QMenu()
        self.menu = menu
        show = QAction(icon("action-show"), "Show window", menu)
        show.triggered.connect(window.bring_to_front)
        menu.addAction(show)
        menu.addSeparator()
        menu.addAction(window.pause_action)
        menu.addAction(window.local_action)
        menu.addAction(window.folder_action)
        menu.addSeparator()
        quit_action = QAction(icon("action-quit"), "Quit LAN Farm", menu)
        quit_action.triggered.connect(app.quit_asked)
        menu.addAction(quit_action)
        self.icon.setContextMenu(menu)
        self.local_node = LocalNodeMenu(menu, lambda: controller.token, parent=self)  # this PC's `lanfarm node`
        self.icon.activated.connect(self._activated)
        controller.activity.connect(self.set_activity)
        window.batchChanged.connect(self.set_progress)
        window.hiddenToTray.connect(self._hidden)
        self.window = window
        self.state = "idle"
        self._told_hidden = False

    def set_progress(self, text: str) -> None:
        """The tooltip says how far the batch is and when it should end."""
        self.icon.setToolTip(f"LAN Farm — {text}" if text else "LAN Farm — nothing to do")

    def _hidden(self) -> None:
        if not self._told_hidden:  # said where the user looks (the tray), once a session
            self._told_hidden = True
            self.icon.showMessage(
                "LAN Farm is still running",
                "It keeps editing in the tray; click the icon to open the window.",
                QSystemTrayIcon.MessageIcon.Information,
                5000,
            )

    def set_activity(self, state: str) -> None:
        self.state = state
        self.icon.setIcon(tray_icon(state))

    def notify(self, title: str, text: str, error: bool) -> None:
        kind = QSystemTrayIcon.MessageIcon.Warning if error else QSystemTrayIcon.MessageIcon.Information
        self.icon.showMessage(title, text, kind, 6000)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            if self.window.isVisible():
                self.window.hide()
            else:
                self.window.bring_to_front()


class LanFarmApp(QObject):
    """Everything one running app owns; ``await run()`` until the user quits."""

    def __init__(
        self,
        *,
        store: SettingsStore | None = None,
        registry: Registry | None = None,
        use_tray: bool | None = None,
        monitor_interval: float = 2.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        qapp = QApplication.instance()
        if isinstance(qapp, QApplication):
            qapp.setQuitOnLastWindowClosed(False)  # the app ends by request_quit(), after the farm closed
        self.store = store or SettingsStore()
        # the models folder from the settings (a change applies at the next start, like the local worker)
        self.registry = registry or default_registry(self.store.load().models_dir)
        self.controller = FarmController(self.store, self.registry, monitor_interval=monitor_interval, parent=self)
        self.has_tray = QSystemTrayIcon.isSystemTrayAvailable() if use_tray is None else use_tray
        self.window = MainWindow(self.controller, keep_in_tray=self.has_tray)
        self.window.closed.connect(self.request_quit)
        self.tray = Tray(self) if self.has_tray else None
        self.controller.notify.connect(self._notify)
        self.controller.activity.connect(self._activity)
        self.notifications: list[tuple[str, str, bool]] = []
        self._quit: asyncio.Event | None = None

    async def start(self, files: Sequence[Path] = (), *, show: bool = True) -> None:
        self._quit = asyncio.Event()
        await self.controller.start()
        if self.tray is not None:
            self.tray.icon.show()
            self.tray.local_node.start()
        if show or self.tray is None:
            self.window.show()
        if self.tray is None:  # said permanently, not as a message that pushes the resume notice away
            self.window.statusBar().addPermanentWidget(QLabel("No system tray: closing this window quits"))
            if not self.controller.settings.tray_notice_shown:  # said once, not at every start
                from dataclasses import replace

                self.window.show_banner(NO_TRAY_NOTICE)
                self.controller.update_settings(replace(self.controller.settings, tray_notice_shown=True))
        if files:
            self.window.add_paths(list(files))

    async def run(self, files: Sequence[Path] = ()) -> None:
        await self.start(files)
        assert self._quit is not None
        try:
            await self._quit.wait()
        finally:
            await self.stop()

    def request_quit(self) -> None:
        if self._quit is not None:
            self._quit.set()

    def quit_asked(self) -> None:
        """The user chose Quit: asked first when edits are unfinished (they resume next time)."""
        if self.window.confirm_quit():
            self.window.save_state()
            self.request_quit()

    async def stop(self) -> None:
        if not self.window.quitting:
            self.window.save_state()
        self.window.quitting = True
        self.window.close()
        for editor in list(self.window.mask_editors):
            editor.close()
        if self.tray is not None:
            self.tray.icon.hide()
            await self.tray.local_node.stop()
        await self.controller.stop()

    def receive(self, files: list[str]) -> None:
        """A second launch handed over: come to the front and queue its files."""
        self.window.bring_to_front()
        if files:
            self.window.add_paths([Path(f) for f in files])

    def _notify(self, title: str, text: str, error: bool) -> None:
        self.notifications.append((title, text, error))
        if self.tray is not None and self.tray.icon.isVisible():
            self.tray.notify(title, text, error)
        # without a tray the activity strip already says it (the controller posted it)

    def _activity(self, state: str) -> None:
        self.window.setWindowIcon(tray_icon(state))


def run(files: Sequence[Path] = (), *, tray: bool = True) -> int:
    """``lanfarm app``: start (or hand the files to the running instance) and run until quit."""
    import qasync

    # qasync logs every future's result at DEBUG, the farm token among them: keep its log at INFO.
    logging.getLogger("qasync").setLevel(max(logging.INFO, logging.getLogger().level))
    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("LAN Farm")
    apply_theme(qapp)
    follow_system(qapp)
    qapp.setDesktopFileName("lanfarm")
    qapp.setWindowIcon(tray_icon("idle"))
    qapp.setQuitOnLastWindowClosed(False)
    instance = SingleInstance()
    if instance.hand_over(files):
        print(
            "LAN Farm is already running: it has been brought to the front"
            + (f" with {len(files)} file(s)" if files else "")
        )
        return 0
    if not instance.listen():
        log.warning("single-instance socket unavailable: %s", instance.server.errorString() if instance.server else "")
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    app = LanFarmApp(use_tray=None if tray else False)
    instance.received.connect(app.receive)
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl+C, logout, `kill`: quit cleanly (drain, save)
        signal.signal(signum, lambda *_: app.request_quit())
    wake = QTimer(interval=250)  # lets Python run its signal handlers while Qt waits
    wake.timeout.connect(lambda: None)
    wake.start()
    try:
        with loop:
            loop.run_until_complete(app.run(files))
    finally:
        instance.close()
    return 0
