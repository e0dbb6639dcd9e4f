import torch

from motion4d.render.cameras import camera_centers, project_points, spherical_viewmats


def test_spherical_front_camera_is_on_minus_y_and_sees_plus_x_on_its_right():
    v = spherical_viewmats(torch.tensor([0.0, 90.0, 0.0]), torch.tensor([0.0, 0.0, 90.0 - 1e-3]), torch.tensor([2.0, 3.0, 1.0]))
    c = camera_centers(v)
    assert torch.allclose(c[0], torch.tensor([0.0, -2.0, 0.0]), atol=1e-5)
    assert torch.allclose(c[1], torch.tensor([3.0, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(c[2], torch.tensor([0.0, 0.0, 1.0]), atol=1e-4)
    K = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]])[None]
    uv, z = project_points(torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.5]]), v[:1], K)
    assert uv[0, 0, 0] > 32 and uv[0, 1, 1] < 32  # +x to the right, +z up in the front view
    assert (z > 0).all()
