"""Frame samplers: window sizes over training, coverage of every frame, rows inside the window."""

import pytest
import torch

from motion4d.optim.samplers import FrameIndex, FrameSampler, SamplerConfig


def _times(n_frames=12, n_views=3):
    return torch.linspace(0, 1, n_frames).repeat_interleave(n_views)  # row = frame * n_views + view


def test_frame_index_groups_rows_by_time():
    idx = FrameIndex(torch.tensor([0.5, 0.0, 0.5, 1.0]))
    assert idx.times.tolist() == [0.0, 0.5, 1.0]
    assert [r.tolist() for r in idx.rows_of_frame] == [[1], [0, 2], [3]]


def test_window_sizes_go_coarse_to_fine():
    s = FrameSampler(SamplerConfig(kind="sliding", window_fractions=(1.0, 0.5, 0.25), min_window=3), _times(12), batch_views=2)
    sizes = [s.window_size(step / 300) for step in range(300)]
    assert sizes[0] == 12 and sizes[150] == 6 and sizes[299] == 3
    assert all(a >= b for a, b in zip(sizes, sizes[1:]))  # never grows back
    assert sorted(set(sizes), reverse=True) == [12, 6, 3]


def test_sliding_windows_cover_every_frame_and_rows_stay_inside():
    times = _times(12)
    s = FrameSampler(SamplerConfig(kind="sliding", window_fractions=(0.25,), min_window=3, frames_per_step=2), times, batch_views=4)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for step in range(10):  # 12 - 3 + 1 = 10 positions: one full sweep
        sample = s.sample(step, step / 100, g)
        start, size = sample.window
        assert size == 3 and start == step
        frames = s.frames.frame_of_row[sample.rows]
        assert ((frames >= start) & (frames < start + size)).all()
        assert len(set(frames.tolist())) == 2  # distinct frames
        assert len(set(sample.rows.tolist())) == 4  # distinct cameras at each frame
        lo = s.frames.times[start]
        hi = s.frames.times[start + size - 1]
        assert sample.triple is not None and (sample.triple >= lo).all() and (sample.triple <= hi).all()
        seen.update(range(start, start + size))
    assert seen == set(range(12))


def test_uniform_sampler_draws_from_everywhere():
    s = FrameSampler(SamplerConfig(kind="uniform"), _times(12), batch_views=4)
    g = torch.Generator().manual_seed(0)
    rows = torch.cat([s.sample(step, step / 100, g).rows for step in range(60)])
    assert s.window_size(0.0) == 12
    assert set(s.frames.frame_of_row[rows].tolist()) == set(range(12))


def test_sampler_is_reproducible_from_the_generator_state():
    s = FrameSampler(SamplerConfig(kind="sliding"), _times(8), batch_views=3)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    a = [s.sample(k, k / 50, g).rows.tolist() for k in range(5)]
    g.set_state(state)
    assert a == [s.sample(k, k / 50, g).rows.tolist() for k in range(5)]


@pytest.mark.parametrize("bad", [SamplerConfig(kind="nope"), SamplerConfig(window_fractions=()), SamplerConfig(window_fractions=(1.5,))])
def test_bad_sampler_config_is_an_error(bad):
    with pytest.raises(ValueError):
        FrameSampler(bad, _times(4), batch_views=1)


def test_monocular_data_takes_more_frames_instead_of_repeating_an_image():
    s = FrameSampler(SamplerConfig(kind="sliding", frames_per_step=2), torch.linspace(0, 1, 20), batch_views=4)
    rows = s.sample(0, 0.0, torch.Generator().manual_seed(0)).rows
    assert len(set(rows.tolist())) == 4
