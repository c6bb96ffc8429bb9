"""Privacy audit: kernels against references, planted memorisers caught, honest generators not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from genrad.data import load
from genrad.data.phantom import make_phantom
from genrad.errors import InputError, NotFittedError
from genrad.evaluation.privacy import (
    PixelSpace,
    PrivacyAudit,
    audit,
    bootstrap_replicates,
    membership_auc,
    near_copy_threshold,
    nearest,
    planted_memoriser,
)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(n=400, size=28, seed=0)


@pytest.fixture(scope="module")
def breastmnist(breastmnist_path):
    return load(breastmnist_path)


# --- kernels ----------------------------------------------------------------------------------------


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    queries, references = rng.normal(size=(7, 3, 5)), rng.normal(size=(11, 5))
    found = nearest(torch.tensor(queries, dtype=torch.float32), torch.tensor(references, dtype=torch.float32))
    pairwise = np.linalg.norm(queries[:, :, None, :] - references[None, None], axis=-1)  # (7, 3, 11)
    best = pairwise.min(axis=1)
    np.testing.assert_allclose(found.distance, best.min(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(found.index, best.argmin(axis=1))
    np.testing.assert_array_equal(found.variant, pairwise.min(axis=2).argmin(axis=1))
    np.testing.assert_allclose(found.reference_distance, best.min(axis=0), rtol=1e-5)


def test_pixel_space_is_ncc_and_finds_flips_and_shifts():
    rng = np.random.default_rng(1)
    images = torch.tensor(rng.random((5, 1, 20, 20)), dtype=torch.float32)
    space = PixelSpace(max_shift=2, smooth=0).fit(images)
    references = space.references(images)
    same = nearest(space.queries(images), references)
    np.testing.assert_allclose(same.distance, 0, atol=2e-3)
    # the distance is sqrt(2 - 2 NCC), NCC = Pearson correlation of the (cropped) images
    a, b = images[0, 0, 2:-2, 2:-2].flatten().numpy(), images[1, 0, 2:-2, 2:-2].flatten().numpy()
    pearson = np.corrcoef(a, b)[0, 1]
    np.testing.assert_allclose(torch.dot(references[0], references[1]).item(), pearson, atol=1e-5)
    moved = torch.roll(images.flip(-1), shifts=(1, -2), dims=(2, 3))
    found = nearest(space.queries(moved), references)
    np.testing.assert_array_equal(found.index, np.arange(5))
    np.testing.assert_allclose(found.distance, 0, atol=2e-3)
    # mirrored in x, the moved image is the original shifted by (1, +2)
    assert space.describe(int(found.variant[0])) == "flip x, shift (1, 2)"


def test_membership_auc_matches_sklearn_and_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    members, nonmembers = rng.normal(0.5, 1, 40), rng.normal(0, 1, 30)
    labels = np.r_[np.ones(40), np.zeros(30)]
    assert membership_auc(members, nonmembers) == pytest.approx(roc_auc_score(labels, np.r_[members, nonmembers]))
    first = bootstrap_replicates(membership_auc, members, nonmembers, n_resamples=200, seed=3)
    assert np.array_equal(first, bootstrap_replicates(membership_auc, members, nonmembers, n_resamples=200, seed=3))
    assert np.quantile(first, 0.025) < membership_auc(members, nonmembers) < np.quantile(first, 0.975)
    assert near_copy_threshold(np.arange(101.0), 0.99) == pytest.approx(1.0)


# --- acceptance: planted memorisers are caught, honest generators are not ---------------------------


def test_phantom_memoriser_caught_and_fresh_draws_not(phantom):
    train, holdout = phantom.train, phantom.test
    memoriser = planted_memoriser(train.images, noise=0.05)
    caught = audit(train, holdout, memoriser, features=(), n_bootstrap=200)
    assert caught["near_copy_rate"]["value"] >= 0.99
    assert caught["mia_auc"]["value"] > 0.95 and caught["mia_auc"]["ci"][0] > 0.9
    assert caught["dcr_ratio"]["value"] < 0.5
    fresh = make_phantom(n=400, size=28, seed=1).train.images  # new patients from the same population
    honest = audit(train, holdout, fresh, features=(), n_bootstrap=200)
    assert honest["near_copy_rate"]["value"] <= 0.05
    assert honest["mia_auc"]["ci"][0] < 0.5 < honest["mia_auc"]["ci"][1]
    assert 0.9 < honest["dcr_ratio"]["value"] < 1.1
    assert honest["holdout_duplicates"]["count"] == 0


def test_smooth_generator_is_not_called_a_copier(phantom):
    """Blurred new patients correlate better with training images than textured held-out images do: the
    raw-pixel rule flags them; smoothing every image and the train/held-out ratio screen do not."""
    fresh = make_phantom(n=400, size=28, seed=1).train.images
    blurred = np.stack([gaussian_filter(image, (0, 2, 2)) for image in fresh]).astype(np.float32)
    raw = PrivacyAudit(features=(), smooth=0, n_bootstrap=20).fit(phantom.train, phantom.test)
    raw.update(blurred)
    assert raw.compute()["near_copy_rate"]["close_rate"] > 0.4  # what a distance-only rule would report
    audited = audit(phantom.train, phantom.test, blurred, features=(), n_bootstrap=200)
    assert audited["near_copy_rate"]["value"] <= 0.05
    assert audited["mia_auc"]["ci"][0] < 0.5 < audited["mia_auc"]["ci"][1]


def test_breastmnist_memoriser_caught_and_unseen_real_images_not(breastmnist):
    train, val, test = breastmnist.train, breastmnist.val, breastmnist.test
    privacy = PrivacyAudit(features=(), n_bootstrap=200).fit(train, test)
    # BreastMNIST's test split shares many near-identical images with train: found and set aside
    assert privacy.duplicates_.mean() > 0.25
    privacy.update(planted_memoriser(train.images, noise=0.02))
    caught = privacy.compute()
    assert caught["near_copy_rate"]["value"] >= 0.99
    assert caught["mia_auc"]["value"] > 0.95
    privacy.reset()
    privacy.update(val.images)
    rows = privacy.per_sample()
    unseen = rows["ncc"] < privacy.duplicate_ncc  # val images that are not duplicates of a training image
    assert unseen.sum() > 40
    assert rows.loc[unseen, "near_copy"].mean() <= 0.05
    privacy.reset()
    privacy.update(val.images[unseen.to_numpy()])
    honest = privacy.compute()
    assert honest["mia_auc"]["ci"][0] < 0.5 < honest["mia_auc"]["ci"][1]


# --- streaming, determinism, outputs, errors ----------------------------------------------------------


def test_streaming_in_chunks_equals_one_pass_and_is_deterministic(phantom, tmp_path):
    train, holdout = phantom.train, phantom.test
    copies, fresh = planted_memoriser(train.images, 150, noise=0.05), make_phantom(n=300, size=28, seed=2).train.images[:150]
    synthetic = np.concatenate([copies, fresh])
    whole = audit(train, holdout, synthetic, features=(), n_bootstrap=100)
    streamed = PrivacyAudit(features=(), n_bootstrap=100).fit(train, holdout)
    for start in range(0, len(synthetic), 64):
        streamed.update(synthetic[start : start + 64])
    assert streamed.compute() == whole
    assert 0.4 < whole["near_copy_rate"]["value"] < 0.6
    streamed.plot_pairs(tmp_path / "pairs.png")
    assert (tmp_path / "pairs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.png"]


def test_embedding_and_radiomics_spaces(phantom):
    from genrad.evaluation.embedding import ContrastiveEmbedding

    train, holdout = phantom.train.subset(np.arange(150)), phantom.test
    embedding = ContrastiveEmbedding(steps=30, batch_size=64)
    privacy = PrivacyAudit(features=("embedding", "radiomics"), embedding=embedding, n_bootstrap=100).fit(train, holdout)
    privacy.update(planted_memoriser(train.images, noise=0.02))
    result = privacy.compute()
    assert list(result["spaces"]) == ["pixel", "embedding", "radiomics"]
    for space in result["spaces"].values():
        assert space["dcr_ratio"]["value"] < 0.95
        assert space["mia_auc"]["value"] > 0.6
    again = ContrastiveEmbedding(steps=30, batch_size=64).fit(train.images).transform(holdout.images[:4])
    torch.testing.assert_close(embedding.transform(holdout.images[:4]), again, rtol=0, atol=0)


def test_volumes_are_audited():
    volumes = make_phantom(n=60, size=28, dims=3, seed=0)
    copies = volumes.train.images[:, :, ::-1].copy()  # mirrored along z
    result = audit(volumes.train, volumes.test, copies, features=(), max_shift=1, max_side=12, n_bootstrap=50)
    assert result["near_copy_rate"]["value"] == 1.0 and result["dcr"]["value"] < 1e-2


def test_bad_input_and_unfitted_use(phantom):
    with pytest.raises(NotFittedError):
        PrivacyAudit().update(phantom.train.images)
    with pytest.raises(InputError, match="shape"):
        audit(phantom.train, phantom.test, phantom.train.images[:, :, :20, :20], features=())
    with pytest.raises(InputError, match="features among"):
        PrivacyAudit(features=("sift",)).fit(phantom.train, phantom.test)
    with pytest.raises(InputError, match="disjoint"):
        PrivacyAudit(features=()).fit(phantom.train, phantom.train)
    with pytest.raises(InputError, match="channel-first"):
        audit(phantom.train, phantom.test, phantom.train.images[:, 0], features=())
