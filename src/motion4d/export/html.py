"""The self-contained web player: one HTML file holding the player (three.js and our splat layer, bundled
by esbuild into ``web/dist/player.js``) and the data (a ``.splatv`` and / or a GLB, gzip + base64), which
opens from disk with no server and no network.

The page's config (JSON): ``time_range`` [t0, t1] (model time), ``duration_s`` (seconds the clip lasts at
speed 1), ``cameras`` (``viewmat`` world→camera OpenCV rows, ``K``, ``width``, ``height``, ``name``: the
run's test cameras), ``center`` and ``up`` (what the orbit turns about), ``background`` RGB, ``mode``
("splats", "mesh" or "both"), ``glb`` (``seconds_per_time``, ``asset_to_world``) and ``beside_offset``
(where "both" puts the mesh). ``web/src/main.js`` documents its URL parameters (``?t=&view=&w=&h=``).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from importlib import resources

from motion4d.errors import DataError

WEB = "web"
BUNDLE = "dist/player.js"
TEMPLATE = "player.html"


def _asset(name: str) -> str:
    path = resources.files("motion4d.export").joinpath(WEB, *name.split("/"))
    if not path.is_file():
        raise DataError(f"{path}: the web player is missing from this installation (build it: cd {path.parent} && npm ci && npm run build)")
    return path.read_text(encoding="utf-8")


def _blob(data: bytes | None) -> str:
    return "" if data is None else base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def _json_in_script(value) -> str:
    """``value`` as JSON that cannot end the <script> element it sits in (``</`` written ``<\\/``)."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _js_in_script(code: str) -> str:
    """``code`` with ``</script`` (only possible in its strings and regular expressions) written ``<\\/script``."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


def player_html(config: dict, *, splatv: bytes | None = None, glb: bytes | None = None, title: str = "motion4d") -> str:
    """The page: the player with ``config`` and the ``.splatv`` / GLB bytes inside (at least one of them)."""
    if splatv is None and glb is None:
        raise ValueError("the player needs a .splatv or a GLB to show")
    html = _asset(TEMPLATE)
    parts = {
        "__M4D_TITLE__": title.replace("&", "&amp;").replace("<", "&lt;"),
        "__M4D_CONFIG__": _json_in_script(config),
        "__M4D_SPLATV__": _blob(splatv),
        "__M4D_GLB__": _blob(glb),
        "__M4D_PLAYER__": _js_in_script(_asset(BUNDLE)),
    }
    return re.sub("|".join(parts), lambda m: parts[m.group(0)], html)
