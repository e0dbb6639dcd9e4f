"""motion4d: text, image, video or a static 3D asset to animated 3D Gaussians."""

__version__ = "0.1.0"
