"""Results out: atomic file writes, standard 3DGS PLY, videos and images; ``.m4d``, glTF, ``.splatv`` and the web
player page in their modules."""

from motion4d.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from motion4d.export.ply import load_ply, rgb_to_sh0, save_ply, sh0_to_rgb
from motion4d.export.video import save_image, write_video

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_ply",
    "rgb_to_sh0",
    "save_image",
    "save_ply",
    "sh0_to_rgb",
    "write_video",
]
