"""``dataset synth``: the captioned synthetic multi-view video dataset (vocabulary, captions, held-out
combinations, motions as seen by the cameras, the packed form and the reconstructable sample folders)."""

import dataclasses
import json
import math
import pickle
import re

import numpy as np
import pytest

from motion4d.errors import DataError
from motion4d.data.synth_motion import MotionSpec, animate
from motion4d.data.synth_packed import DATASET_FILE, SynthShards
from motion4d.data.synth_shapes import PatternSpec, shape_mesh
from motion4d.data.synth_specs import ALL_COMBINATIONS, choose_held_out, plan_samples
from motion4d.data.synth_vocab import (
    COLOUR_WORDS, COLOURS, HELD_OUT_TEMPLATES, MOTION_WORDS, MOTIONS, SHAPE_WORDS, SHAPES, TRAIN_TEMPLATES,
    fill_template, make_caption, motion_slot, parse_caption, read_captions_file,
)  # fmt: skip
from motion4d.data.transforms import load_transforms
from motion4d.pipelines.dataset_synth import SynthConfig, dataset_synth, render_views

TINY = SynthConfig(res=16, frames=3, views_per_sample=5, supersample=1, held_out_samples=2, folders=1, shard_size=2)
"""Small enough to render a few samples in a second."""


def test_vocabulary_is_the_contract():
    assert SHAPES == ("cube", "sphere", "cone", "cylinder", "torus", "pyramid")
    assert COLOURS == ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
    assert MOTIONS == ("bouncing", "jumping", "sliding", "orbiting", "spinning", "swaying", "pulsing", "bending")
    assert len(TRAIN_TEMPLATES) >= 10 and len(HELD_OUT_TEMPLATES) >= 3
    assert not set(TRAIN_TEMPLATES) & set(HELD_OUT_TEMPLATES)
    assert {"box", "block"} <= set(SHAPE_WORDS["cube"]) and "ball" in SHAPE_WORDS["sphere"]
    assert all(len(w) >= 2 for w in (*SHAPE_WORDS.values(), *COLOUR_WORDS.values()))


@pytest.mark.parametrize("template", TRAIN_TEMPLATES + HELD_OUT_TEMPLATES)
def test_every_template_and_synonym_parses_back(template):
    slot = motion_slot(template)
    shape_words = [(s, w) for s, ws in SHAPE_WORDS.items() for w in ws]
    colour_words = [(c, w) for c, ws in COLOUR_WORDS.items() for w in ws]
    motion_phrases = [(m, p) for m, forms in MOTION_WORDS.items() for p in forms[slot]]
    n = max(len(shape_words), len(colour_words), len(motion_phrases))
    for i in range(n):
        (s, sw), (c, cw), (m, mp) = shape_words[i % len(shape_words)], colour_words[i * 7 % len(colour_words)], motion_phrases[i % len(motion_phrases)]
        text = fill_template(template, sw, cw, mp)
        assert parse_caption(text) == (s, c, m), text


def test_the_issue_examples_and_phrase_precedence():
    assert parse_caption("a red cube bouncing") == ("cube", "red", "bouncing")
    assert parse_caption("a bouncing red box") == ("cube", "red", "bouncing")
    assert parse_caption("The red cube jumps up and down.") == ("cube", "red", "bouncing")
    assert parse_caption("the red cube jumps") == ("cube", "red", "jumping")
    assert parse_caption("An orange orb, orbiting!") == ("sphere", "orange", "orbiting")
    captions = [make_caption("sphere", "orange", "orbiting", np.random.default_rng(i)) for i in range(40)]
    assert not any(re.search(r"\ba [aeiou]", c) for c in captions) and any(" an " in f" {c}" for c in captions)


@pytest.mark.parametrize(
    "text, word",
    [("a red cube flying", "flying"), ("a red cube and a blue ball spinning", "more than one shape"), ("a red cube", "no motion"), ("a cube spins", "no colour")],
)
def test_captions_outside_the_vocabulary_are_errors(text, word):
    with pytest.raises(DataError, match=word):
        parse_caption(text)


def test_unknown_word_in_a_captions_file_names_the_file_line_and_word(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("a red cube bouncing\n\nthe blue ball glows\n")
    with pytest.raises(DataError) as err:
        dataset_synth(tmp_path / "out", captions=path, config=TINY, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and ":3:" in msg and "'glows'" in msg
    assert not (tmp_path / "out").exists()
    path.write_text("a red cube bouncing\nthe blue ball spins in place\n")
    assert [c for _, c in read_captions_file(path)] == [("cube", "red", "bouncing"), ("sphere", "blue", "spinning")]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_held_out_combinations_keep_every_attribute_and_pair_in_training(seed):
    held = choose_held_out(seed, 0.1)
    assert len(held) == round(0.1 * 384) and len(set(held)) == len(held)
    train = [c for c in ALL_COMBINATIONS if c not in set(held)]
    for axis, names in enumerate((SHAPES, COLOURS, MOTIONS)):
        assert {c[axis] for c in train} == set(names)
    pairs = lambda cs, a, b: {(c[a], c[b]) for c in cs}  # noqa: E731
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert pairs(held, a, b) <= pairs(train, a, b)
    assert held != choose_held_out(seed + 1, 0.1)
    specs = plan_samples(500, seed, held, TINY.cameras, held_out_samples=40)
    assert all((s.shape, s.colour, s.motion) not in set(held) for s in specs if s.split == "train")
    assert {(s.shape, s.colour, s.motion) for s in specs if s.split == "held_out"} == set(held)
    assert all(parse_caption(s.caption) == (s.shape, s.colour, s.motion) == parse_caption(s.paraphrase) for s in specs)
    for s in specs:
        assert any(_matches(t, s.caption) for t in TRAIN_TEMPLATES) and not any(_matches(t, s.caption) for t in HELD_OUT_TEMPLATES), s.caption
        assert any(_matches(t, s.paraphrase) for t in HELD_OUT_TEMPLATES), s.paraphrase


def test_amplitude_range_and_held_out_seed(tmp_path):
    wide = plan_samples(200, 5, choose_held_out(5, 0.1), TINY.cameras, amplitude_range=(0.5, 2.0))
    k = np.array([s.motion_spec.amplitude for s in wide])
    assert k.min() >= 0.5 and k.max() <= 2.0 and k.min() < 0.7 and k.max() > 1.8
    assert [s.record()["amplitude"] for s in wide[:3]] == [round(x, 4) for x in k[:3]]
    default = np.array([s.motion_spec.amplitude for s in plan_samples(200, 5, [], TINY.cameras)])
    assert default.min() >= 0.85 and default.max() <= 1.15
    # A second dataset with its own seed keeps the first's held-out combinations when told their seed.
    config = dataclasses.replace(TINY, held_out_seed=3, amplitude_range=(0.5, 2.0), held_out_samples=1)
    meta = json.loads((dataset_synth(tmp_path / "d", 2, seed=9, config=config, progress=False).root / DATASET_FILE).read_text())
    assert meta["held_out_combinations"] == [list(c) for c in choose_held_out(3, 0.1)] != [list(c) for c in choose_held_out(9, 0.1)]
    assert (meta["seed"], meta["held_out_seed"], meta["amplitude_range"]) == (9, 3, [0.5, 2.0])
    with pytest.raises(ValueError, match="amplitude-range"):
        SynthConfig(amplitude_range=(2.0, 0.5))


def _matches(template, caption):
    """Whether ``caption`` is a filling of ``template``."""
    pattern = re.sub(r"\\\{\w+\\\}", "(.+)", re.escape(template))
    return re.fullmatch(re.sub(r"\ba\\ ", "an?\\ ", pattern), caption) is not None


def test_motions_stay_in_the_unit_sphere_and_bouncing_differs_from_jumping():
    t = np.linspace(0, 1, 33)
    for shape in SHAPES:
        rest = shape_mesh(shape, "red", PatternSpec("stripes", 0.0)).vertices
        for motion in MOTIONS:
            v = animate(rest, MotionSpec(motion, 1.15, 1.05, 25.0, 1.0), t)
            assert np.linalg.norm(v, axis=-1).max() < 0.98, (shape, motion)
    rest = shape_mesh("cube", "red", PatternSpec("stripes", 0.0)).vertices
    height = {m: animate(rest, MotionSpec(m), t)[..., 2].mean(1) for m in ("bouncing", "jumping")}
    peaks = {m: int(((h[1:-1] > h[:-2]) & (h[1:-1] > h[2:])).sum()) for m, h in height.items()}
    assert peaks == {"bouncing": 3, "jumping": 1}
    assert np.ptp(height["jumping"][t <= 0.2]) == 0 and np.ptp(height["jumping"][t >= 0.8]) == 0
    assert min(np.ptp(h) for h in height.values()) > 0.4


def _single(caption, **overrides):
    spec = plan_samples(None, 0, [], SynthConfig().cameras, captions=[(caption, parse_caption(caption))])[0]
    return dataclasses.replace(spec, **overrides)


def test_sliding_moves_right_in_the_front_view():
    spec = _single("a red cube sliding", motion_spec=MotionSpec("sliding"))
    config = SynthConfig(res=32, frames=5, supersample=1)
    alpha = render_views(spec, config, np.zeros(1, np.float32), np.full(1, 20.0, np.float32), np.full(1, 3.0, np.float32))[0, ..., 3] / 255.0
    xs = np.arange(32) + 0.5
    cx = (alpha.sum(1) * xs).sum(-1) / alpha.sum((1, 2))  # [T] alpha centroid column
    assert np.all(np.diff(cx) > 0) and cx[-1] - cx[0] > 8


def test_a_spin_changes_the_pattern_but_barely_the_silhouette():
    for shape in ("sphere", "cylinder"):
        spec = _single(f"a blue {shape} spinning", pattern=PatternSpec("stripes", 0.3), motion_spec=MotionSpec("spinning"))
        config = SynthConfig(res=48, frames=8, supersample=2)
        img = render_views(spec, config, np.zeros(1, np.float32), np.full(1, 20.0, np.float32), np.full(1, 3.0, np.float32))[0] / 255.0
        alpha, rgb = img[..., 3], img[..., :3]
        inside = (alpha[:-1] > 0.99) & (alpha[1:] > 0.99)
        silhouette_change = np.abs(np.diff(alpha, axis=0)).sum((1, 2)) / alpha[0].sum()
        pattern_change = np.abs(np.diff(rgb, axis=0)).sum(-1)[inside].mean()
        assert silhouette_change.max() < 0.03 and pattern_change > 0.08, (shape, silhouette_change.max(), pattern_change)


def test_palette_hues_are_what_the_captions_say():
    import colorsys

    spec = _single("a red ball pulsing")
    hues = {}
    for colour in COLOURS:
        img = render_views(dataclasses.replace(spec, colour=colour), SynthConfig(res=24, frames=1, supersample=1), np.zeros(1, np.float32),
                           np.full(1, 20.0, np.float32), np.full(1, 3.0, np.float32))[0, 0] / 255.0  # fmt: skip
        rgb = img[img[..., 3] > 0.99][:, :3].mean(0)
        hues[colour] = colorsys.rgb_to_hsv(*rgb)[0] * 360
    order = [hues[c] for c in COLOURS]
    assert hues["red"] < 15 or hues["red"] > 345
    assert all(b - a > 20 for a, b in zip(order[1:], order[2:])), hues


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    dataset_synth(root, 3, seed=3, config=TINY, progress=False)
    return root


def test_dataset_json_and_shards_follow_the_packed_format(dataset):
    meta = json.loads((dataset / DATASET_FILE).read_text())
    assert meta["format"] == "motion4d.synth" and meta["version"] == 1 and meta["n"] == 5 and meta["seed"] == 3
    assert (meta["res"], meta["frames"], meta["views_per_sample"]) == (16, 3, 5)
    assert [v["azimuth_deg"] for v in meta["eval_views"]] == [0, 90, 180, 270]
    assert meta["vocabulary"] == {"shapes": list(SHAPES), "colours": list(COLOURS), "motions": list(MOTIONS)}
    assert meta["templates"] == {"train": list(TRAIN_TEMPLATES), "held_out": list(HELD_OUT_TEMPLATES)}
    assert len(meta["held_out_combinations"]) == 38
    assert [(s["n"], s["split"]) for s in meta["shards"]] == [(2, "train"), (1, "train"), (2, "held_out")]
    ds = SynthShards(dataset)
    assert len(ds) == 5 and len(SynthShards(dataset, split="train")) == 3 and len(SynthShards(dataset, split="held_out")) == 2
    s = ds[4]
    assert s.images.shape == (5, 3, 16, 16, 4) and str(s.images.dtype) == "torch.uint8" and s.times.tolist() == [0.0, 0.5, 1.0]
    assert s.azimuth_deg[:4].tolist() == [0, 90, 180, 270] and s.elevation_deg[:4].tolist() == [20.0] * 4
    assert s.record["split"] == "held_out" and [s.record["shape"], s.record["colour"], s.record["motion"]] in meta["held_out_combinations"]
    streamed = list(SynthShards(dataset, split="held_out"))
    assert [x.record for x in streamed] == [ds[3].record, ds[4].record]
    assert (streamed[1].images == s.images).all() and int(s.images[..., 3].max()) == 255
    assert pickle.loads(pickle.dumps(ds))[0].record == ds[0].record


def test_packed_images_are_the_rendered_views(dataset):
    ds = SynthShards(dataset)
    spec = plan_samples(3, 3, choose_held_out(3, 0.1), TINY.cameras, held_out_samples=2)[1]
    assert spec.caption == ds[1].record["caption"]
    assert (render_views(spec, TINY, spec.azimuth_deg, spec.elevation_deg, spec.radius) == ds[1].images.numpy()).all()


def _same_files(a, b):
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_same_seed_same_bytes_other_seed_other_data(dataset, tmp_path):
    _same_files(dataset, dataset_synth(tmp_path / "again", 3, seed=3, config=TINY, progress=False).root)
    other = dataset_synth(tmp_path / "other", 3, seed=4, config=TINY, progress=False).root
    assert (other / "packed/shard_00000.safetensors").read_bytes() != (dataset / "packed/shard_00000.safetensors").read_bytes()
    with pytest.raises(DataError, match="already exists"):
        dataset_synth(other, 3, seed=4, config=TINY, progress=False)


@pytest.mark.slow
def test_workers_do_not_change_the_output(dataset, tmp_path):
    _same_files(dataset, dataset_synth(tmp_path / "again", 3, seed=3, config=TINY, workers=2, progress=False).root)


def test_sample_folders_load_as_multi_view_video(dataset):
    meta = json.loads((dataset / DATASET_FILE).read_text())
    assert sorted(meta["folders"]) == ["000000", "000003", "000004"]
    ds = SynthShards(dataset)
    for i, (sid, rel) in enumerate(sorted(meta["folders"].items())):
        train = load_transforms(dataset / rel, "train")
        test = load_transforms(dataset / rel, "test")
        assert len(train.images) == 5 * 3 and len(test.images) == 2 * 3 and train.width == 16
        assert sorted(set(train.times.tolist())) == [0.0, 0.5, 1.0] and sorted(set(train.views.tolist())) == list(range(5))
        header = json.loads((dataset / rel / "transforms_train.json").read_text())
        record = next(r.record for r in ds if r.record["id"] == sid)
        assert {k: header[k] for k in ("caption", "shape", "colour", "motion", "split")} == {k: record[k] for k in ("caption", "shape", "colour", "motion", "split")}
        assert train.alphas is not None and math.isclose(header["camera_angle_x"], math.radians(40.0))


def test_reconstruct_runs_on_a_sample_folder(tmp_path):
    from motion4d.optim.trainer4d import preset
    from motion4d.pipelines.reconstruct import reconstruct

    config = dataclasses.replace(TINY, res=32, frames=4, views_per_sample=6, held_out_samples=0, folders=1)
    root = dataset_synth(tmp_path / "data", 1, seed=0, config=config, progress=False).root
    report = reconstruct(root / "samples/000000", tmp_path / "run", preset("tiny", iters=4), video_frames=0)
    assert report.split == "test" and report.n_images == 2 * 4 and math.isfinite(report.psnr)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: (d / "packed/shard_00001.safetensors").unlink(), "no such shard"),
        (lambda d: (d / "packed/shard_00001.safetensors").write_bytes(b"\x10\x00garbage"), "shard_00001.safetensors: not a readable"),
        (lambda d: (d / DATASET_FILE).write_text("{"), "not valid JSON"),
        (lambda d: _edit(d, format="other"), "format is 'other'"),
        (lambda d: _edit(d, n=9), "n is 9"),
        (lambda d: _edit(d, res=32), "expected \\[2, 5, 3, 32, 32, 4\\]"),
        (lambda d: _edit(d, views_per_sample=None), "wrong type"),
    ],
)
def test_damaged_packed_data_is_a_one_line_error_naming_the_file(damage, match, dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    damage(copy)
    with pytest.raises(DataError, match=match) as err:
        SynthShards(copy)
    assert "\n" not in str(err.value) and str(copy) in str(err.value)


def _edit(root, **changes):
    meta = json.loads((root / DATASET_FILE).read_text())
    meta.update(changes)
    (root / DATASET_FILE).write_text(json.dumps(meta))
