"""A training watch survives a dropped connection: the client reconnects from the last step
it received and gets every metric point exactly once. The connections go through a small
TCP proxy that the test cuts mid-run."""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse

import pytest
from test_platform import TINY_CONFIG, project, samples  # noqa: F401 - module fixtures reused

from tessera import Client


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to the node; ``cut()`` closes every open connection."""

    def __init__(self, target: str) -> None:
        parsed = urlparse(target)
        self.target = (parsed.hostname, parsed.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        self.cuts = 0
        self.websockets = 0  # websocket handshakes seen
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if b" /ws/" in client.recv(64, socket.MSG_PEEK):
                self.websockets += 1
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.cuts += 1
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def proxy(node):
    p = CuttableProxy(node.url)
    yield p
    p.close()


def test_watch_reconnects_after_a_cut_and_loses_nothing(client, project, proxy):  # noqa: F811
    via_proxy = Client(proxy.url, client.token)
    config = {**TINY_CONFIG, "steps": 40, "log_interval": 2, "eval_interval": 1000}
    workflow = via_proxy.workflows.create(project["project"], "reconnect", config)
    run = via_proxy.trainings.start(workflow)
    steps = []
    for event in via_proxy.trainings.watch(run, timeout=600):
        if event.kind == "metric":
            steps.append(event.step)
            if len(steps) == 3 and proxy.cuts == 0:
                proxy.cut()
    assert (proxy.cuts, proxy.websockets) == (1, 2)  # the watch connected again after the cut
    assert via_proxy.trainings.get(run).status == "completed"
    assert steps == list(range(2, 41, 2))  # every point, once, in order
