"""The generation oracle (motion4d.metrics.oracle): colour from hue votes, shape from silhouettes against
templates, motion from trajectories, and ``judge`` end to end, on tiny hand-made things with known answers."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from motion4d.data.mesh import linear_to_srgb
from motion4d.data.synth_motion import MotionSpec, animate
from motion4d.data.synth_shapes import PALETTE, SHADE, PatternSpec, shape_mesh
from motion4d.data.synth_vocab import COLOURS, SHAPES
from motion4d.gaussians import GaussianFrame, mean_knn_distance
from motion4d.metrics.oracle import STATIC, UNKNOWN, OracleConfig, judge, judge_views
from motion4d.metrics.oracle_colour import classify_colour, hue_and_chroma
from motion4d.metrics.oracle_motion import MotionConfig, classify_motion
from motion4d.metrics.oracle_shape import SilhouetteConfig, classify_shape, mesh_silhouette, normalise_silhouettes, render_templates
from motion4d.render.cameras import intrinsics_from_fov, spherical_viewmats

C0 = 0.28209479177387814


class MeshMotionModel:
    """A 4D stand-in with exactly known trajectories: one Gaussian per face of a synthetic shape's mesh,
    moved by that shape's motion (:func:`motion4d.data.synth_motion.animate`); ``at_time`` as a 4D model."""

    def __init__(self, shape: str, colour: str, spec: MotionSpec, pattern: PatternSpec = PatternSpec("stripes", 0.3)):
        mesh = shape_mesh(shape, colour, pattern)
        self.points = mesh.vertices[mesh.faces].mean(axis=1)
        linear = np.array([m.base_color[:3] for m in mesh.materials])[mesh.face_materials]
        self.sh = torch.tensor((linear_to_srgb(linear) - 0.5) / C0, dtype=torch.float32)[:, None]
        self.spec = spec
        self.scale = 0.5 * float(mean_knn_distance(torch.from_numpy(self.points).float()).mean())

    def at_time(self, t: float) -> GaussianFrame:
        means = torch.from_numpy(animate(self.points, self.spec, np.array([float(t)]))[0])
        n = len(means)
        quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).expand(n, 4)
        return GaussianFrame(means, quats, torch.full((n, 3), self.scale), torch.full((n,), 0.95), self.sh, 0)


def _shaded(colour: str, n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb [n,3]``, ``alpha [n]``: the colour and its pattern shade under headlight shading, a few edge
    pixels blended with the white background and a few grey highlights."""
    rng = np.random.default_rng(seed)
    base = np.array(PALETTE[colour]) * np.where(rng.random(n) < 0.4, SHADE, 1.0)[:, None]
    shade = rng.uniform(0.3, 1.0, n)[:, None]
    rgb = linear_to_srgb((base**2.2) * shade)
    alpha = np.where(rng.random(n) < 0.15, rng.uniform(0.5, 0.9, n), 1.0)
    rgb = rgb * alpha[:, None] + (1 - alpha[:, None])  # composited edge pixels, as a renderer's on white
    rgb[:10] = 0.9  # highlights: no hue
    return torch.tensor(rgb, dtype=torch.float32), torch.tensor(alpha, dtype=torch.float32)


@pytest.mark.parametrize("colour", COLOURS)
def test_colour_of_shaded_two_tone_pixels(colour):
    rgb, alpha = _shaded(colour)
    name, scores = classify_colour(rgb, alpha)
    assert name == colour and scores[colour] > 0.9
    assert math.isclose(sum(scores.values()), 1.0, rel_tol=1e-5)


def test_colour_ignores_background_and_greys():
    rgb, alpha = _shaded("blue")
    rgb = torch.cat([rgb, torch.tensor([[0.9, 0.1, 0.1]]).expand(100, 3)])  # red background pixels, alpha 0
    alpha = torch.cat([alpha, torch.zeros(100)])
    assert classify_colour(rgb, alpha[:, None])[0] == "blue"
    grey, _ = classify_colour(torch.full((50, 3), 0.5), torch.ones(50))
    assert grey == UNKNOWN
    with pytest.raises(ValueError, match="alpha"):
        classify_colour(rgb, torch.ones(3))


def test_hue_of_primaries():
    hue, chroma = hue_and_chroma(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5]]))
    assert torch.allclose(hue[:3], torch.tensor([0.0, 120.0, 240.0]), atol=1e-4)
    assert torch.allclose(chroma, torch.tensor([1.0, 1.0, 1.0, 0.0]))


TINY_SIL = SilhouetteConfig(canvas=48, yaw_step_deg=15.0)
RES = 48


def _cameras(res: int = RES):
    viewmats = spherical_viewmats(torch.tensor([0.0, 90.0, 180.0, 270.0]), torch.full((4,), 20.0), 3.0)
    return viewmats, intrinsics_from_fov(40.0, res, res).expand(4, 3, 3).clone()


@pytest.fixture(scope="module")
def templates():
    viewmats, Ks = _cameras()
    return render_templates(viewmats, Ks, RES, RES, TINY_SIL)


def _mesh_masks(shape, spec: MotionSpec, times, res=RES) -> torch.Tensor:
    """[T,4,res,res] silhouettes of the moving mesh of ``shape`` from the four 20°-elevation cameras."""
    mesh = shape_mesh(shape, "red", PatternSpec("spots", 0.0, ((1.0, 0.0, 0.0),)))
    viewmats, Ks = _cameras(res)
    verts = animate(mesh.vertices, spec, np.asarray(times))
    out = [[mesh_silhouette(v, mesh.faces, vm.double().numpy(), K.double().numpy(), res, res, 2) for vm, K in zip(viewmats, Ks)] for v in verts]
    return torch.tensor(np.array(out))


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_from_mesh_silhouettes_under_pose_jitter_and_motion(shape, templates):
    # turned off the template yaws, smaller, and orbiting off-centre (perspective), seen over time
    spec = MotionSpec("orbiting", amplitude=1.1, scale=0.92, yaw_deg=19.0, phase=1.0)
    viewmats, Ks = _cameras()
    name, scores = classify_shape(_mesh_masks(shape, spec, [0.0, 0.3, 0.6]), viewmats, Ks, templates=templates, config=TINY_SIL)
    assert name == shape, scores
    assert scores[shape] > 0.8


def test_shape_matches_over_time_through_a_deformation(templates):
    viewmats, Ks = _cameras()
    spec = MotionSpec("bending", amplitude=1.0, yaw_deg=-10.0)
    bent = _mesh_masks("cylinder", spec, [0.25])  # the most bent pose alone looks like nothing in particular
    over_time = _mesh_masks("cylinder", spec, [0.25, 0.5])  # the straight pose at t = 0.5 decides
    assert classify_shape(over_time, viewmats, Ks, templates=templates, config=TINY_SIL)[1]["cylinder"] > \
        classify_shape(bent, viewmats, Ks, templates=templates, config=TINY_SIL)[1]["cylinder"]  # fmt: skip
    assert classify_shape(over_time, viewmats, Ks, templates=templates, config=TINY_SIL)[0] == "cylinder"


def test_normalised_silhouettes_do_not_depend_on_position_or_size():
    disc = lambda cx, cy, r: ((torch.arange(40)[None] - cx) ** 2 + (torch.arange(40)[:, None] - cy) ** 2 <= r * r).float()  # noqa: E731
    a = normalise_silhouettes(torch.stack([disc(12, 15, 5), disc(20, 20, 8)])[None])
    b = normalise_silhouettes(torch.stack([disc(25, 22, 7.5), disc(18, 21, 12)])[None])
    assert ((a - b).abs().sum() / a.sum()) < 0.1
    assert normalise_silhouettes(torch.zeros(1, 2, 8, 8)).sum() == 0


#: one stand-in per motion, on varied shapes, with pose jitter
MOTION_CASES = [("bouncing", "cube"), ("jumping", "torus"), ("sliding", "cone"), ("orbiting", "pyramid"),
                ("spinning", "cylinder"), ("swaying", "cylinder"), ("pulsing", "sphere"), ("bending", "cube")]  # fmt: skip


@pytest.mark.parametrize("motion,shape", MOTION_CASES)
def test_motion_from_known_trajectories(motion, shape):
    spec = MotionSpec(motion, amplitude=0.9, scale=0.95, yaw_deg=12.0, phase=2.0)
    name, scores = classify_motion(MeshMotionModel(shape, "green", spec), (0.0, 1.0))
    assert name == motion, scores
    assert scores[motion] > 0.7 and sorted(scores.values())[-2] < 0.5 * scores[motion]


def test_motion_on_a_shifted_time_range_and_a_static_model():
    class Shifted(MeshMotionModel):
        def at_time(self, t):
            return super().at_time((t - 2.0) / 3.0)

    assert classify_motion(Shifted("cube", "red", MotionSpec("jumping")), (2.0, 5.0))[0] == "jumping"
    assert classify_motion(MeshMotionModel("cone", "red", MotionSpec("sliding", amplitude=0.0)), (0.0, 1.0))[0] == STATIC
    with pytest.raises(ValueError, match="time_range"):
        classify_motion(MeshMotionModel("cone", "red", MotionSpec("sliding")), (1.0, 1.0))


@pytest.mark.parametrize("shape,colour,motion", [("torus", "orange", "spinning"), ("pyramid", "cyan", "bouncing")])
def test_judge_a_stand_in_end_to_end(shape, colour, motion):
    config = OracleConfig(silhouette=SilhouetteConfig(canvas=32, yaw_step_deg=15.0, supersample=1))
    result = judge(MeshMotionModel(shape, colour, MotionSpec(motion, yaw_deg=8.0)), (0.0, 1.0), config)
    assert (result.shape, result.colour, result.motion) == (shape, colour, motion), result.scores
    assert result.correct(shape, colour, motion) == {"shape": True, "colour": True, "motion": True}
    assert set(result.to_dict()["scores"]) == {"shape", "colour", "motion"}


def test_judge_views_on_rendered_images():
    from motion4d.pipelines.dataset_synth import SynthConfig, render_views
    from motion4d.data.synth_specs import SampleSpec

    config = SynthConfig(res=RES, frames=2)
    az, el, r = np.array([0.0, 90.0, 180.0, 270.0], np.float32), np.full(4, 20.0, np.float32), np.full(4, 3.0, np.float32)
    spec = SampleSpec(0, "000000", "cone", "purple", "swaying", "", "", "train", PatternSpec("bands", 1.0), MotionSpec("swaying"), az, el, r)
    images = torch.from_numpy(render_views(spec, config, az, el, r)).float().div(255).transpose(0, 1)  # [T,V,H,W,4]
    viewmats, Ks = _cameras()
    result = judge_views(images[..., :3], images[..., 3], viewmats, Ks, OracleConfig(silhouette=TINY_SIL))
    assert (result.shape, result.colour, result.motion) == ("cone", "purple", None)
    assert result.correct("cone", "purple", "swaying") == {"shape": True, "colour": True}


def test_visibility_on_the_fit_background():
    from motion4d.metrics.oracle_views import ViewConfig, visibility, visible_centroid

    vis = visibility(torch.tensor([[1.0, 1.0, 1.0], [0.9, 0.9, 0.9], list(PALETTE["pink"]), [0.0, 0.0, 0.0]]))
    assert torch.allclose(vis, torch.tensor([0.0, 0.4, 1.0, 1.0]), atol=1e-5)
    assert visibility(torch.zeros(1, 3), ViewConfig(background=(0.0, 0.0, 0.0)))[0] == 0.0
    # an object at the origin and a heavier white sheet below it (which a fit on white never saw)
    rng = np.random.default_rng(0)
    obj, sheet = torch.tensor(rng.normal(0, 0.1, (200, 3))), torch.tensor(rng.normal(0, 0.3, (600, 3))) * torch.tensor([1.0, 1.0, 0.05])
    means = torch.cat([obj, sheet - torch.tensor([0.0, 0.0, 0.3])])
    colours = torch.cat([torch.tensor(PALETTE["blue"]).expand(200, 3), torch.ones(600, 3)]).double()
    opacities = torch.full((800,), 0.8, dtype=torch.float64)
    assert visible_centroid(means, opacities, colours=colours).norm() < 0.03
    assert visible_centroid(means, opacities)[2] < -0.1


class WithWhiteSheet(MeshMotionModel):
    """A stand-in plus what a fit on white images grows unseen: a large faint white sheet below the object
    (behind it from the 20° views, so the white images never showed it)."""

    def at_time(self, t):
        frame = super().at_time(t)
        g = torch.linspace(-0.6, 0.6, 25)
        sheet = torch.stack([*torch.meshgrid(g, g, indexing="ij"), torch.full((25, 25), -0.6)], -1).reshape(-1, 3)
        n = len(sheet)
        white = torch.full((n, 1, 3), (1.0 - 0.5) / C0)
        return GaussianFrame(torch.cat([frame.means, sheet]), torch.cat([frame.quats, torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4)]),
                             torch.cat([frame.scales, torch.full((n, 3), 0.05)]), torch.cat([frame.opacities, torch.full((n,), 0.5)]),
                             torch.cat([frame.sh, white]), 0)  # fmt: skip


def test_judge_sees_through_a_white_sheet():
    config = OracleConfig(silhouette=SilhouetteConfig(canvas=32, yaw_step_deg=15.0, supersample=1))
    result = judge(WithWhiteSheet("cylinder", "purple", MotionSpec("sliding", yaw_deg=5.0)), (0.0, 1.0), config)
    assert (result.shape, result.colour, result.motion) == ("cylinder", "purple", "sliding"), result.scores


class Flickering(MeshMotionModel):
    """A still round shape whose pattern is drawn afresh at every time: what a fit makes of a spinning one."""

    def __init__(self, shape, colour, *, flicker: bool):
        super().__init__(shape, colour, MotionSpec("sliding", amplitude=0.0))
        self.flicker = flicker
        mesh = shape_mesh(shape, colour, PatternSpec("stripes", 0.0))
        self.shades = torch.tensor((linear_to_srgb(np.array([m.base_color[:3] for m in mesh.materials])) - 0.5) / C0, dtype=torch.float32)

    def at_time(self, t):
        frame = super().at_time(t)
        if not self.flicker:
            return frame
        dark = torch.from_numpy(np.random.default_rng(int(round(t * 1000))).random(len(frame.means)) < 0.4)
        return dataclasses.replace(frame, sh=self.shades[dark.long()][:, None])


def test_a_still_round_shape_whose_pattern_keeps_changing_spins():
    flickering = classify_motion(Flickering("cylinder", "cyan", flicker=True), (0.0, 1.0))
    assert flickering[0] == "spinning", flickering[1]
    assert flickering[1]["spinning"] <= MotionConfig().flux_weight + 1e-9  # a spin by elimination: never a sure one
    assert classify_motion(Flickering("cylinder", "cyan", flicker=False), (0.0, 1.0))[0] == STATIC


class TiltedAboutItsCentre(MeshMotionModel):
    """Swaying's tilt, but about the centre instead of the base: the body does not swing sideways."""

    def at_time(self, t):
        frame = super().at_time(0.0)
        a = 0.5 * math.sin(2 * math.pi * t)
        rot = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]], dtype=frame.means.dtype)
        c = frame.means.mean(0)
        return dataclasses.replace(frame, means=(frame.means - c) @ rot.T + c)


def test_a_tilt_without_a_swing_is_no_sway():
    spec = MotionSpec("sliding", amplitude=0.0)
    swaying = classify_motion(MeshMotionModel("cylinder", "green", MotionSpec("swaying")), (0.0, 1.0))
    tilted = classify_motion(TiltedAboutItsCentre("cylinder", "green", spec), (0.0, 1.0))
    assert swaying[0] == "swaying" and tilted[0] != "swaying", tilted[1]
    assert tilted[1]["swaying"] < 0.25 * swaying[1]["swaying"]
