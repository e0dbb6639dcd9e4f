"""Training the prior: batches, loss, checkpoint, and train_prior end to end on a tiny synthetic dataset."""

import json
from dataclasses import replace

import pytest
import torch
from diffusers import DDPMScheduler

from motion4d.data.synth_packed import SynthShards
from motion4d.errors import DataError
from motion4d.pipelines.dataset_synth import SynthConfig, dataset_synth
from motion4d.pipelines.train_prior import (
    PRESETS, PriorTrainConfig, checkpoint_model, learning_rate, train_prior,
)  # fmt: skip
from motion4d.priors.checkpoint import load_training_state, save_training_state
from motion4d.priors.mvvideo import MultiViewVideoTransformer, load_denoiser
from motion4d.priors.text_encoder import TextEncoder
from motion4d.priors.training import EMA, BatchRecipe, diffusion_loss, draw_timesteps, frame_indices, make_batch, pick_views

TINY_DATA = SynthConfig(res=16, frames=4, views_per_sample=3, supersample=1, held_out_samples=2, folders=0, shard_size=4)
"""A real packed dataset, small enough to render in a second or two."""


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps one AcceleratorState per process; a test with another mixed precision needs a new one."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    dataset_synth(root, n=6, seed=0, config=TINY_DATA, progress=False)
    return root


@pytest.fixture(scope="module")
def text():
    return TextEncoder.from_pretrained()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "run"
    return train_prior(data, run, PRESETS["tiny"], progress=False)


def test_view_and_frame_choice():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        v = pick_views(8, 4, 1.0, g)
        assert v[0] == 0 and len(set(v.tolist())) == 4
    firsts = {int(pick_views(8, 4, 0.0, g)[0]) for _ in range(60)}
    assert len(firsts) > 3
    assert frame_indices(8, 4).tolist() == [0, 2, 5, 7] and frame_indices(8, 8).tolist() == list(range(8))
    with pytest.raises(ValueError, match="views"):
        pick_views(3, 4, 0.5, g)


def test_batches_mix_reference_kinds_and_static_clips(data, text):
    ds = SynthShards(data, split="train")
    recipe = BatchRecipe(views=2, frames=4, resolution=8, reference_probs=(0.25, 0.25, 0.25, 0.25), p_drop_text=0.5, p_static=0.5)
    samples = [ds[i % len(ds)] for i in range(32)]
    x0, cond = make_batch(samples, text, recipe, torch.Generator().manual_seed(1))
    assert x0.shape == (32, 2, 4, 4, 8, 8) and x0.min() >= -1 and x0.max() <= 1
    cond.check(x0)
    counts = cond.reference_mask.flatten(1).sum(1)
    assert set(counts.tolist()) == {0, 1, 2, 4}  # none, image, static (2 views of frame 0), video (4 frames of view 0)
    static = cond.motion_scale == 0
    assert 0 < static.sum() < 32
    amplitudes = torch.tensor([x.record["amplitude"] for x in samples])  # motion scale = the sample's amplitude
    assert torch.equal(cond.motion_scale[~static], amplitudes[~static]) and amplitudes.std() > 0
    assert torch.equal(x0[static][:, :, 1:], x0[static][:, :, :1].expand_as(x0[static][:, :, 1:]))
    no_text = ~cond.text_mask.any(1)
    assert 0 < no_text.sum() < 32 and cond.text_pooled[no_text].abs().sum() == 0
    assert torch.equal(cond.reference, x0)


def test_loss_ignores_the_given_cells(data, text):
    ds = SynthShards(data, split="train")
    model = MultiViewVideoTransformer(patch_size=4, width=32, depth=2, heads=2, motion_tokens=2)
    sched = DDPMScheduler.from_config(model.scheduler_config)
    x0, cond = make_batch([ds[0], ds[1]], text, BatchRecipe(views=2, frames=4, resolution=16, reference_probs=(0, 0, 1, 0)),
                          torch.Generator())  # fmt: skip
    loss = diffusion_loss(model, sched, x0, cond, torch.Generator().manual_seed(0))

    class Shifted:  # same predictions except on the given cells (view 0), which are moved far off
        prediction_type, scheduler_config = model.prediction_type, model.scheduler_config

        def __call__(self, x, t, c):
            out = model(x, t, c)
            return out + 100.0 * c.given(x)[..., None, None, None]

    shifted = diffusion_loss(Shifted(), sched, x0, cond, torch.Generator().manual_seed(0))
    assert float(shifted.detach()) == pytest.approx(float(loss.detach()))
    assert float(loss) > 0


def test_high_noise_fraction_moves_timesteps_to_the_noisy_end():
    uniform = draw_timesteps(20000, 1000, torch.Generator().manual_seed(0))
    same = draw_timesteps(20000, 1000, torch.Generator().manual_seed(0), high_noise_fraction=0.0)
    assert torch.equal(uniform, same)  # fraction 0 draws exactly as before (old runs resume the same)
    biased = draw_timesteps(20000, 1000, torch.Generator().manual_seed(0), high_noise_fraction=0.5, high_noise_span=0.1)
    assert int(uniform.min()) >= 0 and int(biased.max()) <= 999 and int(biased.min()) >= 0
    top = lambda t: float((t >= 900).float().mean())  # noqa: E731
    assert top(uniform) == pytest.approx(0.1, abs=0.01) and top(biased) == pytest.approx(0.55, abs=0.02)


def test_checkpoint_round_trip_and_damage(tmp_path):
    model = MultiViewVideoTransformer(patch_size=4, width=32, depth=2, heads=2, motion_tokens=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(1, 1, 1, 4, 4, 4), torch.tensor([1]), _cond()).square().sum().backward()
    opt.step()
    ema = EMA(model, 0.9)
    path = tmp_path / "checkpoint.safetensors"
    save_training_state(path, 7, model, ema.shadow, opt, {"config": {"a": 1}})
    state = load_training_state(path)
    assert state.step == 7 and state.extra == {"config": {"a": 1}}
    for k, p in model.named_parameters():
        assert torch.allclose(state.model[k], p.detach(), atol=1e-3, rtol=1e-3)
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt2.load_state_dict(state.optim)
    assert int(opt2.state_dict()["state"][0]["step"]) == 1
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="checkpoint.safetensors"):
        load_training_state(path)
    (tmp_path / "other.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(DataError, match="other.safetensors"):
        load_training_state(tmp_path / "other.safetensors")


def _cond():
    from motion4d.priors.conditioning import Conditioning

    return Conditioning(torch.zeros(1, 1, 384), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 384), torch.zeros(1, 1),
                        torch.zeros(1, 1), torch.full((1, 1), 3.0), torch.zeros(1, 1), torch.ones(1))  # fmt: skip


def test_two_step_training_run_writes_its_run_folder(trained):
    run = trained.run
    assert trained.steps == 2 and trained.loss > 0
    assert {p.name for p in run.iterdir()} >= {"config.json", "checkpoint.safetensors", "losses.jsonl", "samples", "model"}
    saved = json.loads((run / "config.json").read_text())
    assert saved["pipeline"] == "train-prior" and PriorTrainConfig.from_dict(saved["config"]) == PRESETS["tiny"]
    assert [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()] == [1, 2]
    assert [p.name for p in (run / "samples").iterdir()] == ["step_000002.png"]
    model = load_denoiser(trained.model_dir)
    assert model.dtype == torch.float32 and model.config.width == 32
    live = checkpoint_model(run)  # the checkpoint's EMA weights: the same fp16 values as the final model's
    assert all(torch.equal(a, b) for a, b in zip(live.state_dict().values(), model.state_dict().values()))


def test_export_checkpoint_ships_the_ema_weights(trained, tmp_path):
    from motion4d.pipelines.train_prior import export_checkpoint

    folder = export_checkpoint(trained.run, tmp_path / "shipped")
    info = json.loads((folder / "training.json").read_text())
    assert info["step"] == 2 and info["steps"] == PRESETS["tiny"].steps and info["loss"] > 0
    exported, live = load_denoiser(folder), checkpoint_model(trained.run)
    assert all(torch.equal(a, b.half().float()) for a, b in zip(exported.state_dict().values(), live.state_dict().values()))
    assert exported.config.sample_size == PRESETS["tiny"].recipe.resolution and exported.config.fov_deg == TINY_DATA.fov_deg
    export_checkpoint(trained.run, folder)  # replaced as a whole
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors", "training.json"]


def test_resume_continues_and_refuses_other_models(trained, data, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(trained.run, run)
    with pytest.raises(DataError, match="resume"):
        train_prior(data, run, PRESETS["tiny"], progress=False)
    with pytest.raises(ValueError, match="width"):
        train_prior(data, run, replace(PRESETS["tiny"], width=64, heads=2), resume=True, progress=False)
    more = train_prior(data, run, replace(PRESETS["tiny"], steps=3, high_noise_fraction=0.5), resume=True, progress=False)
    assert more.steps == 3 and json.loads((run / "config.json").read_text())["config"]["high_noise_fraction"] == 0.5 and load_training_state(run / "checkpoint.safetensors").step == 3
    assert [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()] == [1, 2, 3]
    before = checkpoint_model(run)
    grafted = train_prior(data, run, replace(PRESETS["tiny"], steps=4, ray_embedding=True), resume=True, progress=False)
    state = load_training_state(run / "checkpoint.safetensors")
    assert grafted.steps == 4 and state.step == 4 and any(k.startswith("ray_embed.") for k in state.model)
    assert checkpoint_model(run).ray_embed is not None and before.ray_embed is None
    # A fine-tune: the same run resumed on other data (same split, wider amplitudes), the rate raised again.
    wide = dataset_synth(tmp_path / "wide", n=4, seed=1, config=replace(TINY_DATA, held_out_seed=0, amplitude_range=(0.5, 2.0)),
                         progress=False).root  # fmt: skip
    tuned = replace(PRESETS["tiny"], steps=5, ray_embedding=True, lr=2e-3, ema_decay=0.9)
    assert train_prior(wide, run, tuned, resume=True, progress=False).steps == 5
    saved = json.loads((run / "config.json").read_text())
    assert (saved["config"]["lr"], saved["config"]["ema_decay"], saved["inputs"]["data"]) == (2e-3, 0.9, str(wide.resolve()))
    (run / "checkpoint.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="checkpoint.safetensors"):
        train_prior(data, run, replace(tuned, steps=6), resume=True, progress=False)


def test_config_presets_and_schedule():
    assert set(PRESETS) == {"default", "tiny"}
    for cfg in PRESETS.values():
        assert PriorTrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    cfg = PriorTrainConfig(steps=100, warmup_steps=10, lr=1e-3, lr_final_fraction=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(1e-4) and learning_rate(cfg, 9) == pytest.approx(1e-3)
    assert learning_rate(cfg, 99) == pytest.approx(1e-4, rel=0.01)
    with pytest.raises(ValueError, match="unknown .*wdth"):
        PriorTrainConfig.from_dict({"wdth": 3})
    with pytest.raises(ValueError, match="mixed_precision"):
        PriorTrainConfig.from_dict({"mixed_precision": "fp8"})


def test_the_default_preset_trains_two_steps(tmp_path):
    data = tmp_path / "data"
    dataset_synth(data, n=2, seed=1, config=replace(TINY_DATA, frames=8, views_per_sample=4), progress=False)
    cfg = replace(PRESETS["default"], steps=2, batch_size=2, sample_steps=1, checkpoint_every=2)  # the shipped architecture
    result = train_prior(data, tmp_path / "run", cfg, progress=False)
    model = load_denoiser(result.model_dir)
    assert model.config.width == cfg.width and model.config.depth == cfg.depth and model.config.patch_size == cfg.patch_size
    assert (result.model_dir / "diffusion_pytorch_model.safetensors").stat().st_size < 20e6


def test_train_prior_cli_runs_resumes_and_names_a_corrupt_checkpoint(data, tmp_path, capsys):
    from motion4d.cli import main

    run = tmp_path / "run"
    assert main(["train-prior", str(data), "--out", str(run), "--preset", "tiny"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert main(["train-prior", "--out", str(run), "--resume", "--steps", "3"]) == 0  # the data and config come from the run
    assert load_training_state(run / "checkpoint.safetensors").step == 3
    (run / "checkpoint.safetensors").write_bytes(b"\0" * 64)
    capsys.readouterr()
    assert main(["train-prior", "--out", str(run), "--resume", "--steps", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith("error:")] == [err[-1]] and "checkpoint.safetensors" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert main(["train-prior", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2"), "--preset", "tiny"]) == 2
    assert "nowhere" in capsys.readouterr().err
