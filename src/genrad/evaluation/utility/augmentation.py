"""Augmentation policies of the downstream classifier (`genrad.evaluation.utility.classifier.Classifier`).

``classical``: MONAI flip, mild affine, contrast and noise, each on most images. ``trivialaugment``: per image one
TorchIO transform of `TRIVIAL_AUGMENT_OPERATIONS` at a uniformly drawn strength (Mueller & Hutter 2021,
"TrivialAugment"), 2D images as one-slice volumes. Both are seeded from ``(seed, "augment")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genrad.core import derive_seed
from genrad.errors import InputError

AUGMENTATIONS = (None, "classical", "trivialaugment")
"""Augmentation policies: none; ``classical`` (MONAI: flip, mild affine, contrast, noise, all on most images);
``trivialaugment`` (one TorchIO transform per image, chosen uniformly from `TRIVIAL_AUGMENT_OPERATIONS`, at a
uniformly drawn strength: the TrivialAugment policy of Mueller & Hutter 2021 on medical-imaging operations)."""
TRIVIAL_AUGMENT_OPERATIONS = ("identity", "flip", "affine", "elastic", "gamma", "noise", "blur", "bias_field", "anisotropy")


def augmentation(policy: str, spatial_dims: int, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The augmentation `policy` (``classical`` or ``trivialaugment``) as a function of one channel-first image tensor,
    seeded by ``(seed, "augment")``."""
    if policy == "trivialaugment":
        return trivial_augmentation(spatial_dims, seed)
    if policy != "classical":
        raise InputError(f"augment in {AUGMENTATIONS}", repr(policy), "use augment='trivialaugment'")
    from monai.transforms import Compose, RandAdjustContrast, RandAffine, RandFlip, RandGaussianNoise

    angle = math.pi / 12
    transform = Compose(
        [
            RandFlip(prob=0.5, spatial_axis=spatial_dims - 1),
            RandAffine(
                prob=0.8,
                rotate_range=angle if spatial_dims == 2 else (angle, angle, angle),
                translate_range=2.0,
                scale_range=0.1,
                padding_mode="border",
            ),
            RandAdjustContrast(prob=0.5, gamma=(0.8, 1.25)),
            RandGaussianNoise(prob=0.5, std=0.03),
        ]
    )
    transform.set_random_state(seed=derive_seed(seed, "augment") % (2**32))
    return lambda image: torch.as_tensor(transform(image), dtype=torch.float32)


def trivial_augmentation(spatial_dims: int, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """TrivialAugment (Mueller & Hutter 2021): per image, one of `TRIVIAL_AUGMENT_OPERATIONS` (TorchIO transforms,
    2D images as one-slice volumes) at a strength drawn uniformly from its range. TorchIO draws from torch's global
    generator, seeded here with ``(seed, "augment")``: call inside a forked RNG state (`Classifier.fit` does)."""
    import torchio as tio

    flat = spatial_dims == 2
    in_plane = (0, 0, 0, 0, -30, 30) if flat else 30
    operations = {
        "identity": tio.Lambda(lambda tensor: tensor),
        "flip": tio.RandomFlip(axes=(1,), flip_probability=1.0),
        "affine": tio.RandomAffine(scales=(0.8, 1.2, 0.8, 1.2, 1, 1) if flat else 0.2, degrees=in_plane,
                                   translation=(-3, 3, -3, 3, 0, 0) if flat else 3, default_pad_value="minimum"),
        "elastic": tio.RandomElasticDeformation(num_control_points=(7, 7, 5) if flat else 7,
                                                 max_displacement=(2.0, 2.0, 0.0) if flat else 2.0),
        "gamma": tio.RandomGamma(log_gamma=0.4),
        "noise": tio.RandomNoise(std=(0.0, 0.08)),
        "blur": tio.RandomBlur(std=(0, 1, 0, 1, 0, 0) if flat else (0, 1)),
        "bias_field": tio.RandomBiasField(coefficients=0.4),
        "anisotropy": tio.RandomAnisotropy(axes=(0, 1) if flat else (0, 1, 2), downsampling=(1.5, 3)),
    }
    policy = tio.OneOf({operations[name]: 1.0 for name in TRIVIAL_AUGMENT_OPERATIONS})
    torch.manual_seed(derive_seed(seed, "augment"))

    def transform(image: torch.Tensor) -> torch.Tensor:
        volume = image.unsqueeze(-1) if flat else image
        out = policy(volume.float())
        return (out.squeeze(-1) if flat else out).to(torch.float32)

    return transform
