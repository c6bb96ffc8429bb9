"""The intensity map into model space: square-root domain (`intensity_gamma`) and display floor (`black_level`)."""

from __future__ import annotations

import pytest
import torch

from genrad.errors import InputError
from genrad.models import Diffusion

BLACK = 1 / 255


def model(**options: float) -> Diffusion:
    return Diffusion(num_classes=2, **options)


@pytest.mark.parametrize("options", [{}, {"intensity_gamma": 2.0}, {"intensity_gamma": 3.0, "black_level": BLACK}])
def test_round_trip_above_the_black_level(options: dict[str, float]) -> None:
    pixels = torch.linspace(BLACK, 1.0, 256)
    mapped = model(**options).to_model_space(pixels)
    assert float(mapped.min()) >= -1.0 and float(mapped.max()) == pytest.approx(1.0)
    assert torch.allclose(model(**options).from_model_space(mapped), pixels, atol=1e-6)


def test_square_root_domain_shrinks_errors_in_dark_pixels() -> None:
    linear, square_root = model(), model(intensity_gamma=2.0)
    dark, bright = torch.tensor([0.02]), torch.tensor([0.8])
    def cost(m: Diffusion, x: torch.Tensor) -> float:  # pixel error of one model-space error of 0.02
        return float(m.from_model_space(m.to_model_space(x) + 0.02) - x)
    assert cost(square_root, dark) < 0.3 * cost(linear, dark)
    assert cost(square_root, bright) < 2.0 * cost(linear, bright)  # at most the map's slope, 2 sqrt(x)


def test_black_level_makes_a_noisy_floor_region_flat_in_8_bits() -> None:
    noise = 0.02 * torch.randn(400, generator=torch.Generator().manual_seed(0))
    floor = model(intensity_gamma=2.0, black_level=BLACK)
    eight_bit = torch.round(floor.from_model_space(-1.0 + noise) * 255)
    assert set(eight_bit.tolist()) == {1.0}  # a clipped region comes out as one flat value
    plain = model(intensity_gamma=2.0)  # the same network error around the floor value without a black level
    level = plain.to_model_space(torch.tensor(BLACK))
    assert len(set(torch.round(plain.from_model_space(level + noise) * 255).tolist())) >= 2
    assert float(floor.to_model_space(torch.tensor(0.0))) == -1.0  # below the floor is the floor


def test_floor_gap_separates_clipped_pixels_from_the_darkest_tissue() -> None:
    gapped = model(intensity_gamma=2.0, black_level=BLACK, floor_gap=0.4)
    pixels = torch.arange(256, dtype=torch.float32) / 255
    mapped = gapped.to_model_space(pixels)
    assert torch.equal(mapped[:2], torch.tensor([-1.0, -1.0]))  # below and at the floor
    assert float(mapped[2:].min()) >= -1.0 + 0.4 and float(mapped.max()) == pytest.approx(1.0)
    assert torch.equal(torch.round(gapped.from_model_space(mapped) * 255), pixels.clamp(min=BLACK).mul(255).round())
    # a clipped region the network leaves anywhere in the gap still comes out flat
    noisy_floor = -1.0 + 0.4 * torch.rand(400, generator=torch.Generator().manual_seed(0))
    assert set(torch.round(gapped.from_model_space(noisy_floor) * 255).tolist()) == {1.0}
    plain = model(intensity_gamma=2.0, black_level=BLACK)  # floor_gap 0 is the map without a gap
    values = torch.linspace(-1.5, 1.5, 301)
    assert torch.equal(plain.from_model_space(values),
                       BLACK + (1 - BLACK) * ((values.clamp(-1, 1) + 1) / 2) ** 2)


def test_floor_ramp_descends_into_clipped_regions_and_still_decodes_to_the_floor() -> None:
    """A clipped left half: its pixels sit at -1 + g - g d / R (d: distance to the first unclipped column),
    clamped at -1; unclipped pixels keep their values; every training tensor decodes to the same 8-bit image."""
    images = torch.full((2, 1, 8, 8), 40 / 255)
    images[0, :, :, :4] = BLACK  # clipped columns 0-3: distances 4, 3, 2, 1 to column 4
    images[1, :, 2:5, 2:5] = 0.0  # below the floor is clipped too; a 3x3 hole has depths 1 and 2
    flat = model(intensity_gamma=2.0, black_level=BLACK, floor_gap=0.6)
    ramped = model(intensity_gamma=2.0, black_level=BLACK, floor_gap=0.6, floor_ramp=3.0)
    base = flat.to_model_space(images)
    values = ramped._ramp_floors(images, ramped.to_model_space(images))
    assert torch.allclose(values[0, 0, 0, :4], torch.tensor([-1.0, -1.0, -0.8, -0.6]))
    assert torch.allclose(values[1, 0, 3, 2:5], torch.tensor([-0.6, -0.8, -0.6]))
    clipped = images <= BLACK
    assert torch.equal(values[~clipped], base[~clipped]) and bool((values[clipped] <= -0.4).all())
    assert torch.equal(torch.round(ramped.from_model_space(values) * 255), torch.round(images.clamp(min=BLACK) * 255))
    assert torch.equal(flat._ramp_floors(images, base), base)  # floor_ramp 0: the flat floor of before
    volume = torch.full((1, 1, 4, 6, 6), 40 / 255)
    volume[..., :3] = BLACK  # 3D: distances along the last axis
    assert torch.allclose(ramped._ramp_floors(volume, ramped.to_model_space(volume))[0, 0, 1, 1, :3],
                          torch.tensor([-1.0, -0.8, -0.6]))


@pytest.mark.parametrize(("options", "message"), [({"intensity_gamma": 0.0}, r"intensity_gamma in \[0.25, 4\]"),
                                                 ({"black_level": 0.5}, r"black_level in \[0, 0.5\)"),
                                                 ({"floor_gap": 0.3}, r"floor_gap 0, or in \(0, 1\) with a black_level > 0"),
                                                 ({"black_level": BLACK, "floor_gap": 1.0}, "floor_gap"),
                                                 ({"black_level": BLACK, "floor_ramp": 3.0}, "floor_ramp 0, or > 0"),
                                                 ({"black_level": BLACK, "floor_gap": 0.3, "floor_ramp": -1.0}, "floor_ramp")])
def test_bad_intensity_options_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        model(**options)
