"""The priors layer: grid attention groupings, the multi-view video transformer, sampling, the text encoder."""

import json
from dataclasses import replace

import pytest
import torch

from motion4d.errors import DataError
from motion4d.priors.attention import FULL, GridWindowAttention, attention, cell_windows, fitted_extent
from motion4d.priors.conditioning import Conditioning, Denoiser, reference_mask
from motion4d.priors.grid import contact_sheet, grid_to_rgba, rgba_to_grid
from motion4d.priors.mvvideo import MultiViewVideoTransformer, layer_windows, load_denoiser
from motion4d.priors.sampling import GuidanceScales, guidance_terms, sample_grid

GRIDS = [(4, 8), (2, 4), (3, 5), (1, 1), (6, 8)]
WINDOWS = [(1, 1), (1, FULL), (FULL, 1), (2, 2), (2, 4), (4, 2), (3, 3)]
SHIFTS = [(0, 0), (1, 2), (5, 7)]


def tiny_model(**kw) -> MultiViewVideoTransformer:
    torch.manual_seed(0)
    args = dict(patch_size=4, width=32, depth=4, heads=2, motion_tokens=2)
    return MultiViewVideoTransformer(**{**args, **kw})


def randomise(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Non-zero everywhere (the zero-initialised gates and output would hide differences)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def conditioning(b: int, v: int, t: int, *, seed: int = 0, reference: torch.Tensor | None = None, kind: str = "none") -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    mask = None if reference is None else reference_mask(kind, v, t).expand(b, v, t).clone()
    return Conditioning(
        text_tokens=torch.randn(b, 5, 384, generator=g), text_mask=torch.tensor([[True] * 5, [True] * 3 + [False] * 2][:b]),
        text_pooled=torch.randn(b, 384, generator=g), azimuth_deg=torch.rand(b, v, generator=g) * 360,
        elevation_deg=torch.rand(b, v, generator=g) * 40 - 5, radius=torch.full((b, v), 3.0),
        times=torch.linspace(0, 1, t).expand(b, t), motion_scale=torch.ones(b), reference=reference, reference_mask=mask,
    )  # fmt: skip


@pytest.mark.parametrize("views,frames", GRIDS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("shift", SHIFTS)
def test_windows_cover_the_grid_exactly_once_as_wrapped_blocks(views, frames, window, shift):
    idx = cell_windows(views, frames, window, shift)
    assert sorted(idx.flatten().tolist()) == list(range(views * frames))
    wv, wt = fitted_extent(views, window[0]), fitted_extent(frames, window[1])
    assert idx.shape == (views * frames // (wv * wt), wv * wt)
    for w in idx.tolist():  # each window is a block: a wrapped run of views × a wrapped run of frames
        v, t = {c // frames for c in w}, {c % frames for c in w}
        assert wrapped_run(v, views, wv) and wrapped_run(t, frames, wt)
        assert set(w) == {a * frames + b for a in v for b in t}


def wrapped_run(values: set[int], size: int, n: int) -> bool:
    return any({(s + a) % size for a in range(n)} == values for s in values)


def test_frame_view_and_spatial_windows():
    frame = cell_windows(4, 8, (1, FULL))
    assert frame.tolist() == [[v * 8 + t for t in range(8)] for v in range(4)]  # one view's frames each
    view = cell_windows(4, 8, (FULL, 1))
    assert sorted(map(sorted, view.tolist())) == [sorted(v * 8 + t for v in range(4)) for t in range(8)]
    assert cell_windows(4, 8, (1, 1)).shape == (32, 1)


def test_klotski_shifts_wrap_around_both_axes():
    windows = [set(w) for w in cell_windows(4, 8, (2, 2), (1, 1)).tolist()]
    assert {3 * 8 + 7, 0 * 8 + 7, 3 * 8 + 0, 0 * 8 + 0} in windows  # views {3, 0} × frames {7, 0}
    assert fitted_extent(6, 4) == 3 and fitted_extent(5, 2) == 1 and fitted_extent(8, FULL) == 8


def test_klotski_layers_use_several_windows_and_slide():
    kinds = ["spatial", "frame", "view", "klotski"] * 3
    specs = [s for k, s in zip(kinds, layer_windows(kinds, [(2, 2), (2, 4)])) if k == "klotski"]
    assert [w for w, _ in specs] == [(2, 2), (2, 4), (2, 2)]
    assert [s for _, s in specs] == [(0, 0), (1, 2), (2, 2)]
    # two successive Klotski layers group differently: some cell pair is together in one and apart in the other
    a, b = (cell_windows(4, 8, w, s) for w, s in specs[:2])
    together = lambda idx: {frozenset((x, y)) for w in idx.tolist() for x in w for y in w if x != y}  # noqa: E731
    assert together(b) - together(a)
    with pytest.raises(ValueError, match="layer kind"):
        layer_windows(["diagonal"], [(2, 2)])


def reference_window_attention(mod: GridWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Loop over windows and samples, attention by hand in float64 (the twin of the batched module)."""
    b, v, t, n, d = x.shape
    out = torch.zeros_like(x, dtype=torch.float64)
    at = mod.attn
    h = at.heads
    for w in cell_windows(v, t, mod.window, mod.shift).tolist():
        for i in range(b):
            cells = x[i].reshape(v * t, n, d)[w].reshape(-1, d).double()
            q, k, val = (cells @ at.qkv.weight.double().T + at.qkv.bias.double()).chunk(3, -1)
            heads = []
            for j in range(h):
                s = slice(j * d // h, (j + 1) * d // h)
                a = torch.softmax(q[:, s] @ k[:, s].T / (d // h) ** 0.5, -1)
                heads.append(a @ val[:, s])
            o = torch.cat(heads, -1) @ at.out.weight.double().T + at.out.bias.double()
            for c, rows in zip(w, o.view(len(w), n, d)):
                out[i, c // t, c % t] = rows
    return out


@pytest.mark.parametrize("window,shift", [((1, 1), (0, 0)), ((1, FULL), (0, 0)), ((FULL, 1), (0, 0)), ((2, 2), (1, 1)), ((2, 4), (1, 3))])
def test_grid_attention_matches_its_reference_and_stays_in_its_windows(window, shift):
    torch.manual_seed(0)
    mod = GridWindowAttention(16, 2, window, shift)
    x = torch.randn(2, 4, 8, 3, 16)
    y = mod(x)
    assert torch.allclose(y.double(), reference_window_attention(mod, x), atol=1e-5)
    idx = cell_windows(4, 8, window, shift)
    first = set(idx[0].tolist())
    outside = next(c for c in range(32) if c not in first)
    x2 = x.clone()
    x2[:, outside // 8, outside % 8] += 1.0
    y2 = mod(x2)
    for c in first:
        assert torch.allclose(y2[:, c // 8, c % 8], y[:, c // 8, c % 8], atol=1e-6)
    assert not torch.allclose(y2[:, outside // 8, outside % 8], y[:, outside // 8, outside % 8])


def test_sdpa_attention_masks_keys():
    q, k, v = torch.randn(1, 3, 8), torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    mask = torch.tensor([[True, True, False, False]])
    assert torch.allclose(attention(q, k, v, 2, mask), attention(q, k[:, :2], v[:, :2], 2), atol=1e-6)


@pytest.mark.parametrize("v,t,h,w", [(4, 8, 16, 16), (2, 3, 8, 12), (1, 1, 4, 4), (6, 4, 16, 8)])
def test_model_output_shape_on_any_grid(v, t, h, w):
    model = randomise(tiny_model())
    assert isinstance(model, Denoiser) and model.prediction_type == "sample"
    x = torch.randn(2, v, t, 4, h, w)
    out = model(x, torch.tensor([3, 900]), conditioning(2, v, t))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_model_refuses_mismatched_inputs():
    model = tiny_model()
    x = torch.randn(2, 4, 8, 4, 16, 16)
    with pytest.raises(ValueError, match="azimuth_deg"):
        model(x, torch.tensor([1, 2]), conditioning(2, 3, 8))
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(2, 4, 8, 4, 18, 16), torch.tensor([1, 2]), conditioning(2, 4, 8))
    with pytest.raises(ValueError, match="layer_kinds"):
        MultiViewVideoTransformer(depth=2, layer_kinds=["frame"])


def test_model_sees_every_condition():
    model = randomise(tiny_model())
    x = torch.randn(2, 2, 4, 4, 8, 8)
    ref = torch.randn_like(x)
    cond = conditioning(2, 2, 4, reference=ref, kind="video")
    base = model(x, torch.tensor([500, 500]), cond)
    variants = {
        "text": cond.dropped(text=True),
        "motion": replace(cond, motion_scale=torch.full((2,), 2.0)),
        "camera": replace(cond, azimuth_deg=cond.azimuth_deg + 90),
        "reference": cond.dropped(reference=True),
        "times": replace(cond, times=cond.times * 0.5),
    }
    for name, c in variants.items():
        assert not torch.allclose(model(x, torch.tensor([500, 500]), c), base, atol=1e-4), name


def test_save_pretrained_from_pretrained_gives_identical_outputs(tmp_path):
    model = randomise(tiny_model(layer_kinds=["klotski", "frame", "klotski", "view"], klotski_windows=[[2, 2], [1, 2]]))
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    loaded = load_denoiser(tmp_path / "m")
    assert loaded.config.layer_kinds == ["klotski", "frame", "klotski", "view"]
    x = torch.randn(2, 4, 8, 4, 8, 8)
    cond = conditioning(2, 4, 8)
    assert torch.equal(loaded(x, torch.tensor([7, 70]), cond), model(x, torch.tensor([7, 70]), cond))


def test_a_folder_that_is_not_a_model_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a prior model folder"):
        load_denoiser(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(DataError, match="UNet2DModel"):
        load_denoiser(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="config.json"):
        load_denoiser(tmp_path)
    tiny_model().save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(DataError, match=str(tmp_path / "m")):
        load_denoiser(tmp_path / "m")


def test_conditioning_cat_and_dropping():
    ref = torch.randn(2, 2, 3, 4, 4, 4)
    a = conditioning(2, 2, 3, reference=ref, kind="static")
    b = replace(a, text_tokens=a.text_tokens[:, :2], text_mask=a.text_mask[:, :2])
    both = Conditioning.cat([a, b])
    assert both.text_tokens.shape == (4, 5, 384) and not both.text_mask[2:, 2:].any()
    d = a.dropped(text=torch.tensor([True, False]), reference=True, motion=torch.tensor([False, True]))
    assert not d.text_mask[0].any() and d.text_mask[1].equal(a.text_mask[1]) and d.text_pooled[0].abs().sum() == 0
    assert not d.reference_mask.any() and d.motion_scale.tolist() == [1.0, 0.0]
    x = torch.randn_like(ref)
    kept = a.apply_reference(x)
    assert torch.equal(kept[:, :, 0], ref[:, :, 0]) and torch.equal(kept[:, :, 1:], x[:, :, 1:])
    with pytest.raises(ValueError, match="reference kind"):
        reference_mask("audio", 2, 3)


def test_guidance_terms_compose_the_nested_scales():
    ref = torch.zeros(2, 2, 3, 4, 4, 4)
    with_ref = conditioning(2, 2, 3, reference=ref, kind="image")
    with_ref.motion_scale = torch.tensor([1.0, 2.0])
    terms = guidance_terms(with_ref, GuidanceScales(text=4.0, reference=1.5, motion=2.0))
    weights = torch.stack([w for w, _ in terms])  # [terms, B]; the motion scale multiplies the motion guidance
    assert weights[:, 0].tolist() == [-0.5, -2.5, 2.0, 2.0] and weights[:, 1].tolist() == [-0.5, -2.5, 0.0, 4.0]
    assert torch.allclose(weights.sum(0), torch.ones(2))
    plain = guidance_terms(conditioning(1, 2, 3), GuidanceScales(text=1.0, reference=1.0, motion=1.0))
    assert len(plain) == 1 and plain[0][0].tolist() == [1.0]
    no_ref = guidance_terms(conditioning(1, 2, 3), GuidanceScales(text=4.0, reference=1.5, motion=2.0))
    assert [w.item() for w, _ in no_ref] == [-3.0, 2.0, 2.0]
    assert not no_ref[0][1].text_mask.any() and no_ref[0][1].motion_scale.item() == 0.0
    still = conditioning(1, 2, 3)
    still.motion_scale = torch.zeros(1)  # motion scale 0: the static prediction, guided by the text alone
    assert [w.item() for w, _ in guidance_terms(still, GuidanceScales(text=4.0, motion=2.0))] == [-3.0, 4.0]


@pytest.mark.parametrize("scheduler", ["dpm++", "ddim", "ddpm"])
def test_two_step_sampling_keeps_reference_cells_and_is_seeded(scheduler):
    model = randomise(tiny_model())
    ref = torch.rand(2, 2, 3, 4, 8, 8) * 2 - 1
    cond = conditioning(2, 2, 3, reference=ref, kind="video")
    shape = (2, 3, 4, 8, 8)
    a = sample_grid(model, cond, shape, steps=2, scheduler=scheduler, seed=3, progress=False)
    b = sample_grid(model, cond, shape, steps=2, scheduler=scheduler, seed=3, progress=False)
    c = sample_grid(model, cond, shape, steps=2, scheduler=scheduler, seed=4, progress=False)
    assert a.shape == (2, *shape) and torch.isfinite(a).all()
    assert torch.equal(a[:, 0], ref[:, 0])  # view 0 of every frame: given
    assert torch.equal(a, b) and not torch.allclose(a[:, 1:], c[:, 1:])
    with pytest.raises(ValueError, match="scheduler"):
        sample_grid(model, cond, shape, steps=2, scheduler="euler-ish", progress=False)


def test_rgba_grid_round_trip_and_sheet():
    rgba = torch.randint(0, 256, (2, 3, 5, 4), dtype=torch.uint8)
    rgba[..., 3] = torch.where(rgba[..., 3] < 40, 0, rgba[..., 3])
    grid = rgba_to_grid(rgba)
    assert grid.shape == (2, 4, 3, 5) and grid.min() >= -1 and grid.max() <= 1
    back = grid_to_rgba(grid)
    a = rgba[..., 3:].float() / 255
    assert torch.allclose(back[..., 3:], a, atol=1e-6)
    visible = (a > 0.2).expand(-1, -1, -1, 3)
    assert torch.allclose(back[..., :3][visible], (rgba[..., :3].float() / 255)[visible], atol=1e-4)
    sheet = contact_sheet(back.reshape(1, 1, 2, 3, 5, 4))
    assert sheet.shape == (2 + 3 + 2, 2 * (5 + 2) + 2, 3) and sheet.dtype == torch.uint8


def test_conditioning_from_text_embeddings_broadcasts_cameras_and_times():
    from motion4d.priors.text_encoder import TextEmbeddings

    emb = TextEmbeddings.stack([(torch.randn(3, 384), torch.randn(384)), (torch.randn(5, 384), torch.randn(384))])
    cond = Conditioning.create(emb, torch.tensor([0.0, 90.0, 180.0]), torch.tensor([20.0, 20.0, 20.0]), 3.0,
                               torch.linspace(0, 1, 4), motion_scale=2.0, reference=torch.zeros(2, 3, 4, 4, 8, 8),
                               reference_mask=reference_mask("image", 3, 4))  # fmt: skip
    cond.check(torch.zeros(2, 3, 4, 4, 8, 8))
    assert cond.radius.shape == (2, 3) and cond.radius.eq(3.0).all() and cond.motion_scale.tolist() == [2.0, 2.0]
    assert cond.reference_mask.sum().item() == 2 and cond.text_mask.sum(1).tolist() == [3, 5]


def test_patch_rays_look_from_the_camera_through_the_patches():
    from motion4d.priors.embeddings import patch_rays

    az, el, r = torch.tensor([[0.0, 90.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 3.0]])
    rays = patch_rays(az, el, r, 40.0, 16, 16, 8)  # 2 x 2 patches
    assert rays.shape == (1, 2, 4, 6)
    d, m = rays[..., :3], rays[..., 3:]
    assert torch.allclose(d.norm(dim=-1), torch.ones(1, 2, 4), atol=1e-5)
    front = d[0, 0].mean(0)  # the front camera on -y looks along +y
    assert torch.allclose(front / front.norm(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)
    assert d[0, 0, 1, 0] > 0 > d[0, 0, 0, 0]  # its right-hand patches look towards +x ...
    assert d[0, 0, 0, 2] > 0 > d[0, 0, 2, 2]  # ... and its top ones up
    assert float(d[0, 1].mean(0)[0]) < -0.9  # the camera at azimuth 90 sits on +x and looks along -x
    o = torch.tensor([0.0, -3.0, 0.0])  # the moment o x d of the front rays
    assert torch.allclose(m[0, 0], torch.linalg.cross(o.expand(4, 3), d[0, 0], dim=-1), atol=1e-5)


def test_ray_embedding_starts_at_zero_and_then_sees_the_rays():
    plain = randomise(tiny_model())
    rays = tiny_model(ray_embedding=True)
    names = [k for k, _ in rays.named_parameters()]
    assert names[: len(list(plain.parameters()))] == [k for k, _ in plain.named_parameters()]  # grafted last
    missing, _ = rays.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("ray_embed.") for k in missing)
    x, t, cond = torch.randn(2, 2, 3, 4, 8, 8), torch.tensor([10, 900]), conditioning(2, 2, 3)
    assert torch.allclose(plain(x, t, cond), rays(x, t, cond))  # zero-initialised: the same model
    randomise(rays.ray_embed, seed=5)
    assert not torch.allclose(plain(x, t, cond), rays(x, t, cond), atol=1e-4)
