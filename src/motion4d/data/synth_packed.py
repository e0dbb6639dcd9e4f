"""The packed, streamable form of captioned multi-view video datasets (``motion4d.synth``, version 1).

Layout of a dataset folder ``DATA/``:

* ``DATA/dataset.json``: ``format`` ("motion4d.synth"), ``version`` (1), ``n`` (samples in all), ``seed``,
  ``res``, ``frames``, ``views_per_sample``, ``fov_deg``, ``eval_views`` (``[{"azimuth_deg", "elevation_deg",
  "radius"}, ...]``, the fixed evaluation views: the first views of every sample), ``vocabulary``
  (``{"shapes", "colours", "motions"}``), ``templates`` (``{"train": [...], "held_out": [...]}``),
  ``held_out_combinations`` (``[[shape, colour, motion], ...]``) and ``shards`` (``[{"file", "n", "split"}, ...]``,
  ``file`` relative to ``DATA``); other keys may be added.
* each shard ``DATA/packed/shard_NNNNN.safetensors`` holds S ≤ ~256 samples: ``images`` uint8
  ``[S, V, T, R, R, 4]`` (straight RGBA, sRGB), ``azimuth_deg`` / ``elevation_deg`` / ``radius`` float32
  ``[S, V]`` (cameras of :func:`motion4d.render.cameras.spherical_viewmats`, fov ``fov_deg``), ``times``
  float32 ``[T]`` (0 → 1), and the string metadata ``samples``: a JSON list, one
  ``{"id", "caption", "shape", "colour", "motion", "split", ...}`` per sample, ``split`` "train" or "held_out".

:class:`ShardWriter` writes shards; :func:`write_dataset_json` the header; :class:`SynthShards` reads both
(random access, or shard by shard for streaming), raising :class:`~motion4d.errors.DataError` naming the file
on any damage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from motion4d.atomic import atomic_path, atomic_write_text
from motion4d.errors import DataError

FORMAT = "motion4d.synth"
"""``dataset.json``'s ``format``."""
VERSION = 1
"""``dataset.json``'s ``version``."""
DATASET_FILE = "dataset.json"
"""The header's file name in a dataset folder."""
PACKED_FOLDER = "packed"
"""Where the shards are, in a dataset folder."""
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str, "version": int, "n": int, "seed": int, "res": int, "frames": int, "views_per_sample": int,
    "fov_deg": (int, float), "eval_views": list, "vocabulary": dict, "templates": dict, "held_out_combinations": list, "shards": list,
}  # fmt: skip
"""``dataset.json``'s keys and their JSON types."""
CAMERA_KEYS = ("azimuth_deg", "elevation_deg", "radius")
"""The per-view camera tensors of a shard ([S, V] float32 each)."""
RECORD_KEYS = ("id", "caption", "shape", "colour", "motion", "split")
"""Keys every per-sample record has."""


@dataclass
class SynthSample:
    """One sample of a packed dataset."""

    images: Tensor
    """[V,T,R,R,4] uint8 straight RGBA."""
    azimuth_deg: Tensor
    """[V] float32 (0 = front camera on −y, 90° on +x)."""
    elevation_deg: Tensor
    """[V] float32."""
    radius: Tensor
    """[V] float32."""
    times: Tensor
    """[T] float32 in [0,1]."""
    record: dict
    """``{"id", "caption", "shape", "colour", "motion", "split", ...}``."""


def shard_name(k: int) -> str:
    """Path of the ``k``-th shard relative to the dataset folder."""
    return f"{PACKED_FOLDER}/shard_{k:05d}.safetensors"


class ShardWriter:
    """Writes samples into shards of at most ``shard_size`` samples under ``root/packed``; a shard holds one
    split only (a new one starts when the split changes). :attr:`shards` lists what was written."""

    def __init__(self, root: str | Path, shard_size: int, times: np.ndarray):
        if shard_size < 1:
            raise ValueError(f"shard size must be >= 1, got {shard_size}")
        self.root, self.shard_size = Path(root), shard_size
        self.times = np.asarray(times, dtype=np.float32)
        self.shards: list[dict] = []
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]] = []

    def add(self, images: np.ndarray, azimuth_deg: np.ndarray, elevation_deg: np.ndarray, radius: np.ndarray, record: dict) -> None:
        """One sample: ``images`` uint8 [V,T,R,R,4], cameras [V], ``record`` with :data:`RECORD_KEYS`."""
        if images.dtype != np.uint8 or images.ndim != 5 or images.shape[-1] != 4 or images.shape[1] != len(self.times):
            raise ValueError(f"images must be uint8 [V,{len(self.times)},R,R,4], got {images.dtype} {list(images.shape)}")
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise ValueError(f"sample record lacks {', '.join(missing)}")
        if self._rows and (self._rows[0][4]["split"] != record["split"] or len(self._rows) == self.shard_size):
            self.flush()
        self._rows.append((images, azimuth_deg, elevation_deg, radius, record))

    def flush(self) -> None:
        """Write the pending samples (if any) as the next shard."""
        if not self._rows:
            return
        images, az, el, r, records = zip(*self._rows)
        tensors = {"images": torch.from_numpy(np.stack(images)), "times": torch.from_numpy(self.times)}
        for key, values in zip(CAMERA_KEYS, (az, el, r)):
            tensors[key] = torch.from_numpy(np.stack(values).astype(np.float32))
        name = shard_name(len(self.shards))
        with atomic_path(self.root / name) as tmp:
            # One metadata key: safetensors stores metadata in a hash map, whose order would vary between runs.
            save_file(tensors, str(tmp), metadata={"samples": json.dumps(list(records))})
        self.shards.append({"file": name, "n": len(records), "split": records[0]["split"]})
        self._rows = []


def write_dataset_json(root: str | Path, header: dict) -> None:
    """Write ``root/dataset.json`` (``header`` with at least :data:`REQUIRED_KEYS`; format and version set)."""
    header = {"format": FORMAT, "version": VERSION, **header}
    _check_header(header, Path(root) / DATASET_FILE)
    atomic_write_text(Path(root) / DATASET_FILE, json.dumps(header, indent=1) + "\n")


def _check_header(meta, path: Path) -> None:
    if not isinstance(meta, dict):
        raise DataError(f"{path}: not a JSON object")
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise DataError(f"{path}: version {meta.get('version')!r} is not supported (this motion4d reads version {VERSION})")
    for key, kind in REQUIRED_KEYS.items():
        if key not in meta:
            raise DataError(f"{path}: missing key {key!r}")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise DataError(f"{path}: {key!r} has the wrong type ({type(meta[key]).__name__})")
    for i, s in enumerate(meta["shards"]):
        if not isinstance(s, dict) or not isinstance(s.get("file"), str) or not isinstance(s.get("n"), int) or s["n"] < 1:
            raise DataError(f"{path}: shards[{i}] must be {{'file': str, 'n': int >= 1}}")
    if sum(s["n"] for s in meta["shards"]) != meta["n"]:
        raise DataError(f"{path}: the shards hold {sum(s['n'] for s in meta['shards'])} samples but n is {meta['n']}")


class SynthShards(torch.utils.data.Dataset):
    """A packed dataset folder (module docstring), optionally only one ``split`` ("train" / "held_out").

    ``ds[i]`` reads one :class:`SynthSample` (memory-mapped, one sample's bytes); :meth:`iter_shards` streams
    whole shards. Opening reads ``dataset.json`` and every shard's header (not its images) and checks them.
    Picklable (e.g. for ``DataLoader`` workers).
    """

    def __init__(self, root: str | Path, *, split: str | None = None):
        self.root = Path(root)
        path = self.root / DATASET_FILE
        if not path.is_file():
            raise DataError(f"{path}: no such file (is {self.root} a motion4d synth dataset?)")
        try:
            self.meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: not valid JSON ({e})") from None
        _check_header(self.meta, path)
        if split not in (None, "train", "held_out"):
            raise ValueError(f"split must be 'train', 'held_out' or None, got {split!r}")
        self.split = split
        self.records: list[dict] = []
        self._where: list[tuple[int, int]] = []
        for k, entry in enumerate(self.meta["shards"]):
            for j, rec in enumerate(self._read_records(k, entry)):
                if split is None or rec["split"] == split:
                    self.records.append(rec)
                    self._where.append((k, j))
        self._handles: dict[int, object] = {}

    def _shard_path(self, k: int) -> Path:
        return self.root / self.meta["shards"][k]["file"]

    def _read_records(self, k: int, entry: dict) -> list[dict]:
        path = self._shard_path(k)
        if not path.is_file():
            raise DataError(f"{path}: no such shard (listed in {self.root / DATASET_FILE})")
        m = self.meta
        want = {"images": [entry["n"], m["views_per_sample"], m["frames"], m["res"], m["res"], 4], "times": [m["frames"]],
                **{key: [entry["n"], m["views_per_sample"]] for key in CAMERA_KEYS}}  # fmt: skip
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                for key, shape in want.items():
                    if key not in f.keys():
                        raise DataError(f"{path}: no tensor {key!r}")
                    got = list(f.get_slice(key).get_shape())
                    if got != shape:
                        raise DataError(f"{path}: {key!r} has shape {got}, expected {shape} from {DATASET_FILE}")
                    dtype = f.get_slice(key).get_dtype()
                    if dtype != ("U8" if key == "images" else "F32"):
                        raise DataError(f"{path}: {key!r} has dtype {dtype}")
        except (SafetensorError, OSError) as e:
            raise DataError(f"{path}: not a readable safetensors shard ({e})") from None
        try:
            records = json.loads(meta["samples"])
        except (KeyError, json.JSONDecodeError):
            raise DataError(f"{path}: no valid 'samples' metadata (a JSON list of sample records)") from None
        if not isinstance(records, list) or len(records) != entry["n"]:
            raise DataError(f"{path}: 'samples' must list {entry['n']} records")
        for rec in records:
            if not isinstance(rec, dict) or any(key not in rec for key in RECORD_KEYS):
                raise DataError(f"{path}: a sample record lacks one of {', '.join(RECORD_KEYS)}")
        return records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> SynthSample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        k, j = self._where[i]
        if k not in self._handles:
            self._handles[k] = safe_open(str(self._shard_path(k)), framework="pt")
        f = self._handles[k]
        cams = [f.get_slice(key)[j] for key in CAMERA_KEYS]
        return SynthSample(f.get_slice("images")[j], *cams, f.get_tensor("times"), self.records[i])

    def iter_shards(self) -> Iterator[tuple[dict[str, Tensor], list[dict]]]:
        """Per shard (in order): its tensors (module docstring) and its records, only the rows of
        :attr:`split` when one was chosen (a shard without any is skipped)."""
        for k in range(len(self.meta["shards"])):
            rows = [j for kk, j in self._where if kk == k]
            if not rows:
                continue
            with safe_open(str(self._shard_path(k)), framework="pt") as f:
                tensors = {key: f.get_tensor(key) for key in f.keys()}
                records = json.loads(f.metadata()["samples"])
            if len(rows) != len(records):
                idx = torch.tensor(rows)
                tensors = {key: (v if key == "times" else v[idx]) for key, v in tensors.items()}
                records = [records[j] for j in rows]
            yield tensors, records

    def __iter__(self) -> Iterator[SynthSample]:
        for tensors, records in self.iter_shards():
            for j, rec in enumerate(records):
                yield SynthSample(tensors["images"][j], *(tensors[key][j] for key in CAMERA_KEYS), tensors["times"], rec)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}
