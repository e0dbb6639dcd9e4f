"""``--viewer``: step observers, the viser live view of a fit, and a clean stop on Ctrl-C."""

import urllib.request

import pytest

from motion4d.cli import main
from motion4d.optim.checkpoint import checkpoint_path
from motion4d.optim.observers import notify, observing
from motion4d.optim.trainer4d import preset
from motion4d.pipelines.live_viewer import LiveViewer, free_port
from motion4d.pipelines.reconstruct import reconstruct


def test_observers_nest_and_unregister():
    seen = []
    with observing(lambda tr, step, loss: seen.append(("a", step))):
        with observing(lambda tr, step, loss: seen.append(("b", step))):
            notify(None, 1, 0.5)
        notify(None, 2, 0.5)
    notify(None, 3, 0.5)
    assert seen == [("a", 1), ("b", 1), ("a", 2)]


def test_live_viewer_serves_the_fit_on_localhost(tiny_dynamic_data, tmp_path):
    with LiveViewer(max_rate_hz=1000.0) as viewer, observing(viewer):
        assert viewer.host == "127.0.0.1"
        reconstruct(tiny_dynamic_data, tmp_path / "run", preset("tiny"), video_frames=0)
        page = urllib.request.urlopen(viewer.url, timeout=10).read()
    assert viewer.updates >= 10 and len(viewer.losses) == preset("tiny").iters
    assert b"<html" in page.lower()
    assert viewer._range[1] > viewer._range[0]  # the time slider spans the data's times
    with pytest.raises(OSError):
        urllib.request.urlopen(viewer.url, timeout=2)  # stopped with the run


def test_cli_viewer_flag_and_ctrl_c_writes_a_checkpoint(tiny_dynamic_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    port = free_port()
    assert main(["reconstruct", str(tiny_dynamic_data), "--out", str(run), "--preset", "tiny", "--video-frames", "0", "--viewer",
                 "--viewer-port", str(port)]) == 0  # fmt: skip

    def interrupt(trainer, step, loss):
        if step == 7:
            raise KeyboardInterrupt

    run2 = tmp_path / "run2"
    with observing(interrupt):
        assert main(["reconstruct", str(tiny_dynamic_data), "--out", str(run2), "--preset", "tiny", "--video-frames", "0"]) == 130
    assert [p.name for p in (run2 / "checkpoints").iterdir()] == [checkpoint_path(".", 7).name]
    assert main(["reconstruct", "--out", str(run2), "--resume", "--video-frames", "0"]) == 0
