"""Test support for pretrained weights: generated weights files, a local HTTP server to download them
from, and catalogue entries pointed at it (nothing here ever reaches the internet)."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import threading
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import torch

from app.ml import networks


@lru_cache(maxsize=None)
def generated_weights(name: str) -> bytes:
    """A real state dict for `name`'s full torchvision network with RANDOM weights (not the official
    file: its hash differs, so tests point the catalogue entry at it with `point_at`)."""
    from app.ml.architectures import torchvision_network

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torchvision_network(name).state_dict(), buf)
    return buf.getvalue()


def tensor_file(**tensors) -> bytes:
    """A small, valid PyTorch file holding these tensors (loads, but fits no network)."""
    buf = io.BytesIO()
    torch.save(dict(tensors), buf)
    return buf.getvalue()


def point_at(monkeypatch, name: str, base_url: str, data: bytes) -> str:
    """Make `name`'s catalogue entry expect `data` (the file name carries its SHA-256 prefix, as
    torch.hub's do) at base_url; returns the URL path the server must answer."""
    entry = networks.CATALOGUE[name]
    file_name = f"{name}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    weights = dataclasses.replace(entry.weights, url=f"{base_url}/{file_name}", size_mb=len(data) / 2**20)
    monkeypatch.setitem(networks.CATALOGUE, name, dataclasses.replace(entry, weights=weights))
    return f"/{file_name}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        data, mode = route
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        half = len(data) // 2
        self.wfile.write(data[:half])
        self.wfile.flush()
        if mode == "truncate":  # Content-Length promised more: the client sees the connection close early
            return
        if callable(mode):
            mode()  # e.g. look at the app while the download is half-way
        self.wfile.write(data[half:])

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def weights_server():
    """A local HTTP server: server.routes[path] = (bytes, mode); mode None, "truncate" or a callable
    run half-way through the body. Yields (server, base_url)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes: dict[str, tuple[bytes, str | Callable | None]] = {}
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def weights_folder(path):
    """app.ml uses `path` as its weights folder for the duration."""
    before = networks._weights_dir
    networks.set_weights_dir(path)
    try:
        yield path
    finally:
        networks._weights_dir = before


def place_random_weights(name: str) -> None:
    """Install RANDOM weights for `name` straight into the weights folder (and the bucket, if files are
    kept in one), skipping the hash check (tests that need the network usable, not its ImageNet
    knowledge)."""
    from app.ml.architectures import torchvision_network

    path = networks.weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision_network(name).state_dict(), path)
    shelf = networks.weights_shelf()
    if shelf is not None:  # files in a bucket: installed is what the bucket holds
        shelf.put(path.name, path)


def folder_files(folder) -> list[str]:
    """Every file under the weights folder (hidden .incoming/ included), relative names."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
