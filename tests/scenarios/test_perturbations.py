"""Perturbations: identity at the identity severity, physical units, monotone severity, seeded bytes, 2D and 3D."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genrad.errors import InputError
from genrad.scenarios import PERTURBATIONS, default_grid, perturb

GRID = default_grid()


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_identity_severity_leaves_images_unchanged(name, phantom_images):
    identity = PERTURBATIONS[name].identity
    assert np.array_equal(perturb(phantom_images, name, identity, seed=0), phantom_images)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_image_change_grows_with_severity(name, phantom_images):
    """The severity scale is ordered: mean absolute change grows over the default grid's levels."""
    severities = GRID.perturbations[name]
    change = [float(np.abs(perturb(phantom_images, name, s, seed=0) - phantom_images).mean()) for s in severities]
    assert change[0] > 0
    assert all(b > a for a, b in itertools.pairwise(change)), change


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_same_seed_same_bytes_and_global_rng_untouched(name, phantom_images):
    severity = GRID.perturbations[name][-1]
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    first = perturb(phantom_images, name, severity, seed=5)
    second = perturb(phantom_images, name, severity, seed=5)
    assert first.dtype == np.float32 and first.shape == phantom_images.shape
    assert first.tobytes() == second.tobytes()
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


@pytest.mark.parametrize("name", ["noise", "rician", "bias_field", "motion", "ghosting", "spike"])
def test_random_perturbations_depend_on_the_seed(name, phantom_images):
    severity = GRID.perturbations[name][-1]
    assert not np.array_equal(perturb(phantom_images, name, severity, seed=0), perturb(phantom_images, name, severity, seed=1))


def test_noise_sigma_is_a_fraction_of_the_intensity_range():
    flat = np.full((4, 1, 64, 64), 0.5, dtype=np.float32)
    residual = perturb(flat, "noise", 0.05, seed=0) - flat
    assert residual.std() == pytest.approx(0.05, rel=0.03)
    assert abs(residual.mean()) < 0.002


@pytest.mark.parametrize("fwhm", [2.0, 4.0])
def test_blur_severity_is_the_fwhm_in_pixels(fwhm):
    """A point blurred to a Gaussian of sigma s has FWHM 2 sqrt(2 ln 2) s: measured along one row."""
    point = np.zeros((1, 1, 41, 41), dtype=np.float32)
    point[0, 0, 20, 20] = 1.0
    row = perturb(point, "blur", fwhm, seed=0)[0, 0, 20].astype(np.float64)
    fine = np.linspace(0, 40, 4001)
    profile = np.interp(fine, np.arange(41), row)
    above = fine[profile >= row.max() / 2]
    assert above[-1] - above[0] == pytest.approx(fwhm, rel=0.1)


def test_contrast_severity_is_the_fraction_of_dynamic_range_lost(phantom_images):
    ramp = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(1, 1, 28, 28)
    out = perturb(ramp, "contrast", 0.4, seed=0)
    assert out.max() - out.min() == pytest.approx(0.6, abs=1e-6)


def test_resolution_keeps_the_shape_and_removes_fine_detail(phantom_images):
    out = perturb(phantom_images, "resolution", 4.0, seed=0)
    assert out.shape == phantom_images.shape
    high_frequency = lambda x: np.abs(np.diff(x, axis=-1)).mean()  # noqa: E731
    assert high_frequency(out) < 0.5 * high_frequency(phantom_images)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_volumes(name, phantom_volumes):
    severity = GRID.perturbations[name][-1]
    out = perturb(phantom_volumes, name, severity, seed=0)
    assert out.shape == phantom_volumes.shape and out.dtype == np.float32
    assert np.abs(out - phantom_volumes).mean() > 1e-3
    assert out.tobytes() == perturb(phantom_volumes, name, severity, seed=0).tobytes()


@pytest.mark.parametrize(
    ("name", "severity", "match"),
    [("nois", 0.1, "perturbation in"), ("noise", -0.1, ">= 0"), ("resolution", 0.5, ">= 1"), ("ghosting", 1.5, "<= 1"),
     ("noise", float("nan"), ">= 0")],
)
def test_bad_arguments(name, severity, match, phantom_images):
    with pytest.raises(InputError, match=match):
        perturb(phantom_images, name, severity, seed=0)


def test_bad_images():
    with pytest.raises(InputError, match="float32 images"):
        perturb(np.zeros((2, 28, 28), dtype=np.float32), "noise", 0.1, seed=0)
