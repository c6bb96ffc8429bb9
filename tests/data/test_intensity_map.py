"""`IntensityMap`: the map into a generator's model space (square-root domain, display floor, gap, ramp), its
round trip, and ``intensity="auto"``: the clipped-ultrasound map for BreastMNIST, the identity elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrad.data.intensity import IntensityMap
from genrad.data.phantom import make_phantom
from genrad.errors import InputError

BLACK = 1 / 255


@pytest.mark.parametrize("options", [{}, {"gamma": 2.0}, {"gamma": 3.0, "black_level": BLACK},
                                     {"gamma": 2.0, "black_level": BLACK, "floor_gap": 0.6, "floor_ramp": 3.0}])
def test_round_trip(options: dict[str, float]) -> None:
    """encode -> decode is the identity above the floor, and 8-bit images come back to the same 8-bit values."""
    mapping = IntensityMap(**options)
    pixels = torch.linspace(BLACK, 1.0, 256)
    mapped = mapping.encode(pixels.view(1, 1, 16, 16))
    assert float(mapped.min()) >= -1.0 and float(mapped.max()) == pytest.approx(1.0)
    assert torch.allclose(mapping.decode(mapped).flatten(), pixels, atol=1e-6)
    eight_bit = (torch.arange(256, dtype=torch.float32) / 255).view(1, 1, 16, 16)
    back = torch.round(mapping.decode(mapping.encode(eight_bit)) * 255)
    assert torch.equal(back, torch.round(eight_bit.clamp(min=mapping.black_level) * 255))
    assert IntensityMap(**mapping.as_dict()) == mapping and IntensityMap.parse(mapping.as_dict()) == mapping


def test_square_root_domain_shrinks_errors_in_dark_pixels() -> None:
    linear, square_root = IntensityMap(), IntensityMap(gamma=2.0)
    dark, bright = torch.tensor([0.02]), torch.tensor([0.8])

    def cost(m: IntensityMap, x: torch.Tensor) -> float:  # pixel error of one model-space error of 0.02
        return float(m.decode(m.encode(x) + 0.02) - x)
    assert cost(square_root, dark) < 0.3 * cost(linear, dark)
    assert cost(square_root, bright) < 2.0 * cost(linear, bright)  # at most the map's slope, 2 sqrt(x)


def test_black_level_makes_a_noisy_floor_region_flat_in_8_bits() -> None:
    noise = 0.02 * torch.randn(400, generator=torch.Generator().manual_seed(0))
    floor = IntensityMap(gamma=2.0, black_level=BLACK)
    assert set(torch.round(floor.decode(-1.0 + noise) * 255).tolist()) == {1.0}  # a clipped region comes out flat
    plain = IntensityMap(gamma=2.0)  # the same network error around the floor value without a black level
    level = plain.encode(torch.tensor(BLACK))
    assert len(set(torch.round(plain.decode(level + noise) * 255).tolist())) >= 2
    assert float(floor.encode(torch.tensor(0.0))) == -1.0  # below the floor is the floor


def test_floor_gap_separates_clipped_pixels_from_the_darkest_tissue() -> None:
    gapped = IntensityMap(gamma=2.0, black_level=BLACK, floor_gap=0.4)
    pixels = torch.arange(256, dtype=torch.float32) / 255
    mapped = gapped.encode(pixels)
    assert torch.equal(mapped[:2], torch.tensor([-1.0, -1.0]))  # below and at the floor
    assert float(mapped[2:].min()) >= -1.0 + 0.4 and float(mapped.max()) == pytest.approx(1.0)
    noisy_floor = -1.0 + 0.4 * torch.rand(400, generator=torch.Generator().manual_seed(0))
    assert set(torch.round(gapped.decode(noisy_floor) * 255).tolist()) == {1.0}  # anywhere in the gap: the floor
    plain = IntensityMap(gamma=2.0, black_level=BLACK)  # floor_gap 0 is the map without a gap
    values = torch.linspace(-1.5, 1.5, 301)
    assert torch.equal(plain.decode(values), BLACK + (1 - BLACK) * ((values.clamp(-1, 1) + 1) / 2) ** 2)


def test_floor_ramp_descends_into_clipped_regions_and_still_decodes_to_the_floor() -> None:
    """Clipped pixels sit at -1 + g - g d / R (d: distance to unclipped tissue), clamped at -1."""
    images = torch.full((2, 1, 8, 8), 40 / 255)
    images[0, :, :, :4] = BLACK  # clipped columns 0-3: distances 4, 3, 2, 1 to column 4
    images[1, :, 2:5, 2:5] = 0.0  # below the floor is clipped too; a 3x3 hole has depths 1 and 2
    flat = IntensityMap(gamma=2.0, black_level=BLACK, floor_gap=0.6)
    ramped = IntensityMap(gamma=2.0, black_level=BLACK, floor_gap=0.6, floor_ramp=3.0)
    base, values = flat.encode(images), ramped.encode(images)
    assert torch.allclose(values[0, 0, 0, :4], torch.tensor([-1.0, -1.0, -0.8, -0.6]))
    assert torch.allclose(values[1, 0, 3, 2:5], torch.tensor([-0.6, -0.8, -0.6]))
    clipped = images <= BLACK
    assert torch.equal(values[~clipped], base[~clipped]) and bool((values[clipped] <= -0.4).all())
    assert torch.equal(torch.round(ramped.decode(values) * 255), torch.round(images.clamp(min=BLACK) * 255))
    assert bool((base[clipped] == -1.0).all())  # floor_ramp 0: the flat floor
    volume = torch.full((1, 1, 4, 6, 6), 40 / 255)
    volume[..., :3] = BLACK  # 3D: distances along the last axis
    assert torch.allclose(ramped.encode(volume)[0, 0, 1, 1, :3], torch.tensor([-1.0, -0.8, -0.6]))


@pytest.mark.parametrize(("options", "message"), [({"gamma": 0.0}, r"gamma in \[0.25, 4\]"),
                                                 ({"black_level": 0.5}, r"black_level in \[0, 0.5\)"),
                                                 ({"floor_gap": 0.3}, r"floor_gap 0, or in \(0, 1\) with a black_level > 0"),
                                                 ({"black_level": BLACK, "floor_gap": 1.0}, "floor_gap"),
                                                 ({"black_level": BLACK, "floor_ramp": 3.0}, "floor_ramp 0, or > 0"),
                                                 ({"black_level": BLACK, "floor_gap": 0.3, "floor_ramp": -1.0}, "floor_ramp"),
                                                 ({"gamma": "2"}, "gamma")])
def test_bad_maps_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        IntensityMap(**options)
    with pytest.raises(InputError, match="intensity keys"):
        IntensityMap.parse({"colour": 1.0})


def test_auto_leaves_the_phantom_and_an_unclipped_x_ray_like_set_alone() -> None:
    assert IntensityMap.from_data(make_phantom(n=120, size=28, seed=0).train.images) == IntensityMap()
    rng = np.random.default_rng(0)  # a chest X-ray-like set: smooth, bright lungs on dark tissue, no clipped floor
    rows = np.linspace(0, 1, 28)[:, None]
    x_ray = np.clip(0.25 + 0.5 * np.sin(np.pi * rows) * np.ones((1, 28)) + rng.normal(0, 0.05, (60, 1, 28, 28)), 0.01, 1.0)
    assert IntensityMap.from_data(np.round(x_ray * 255).astype(np.float32) / 255) == IntensityMap()


def test_auto_chooses_the_clipped_ultrasound_map_for_breastmnist(breastmnist_path) -> None:
    from genrad.data import load

    assert IntensityMap.from_data(load(breastmnist_path).train.images) == IntensityMap.ultrasound(BLACK)
