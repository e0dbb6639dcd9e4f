"""Gaussian representations; each answers ``at_time(t)`` with a :class:`GaussianFrame`."""

from motion4d.gaussians.gaussians3d import GaussianFrame, Gaussians3D, mean_knn_distance
from motion4d.gaussians.rotor4d import Gaussians4DRotor

__all__ = ["GaussianFrame", "Gaussians3D", "Gaussians4DRotor", "mean_knn_distance"]
