import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_static_data(tmp_path_factory):
    """A static Blender-format dataset: 3 training views, 1 test view, 8×8 pixels."""
    from motion4d.data.synthetic import make_demo_scene

    return make_demo_scene(tmp_path_factory.mktemp("static") / "data", n_train=3, n_test=1, size=8)


@pytest.fixture(scope="session")
def tiny_dynamic_data(tmp_path_factory):
    """A dynamic D-NeRF-format dataset: 2 training views, 1 test view, 3 frames, 12×12 pixels."""
    from motion4d.data.synthetic import make_dynamic_demo_scene

    return make_dynamic_demo_scene(tmp_path_factory.mktemp("dyn") / "data", n_train=2, n_test=1, n_frames=3, size=12)


@pytest.fixture
def fake_kind(monkeypatch):
    """Model kind "fake": the stand-in 4D model of ``fake4d.py``, registered for this test."""
    from motion4d.gaussians import registry

    entry = registry.ModelEntry("fake", "fake4d.LinearMotionGaussians", "fake4d:LinearMotionGaussians", reconstruct=True)
    monkeypatch.setitem(registry.MODELS, entry.format, entry)
