"""The utility protocol's downstream `Classifier`: learns, is seeded, saves and loads, names bad input."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
import torch
from utility_toys import TINY, blob_cohort, blobs

from genrad.errors import InputError, NotFittedError
from genrad.evaluation.utility.augmentation import augmentation
from genrad.evaluation.utility.classifier import Classifier
from genrad.evaluation.utility.metrics import roc_auc


@pytest.fixture(scope="module")
def cohort():
    return blob_cohort((40, 20))


def test_learns_a_separable_task_and_keeps_global_rng(cohort, one_torch_thread) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    classifier = Classifier(**TINY).fit(cohort.train, cohort.val, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    probabilities = classifier.predict_proba(cohort.test)
    assert probabilities.shape == (30, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert roc_auc(cohort.test.labels, probabilities) > 0.95
    assert 0 < classifier.best_step_ <= TINY["max_steps"]
    assert classifier.history_[0]["step"] == TINY["eval_every"]
    assert np.array_equal(classifier.predict(cohort.test.images), probabilities.argmax(axis=1))


def test_same_seed_same_weights_other_seed_differs(cohort, one_torch_thread) -> None:
    recipe = {**TINY, "batch_size": 16, "max_steps": 10, "augment": True}
    first = Classifier(**recipe).fit(cohort.train, cohort.val, seed=3)
    again = Classifier(**recipe).fit(cohort.train, cohort.val, seed=3)
    other = Classifier(**recipe).fit(cohort.train, cohort.val, seed=4)
    weights = [next(iter(c.network_.state_dict().values())) for c in (first, again, other)]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_save_load_round_trip(cohort, tmp_path, one_torch_thread, umask_022) -> None:
    classifier = Classifier(**TINY, class_weight="balanced").fit(cohort.train, cohort.val, seed=1)
    classifier.save(tmp_path / "clf")
    assert {stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "clf").iterdir()} == {0o644}  # not owner-only
    record = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert record["config"] == classifier.config and "torch" in record["versions"]
    loaded = Classifier.load(tmp_path / "clf")
    assert loaded.config == classifier.config and loaded.best_step_ == classifier.best_step_
    np.testing.assert_array_equal(loaded.predict_proba(cohort.test), classifier.predict_proba(cohort.test))
    with pytest.raises(InputError, match=r"config.json and model.safetensors"):
        Classifier.load(tmp_path / "missing")


def test_class_weight_raises_rare_recall(one_torch_thread) -> None:
    # Overlapping classes, 1 rare image in 10: the unweighted loss favours the majority class.
    rare = blob_cohort((90, 10), seed=5)
    noisy = {**TINY, "max_steps": 80}
    recalls = []
    for class_weight in (None, "balanced"):
        classifier = Classifier(**noisy, class_weight=class_weight).fit(rare.train, rare.val, seed=0)
        scores = classifier.predict_proba(rare.test)[:, 1]
        recalls.append(np.mean(scores[rare.test.labels == 1] > 0.5))
    assert recalls[1] >= recalls[0]


def test_three_dimensional_volumes(one_torch_thread) -> None:
    train = blobs((12, 12), seed=0, size=8, dims=3)
    val = blobs((4, 4), seed=1, size=8, dims=3, name="val")
    classifier = Classifier(spatial_dims=3, **{**TINY, "max_steps": 10, "augment": True}).fit(train, val, seed=0)
    assert classifier.predict_proba(val).shape == (8, 2)


def test_bad_input_is_named(cohort) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Classifier().predict_proba(cohort.test)
    with pytest.raises(InputError, match="one channel count per ResNet stage"):
        Classifier(layers=(1, 1), channels=(8, 16, 32))
    with pytest.raises(InputError, match="spatial_dims 2 or 3"):
        Classifier(spatial_dims=4)
    with pytest.raises(InputError, match="class_weight"):
        Classifier(class_weight="inverse")
    with pytest.raises(InputError, match=r"labels in 0..1"):
        Classifier(num_classes=2).fit(blobs((5, 5, 5), seed=0), cohort.val)
    with pytest.raises(InputError, match="at least two classes"):
        Classifier().fit(cohort.train, blobs((4,), seed=0, name="val"))
    with pytest.raises(InputError, match="3 spatial axes"):
        Classifier(spatial_dims=3).fit(cohort.train, cohort.val)
    with pytest.raises(InputError, match="sample_weight: 60 finite weights"):
        Classifier(**TINY).fit(cohort.train, cohort.val, sample_weight=np.ones(3))
    with pytest.raises(InputError, match="not all zero"):
        Classifier(**TINY).fit(cohort.train, cohort.val, sample_weight=np.zeros(60))
    with pytest.raises(InputError, match="init: a classifier with this architecture"):
        Classifier(**TINY).fit(cohort.train, cohort.val, init=Classifier(**{**TINY, "channels": (4, 8, 8, 8)}))
    with pytest.raises(NotFittedError):
        Classifier(**TINY).fit(cohort.train, cohort.val, init=Classifier(**TINY))


def test_sample_weight_scales_each_image_loss(cohort, one_torch_thread) -> None:
    """A near-zero weight on twice as many label-flipped images leaves the classifier as good as without them;
    at weight 1 they outvote the real labels."""
    train = cohort.train
    flipped = blobs((80, 40), seed=9)
    noisy = np.concatenate([train.images, flipped.images]), np.concatenate([train.labels, 1 - flipped.labels])
    from genrad.data.cohort import Split

    mixed = Split(*noisy)
    recipe = {**TINY, "max_steps": 60, "eval_every": 60}  # scored once, at the end: no early-stopping rescue
    aucs = {}
    for weight in (1.0, 1e-4):
        sample_weight = np.concatenate([np.ones(len(train)), np.full(len(flipped), weight)])
        classifier = Classifier(**recipe).fit(mixed, cohort.val, seed=0, sample_weight=sample_weight)
        aucs[weight] = roc_auc(cohort.test.labels, classifier.predict_proba(cohort.test))
    clean = roc_auc(cohort.test.labels, Classifier(**recipe).fit(train, cohort.val, seed=0).predict_proba(cohort.test))
    assert aucs[1e-4] > 0.95 and clean > 0.95 and aucs[1.0] < 0.5
    ones = Classifier(**recipe).fit(train, cohort.val, seed=0, sample_weight=np.ones(len(train)))
    unweighted = Classifier(**recipe).fit(train, cohort.val, seed=0)
    np.testing.assert_allclose(ones.predict_proba(cohort.test), unweighted.predict_proba(cohort.test), atol=1e-6)


def test_fine_tuning_starts_from_the_pretrained_weights(cohort, one_torch_thread) -> None:
    pretrained = Classifier(**TINY).fit(cohort.train, cohort.val, seed=0)
    tuned = Classifier(**{**TINY, "max_steps": 10}).fit(cohort.train, cohort.val, seed=1, init=pretrained)
    start = tuned.history_[0]
    best = next(h for h in pretrained.history_ if h["step"] == pretrained.best_step_)
    assert start["step"] == 0 and start["val_auc"] == pytest.approx(best["val_auc"])
    # Early stopping may keep the pre-trained weights themselves: fine-tuning never ends worse on val than its start.
    assert max(h["val_auc"] for h in tuned.history_) >= start["val_auc"]
    assert next(iter(pretrained.network_.state_dict().values())).data_ptr() != next(iter(tuned.network_.state_dict().values())).data_ptr()


def test_trivialaugment_is_seeded_leaves_the_global_rng_and_draws_one_operation_per_image(cohort, one_torch_thread) -> None:
    recipe = {**TINY, "batch_size": 16, "max_steps": 10, "augment": "trivialaugment"}
    torch.manual_seed(7)
    before = torch.get_rng_state()
    first = Classifier(**recipe).fit(cohort.train, cohort.val, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    again = Classifier(**recipe).fit(cohort.train, cohort.val, seed=3)
    classical = Classifier(**{**recipe, "augment": True}).fit(cohort.train, cohort.val, seed=3)
    weights = [next(iter(c.network_.state_dict().values())) for c in (first, again, classical)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert classical.augment == "classical" and Classifier(augment=False).augment is None
    transform = augmentation("trivialaugment", spatial_dims=2, seed=0)
    image = torch.from_numpy(cohort.train.images[0])
    outputs = [transform(image) for _ in range(90)]
    unchanged = sum(bool(torch.allclose(out, image)) for out in outputs)
    assert all(out.shape == image.shape and torch.isfinite(out).all() for out in outputs)
    assert 2 <= unchanged <= 30  # the identity is one operation in nine (flip and mild draws change the image)
    volume = blobs((12, 12), seed=0, size=8, dims=3)
    val = blobs((4, 4), seed=1, size=8, dims=3, name="val")
    assert Classifier(spatial_dims=3, **recipe).fit(volume, val, seed=0).predict_proba(val).shape == (8, 2)
    with pytest.raises(InputError, match="augment in"):
        Classifier(augment="randaugment")
