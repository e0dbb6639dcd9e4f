"""``motion4d view RUN|FILE``: the web player of a run folder, ``.m4d``, ``.splatv`` or ``.glb``, served over
HTTP on 127.0.0.1 (by default; a free port unless one is given) until interrupted.

The page is the one ``export --format html`` writes (:func:`motion4d.pipelines.export_web.run_page`); a
``.splatv`` plays with the cameras its header holds; a GLB alone is turned from glTF's Y-up into our Z-up
world (as ``dataset from-gltf`` does) and shown from 8 cameras around it over its animation's seconds.
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from motion4d.data.gltf import load_gltf
from motion4d.errors import DataError
from motion4d.export.html import player_html
from motion4d.export.splatv import read_splatv
from motion4d.pipelines.dataset_gltf import Y_UP_TO_Z_UP
from motion4d.pipelines.export_web import page_config, run_page
from motion4d.render.cameras import intrinsics_from_fov, orbit_viewmats

log = logging.getLogger(__name__)

KINDS = "a run folder, .m4d, .splatv or .glb file"


def _glb_page(path: Path) -> str:
    asset = load_gltf(path)
    a2w = np.eye(4)
    a2w[:3, :3] = Y_UP_TO_Z_UP
    verts = asset.vertices_at(0.0) @ Y_UP_TO_Z_UP.T
    lo, hi = verts.min(0), verts.max(0)
    center, radius = (lo + hi) / 2, max(float(np.linalg.norm(hi - lo)) / 2, 1e-6)
    K = intrinsics_from_fov(40.0, 512, 512)
    viewmats = orbit_viewmats(8, 3.0 * radius, elevation_deg=20.0, target=tuple(float(c) for c in center))
    cameras = [{"name": f"orbit {i}", "viewmat": v.double().tolist(), "K": K.double().tolist(), "width": 512, "height": 512} for i, v in enumerate(viewmats)]
    duration = float(asset.duration)
    header = {"time_range": [0.0, duration], "duration_s": duration, "cameras": cameras, "center": center.tolist(),
              "background": [1.0, 1.0, 1.0], "asset_to_world": a2w.tolist()}  # fmt: skip
    config = page_config(header, path, None)
    config["glb"]["seconds_per_time"] = 1.0
    return player_html(config, glb=path.read_bytes(), title=f"motion4d · {path.name}")


def view_page(target: str | Path) -> str:
    """The player page of ``target``: a run folder, ``.m4d``, ``.splatv`` or ``.glb``; a DataError naming it otherwise."""
    path = Path(target)
    if not path.exists():
        raise DataError(f"{path}: no such file or run folder")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".m4d":
        return run_page(path, check=False)[0]
    if suffix == ".splatv":
        records, header = read_splatv(path)
        return player_html(page_config(header, None, records), splatv=path.read_bytes(), title=f"motion4d · {path.name}")
    if suffix == ".glb":
        return _glb_page(path)
    raise DataError(f"{path}: not {KINDS}")


class _Handler(BaseHTTPRequestHandler):
    page: bytes = b""

    def do_GET(self):  # noqa: N802 - the http.server name
        if self.path.split("?")[0] not in ("/", "/index.html"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format, *args):  # noqa: A002 - the http.server signature
        log.debug("view: " + format, *args)


def page_server(html: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) of ``html`` at ``/`` on ``host:port`` (port 0: a free one)."""
    handler = type("PageHandler", (_Handler,), {"page": html.encode("utf-8")})
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise DataError(f"--host {host} --port {port}: cannot serve there ({e.strerror or e})") from None


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def view(run: str, *, host: str = "127.0.0.1", port: int = 0, browser: bool = True,
         announce: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> dict:  # fmt: skip
    """Serve the player page of ``run`` (see :func:`view_page`) until interrupted (or ``stop`` is set);
    ``announce(url)`` is called once it serves; ``browser`` opens the URL in the default browser."""
    if not 0 <= port <= 65535:
        raise DataError(f"--port must be in 0..65535, got {port}")
    server = page_server(view_page(run), host, port)
    url = server_url(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log.info("serving %s at %s (Ctrl-C stops)", run, url)
    if announce is not None:
        announce(url)
    if browser:
        webbrowser.open(url)
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        log.info("view: stopped")
    finally:
        server.shutdown()
        server.server_close()
    return {"url": url, "stopped": True}
