"""The pyradiomics engine reproduces frd-score's own feature extraction, value for value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from genrad.data import load
from genrad.radiomics import FEATURE_SETS, extract

frd = pytest.importorskip("frd_score.frd")


def _frd_name(name: str) -> str:
    """frd-score drops the 'original_' prefix of feature names (not of diagnostics)."""
    return name if name.startswith("diagnostics_") else name.replace("original_", "")


@pytest.mark.parametrize("dims", [2, 3])
def test_frd_v1_settings_are_frd_scores(dims: int) -> None:
    config = yaml.safe_load(Path(frd.V1_CONFIG_2D if dims == 2 else frd.V1_CONFIG_3D).read_text(encoding="utf-8"))
    params = FEATURE_SETS["frd_v1"].params(dims)
    assert params["setting"] == config["setting"]
    assert params["imageType"] == {**config["imageType"], "LoG": {"sigma": frd.V1_DEFAULT_LOG_SIGMA}}
    assert params["featureClass"] == config["featureClass"]


def test_pyradiomics_engine_matches_frd_score_on_breastmnist(breastmnist_path: Path, tmp_path: Path) -> None:
    images = np.load(breastmnist_path)["test_images"][:20]
    extractor = frd.get_feature_extractor(frd_version="v1", image_dim=2)
    expected = []
    for k, image in enumerate(images):
        png = tmp_path / f"{k:03d}.png"
        Image.fromarray(image).save(png)
        expected.append(frd.process_image_mask_pair((png, None), feature_extractor=extractor)[1])

    table = extract(images, feature_set="frd_v1", engine="pyradiomics", progress=False)

    assert table.shape == (20, len(expected[0])) == (20, 398)
    assert [_frd_name(c) for c in table.columns] == list(expected[0])
    reference = np.array([list(row.values()) for row in expected])
    np.testing.assert_array_equal(table.to_numpy(), reference)


def test_split_input_is_scaled_to_255(breastmnist_path: Path) -> None:
    split = load(breastmnist_path).test.subset(range(3))
    from_split = extract(split, feature_set="fast", engine="pyradiomics", progress=False)
    raw = np.load(breastmnist_path)["test_images"][:3]
    from_uint8 = extract(raw, feature_set="fast", engine="pyradiomics", progress=False)
    np.testing.assert_allclose(from_split.to_numpy(), from_uint8.to_numpy(), rtol=1e-5, atol=1e-8)
