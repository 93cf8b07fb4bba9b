"""A real HTTP server on 127.0.0.1 for the weights tests, and checkpoints in each upstream layout.

The upstream files are made from random weights and saved the way each library saves them:
pycls ``{"epoch", "model_state", ...}`` (``.pyth``), mmcls ``{"meta", "state_dict"}``, torchvision
a plain state dict of its own model. Key names come from the independent generators in
``test_convert.py`` (pycls, mmcls) and from torchvision's own model.
"""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
import torchvision
from test_convert import mmcls_names, pycls_names, randomised
from torch import nn

from regnet_tutorial import get_card


class FileServer:
    """Serves ``files`` (URL path -> bytes). Paths in ``truncated`` announce their full length
    but close the connection after half the body, like a dropped download."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncated:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections and never answers: a download must time out, not hang."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upstream_checkpoint(
    source: str, model_name: str, seed: int = 0, head_bias: dict[int, float] | None = None
) -> tuple[bytes, nn.Module]:
    """(file bytes in ``source``'s layout, the upstream model they hold) for ``model_name``.

    ``head_bias`` sets classifier biases, e.g. ``{0: 100, 1: 99, 2: 98}`` makes the model rank
    classes 0, 1, 2 first on any image, so its accuracy is known in advance.
    """
    if source == "torchvision":
        torch.manual_seed(seed)
        model = torchvision.models.get_model(get_card(model_name).torchvision, weights=None)
        with torch.no_grad():
            for key, tensor in model.state_dict().items():
                if key.endswith("running_var"):
                    tensor.copy_(torch.rand_like(tensor) + 0.5)
                elif key.endswith("running_mean"):
                    tensor.copy_(torch.randn_like(tensor) * 0.1)
        return _saved(model.state_dict()), model.eval()
    model = randomised(model_name, seed)
    with torch.no_grad():
        for index, value in (head_bias or {}).items():
            model.head.fc.bias[index] = value
    ours = model.state_dict()
    if source == "pycls":
        foreign = {theirs: ours[mine] for theirs, mine in pycls_names(get_card(model_name).stages()).items()}
        return _saved({"epoch": 99, "test_err": 31.1, "model_state": foreign}), model
    foreign = {theirs: ours[mine] for theirs, mine in mmcls_names(get_card(model_name).stages()).items()}
    return _saved({"meta": {"epoch": 100, "mmcls_version": "0.18.0"}, "state_dict": foreign}), model
