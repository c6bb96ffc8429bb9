"""`PrivacyAudit` (fit on train and held-out images, update with synthetic images, compute) and `audit`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genrad.errors import InputError, NotFittedError
from genrad.evaluation.embedding import ContrastiveEmbedding
from genrad.evaluation.privacy.nearest import (
    bootstrap_replicates,
    distance_ratio,
    membership_auc,
    near_copies,
    near_copy_rate,
    near_copy_threshold,
    search,
)
from genrad.evaluation.privacy.spaces import FEATURE_SPACES, EmbeddingSpace, PixelSpace, RadiomicsSpace, Space, as_images, ncc_to_distance
from genrad.evaluation.stats import percentile_interval
from genrad.provenance import atomic_path, hash_arrays, versions


@dataclass(eq=False)
class PrivacyAudit:
    """Streaming privacy audit: `fit(train, holdout)`, `update(synthetic)` chunk by chunk, `compute()`.

    Memory grows by a few numbers per synthetic image (no features are kept), so any number of
    synthetic images can be streamed. See the module docstring for the statistics.

    Args:
        features: feature spaces audited beside the pixel space: ``"embedding"``, ``"radiomics"``.
        quantile: calibration level of the near-copy flag (at most ``1 - quantile`` of unseen held-out
            images are flagged).
        specificity_quantile: calibration level of the train/held-out distance-ratio screen.
        duplicate_ncc: held-out images at least this correlated with a training image are duplicates.
        max_shift: largest shift (pixels, at working resolution) tried by the pixel space. The pixel
            space tries ``2**d (2 max_shift + 1)**d`` variants per image (d spatial axes): for 3D
            volumes prefer ``max_shift=1`` and a smaller ``max_side`` (e.g. 16).
        flip: also try mirror images (every combination of axes).
        max_side: images whose largest side exceeds this are area-downsampled for pixel / embedding.
        smooth: Gaussian standard deviation (pixels at working resolution) applied to every image before
            the pixel-space NCC; 0 compares raw pixels.
        embedding: the encoder of the embedding space (default: `ContrastiveEmbedding(seed=seed)`).
        top_k: closest synthetic/training pairs kept for `plot_pairs`.
        n_bootstrap, confidence: bootstrap resamples and interval level.
        seed: seeds the default embedding and the bootstrap.
    """

    features: Sequence[str] = ("embedding", "radiomics")
    _: KW_ONLY
    quantile: float = 0.99
    specificity_quantile: float = 0.95
    duplicate_ncc: float = 0.97
    max_shift: int = 2
    flip: bool = True
    max_side: int = 64
    smooth: float = 1.0
    embedding: ContrastiveEmbedding | None = None
    radiomics_feature_set: str = "fast"
    top_k: int = 16
    n_bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        self.features = tuple(self.features)

    @property
    def config(self) -> dict[str, Any]:
        """The audit's settings, as recorded in its output."""
        embedding = self.embedding or ContrastiveEmbedding(seed=self.seed)
        return {
            "features": list(self.features),
            "quantile": self.quantile,
            "specificity_quantile": self.specificity_quantile,
            "duplicate_ncc": self.duplicate_ncc,
            "max_shift": self.max_shift,
            "flip": self.flip,
            "max_side": self.max_side,
            "smooth": self.smooth,
            "embedding": embedding.config if "embedding" in self.features else None,
            "radiomics_feature_set": self.radiomics_feature_set if "radiomics" in self.features else None,
            "top_k": self.top_k,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
            "seed": self.seed,
        }

    def fit(self, train: Any, holdout: Any) -> PrivacyAudit:
        """Fit the spaces on `train`; find held-out duplicates; calibrate thresholds on the rest.

        `train` and `holdout` are `genrad.data.Split`s or float arrays ``(N, C, *spatial)`` in [0, 1].
        """
        self._check_options()
        train_images = as_images(train, "train")
        holdout_images = as_images(holdout, "holdout", like=train_images)
        self.spaces_ = [space.fit(train_images) for space in self._make_spaces()]
        self.train_references_ = [space.references(train_images) for space in self.spaces_]
        holdout_distance = np.stack(
            [search(s, holdout_images, [r])[0].distance for s, r in zip(self.spaces_, self.train_references_)], axis=1
        )
        self.duplicates_ = holdout_distance[:, 0] <= ncc_to_distance(self.duplicate_ncc)
        if self.duplicates_.all():
            raise InputError(
                "held-out images that are not copies of training images",
                f"all {len(holdout_images)} held-out images have pixel NCC >= {self.duplicate_ncc} with a training image",
                "pass a held-out split disjoint from the training split",
                source="holdout",
            )
        unseen = holdout_images[torch.as_tensor(~self.duplicates_)]
        if len(unseen) < 2:
            raise InputError(
                "at least 2 held-out images that are not copies of training images",
                f"{len(unseen)} of {len(holdout_images)}",
                "pass a larger held-out split disjoint from the training split",
                source="holdout",
            )
        self.holdout_references_ = [space.references(unseen) for space in self.spaces_]
        self.holdout_distance_ = holdout_distance[~self.duplicates_]
        itself = np.arange(len(unseen))
        to_other_holdout = np.stack(
            [search(s, unseen, [r], exclude=itself)[0].distance for s, r in zip(self.spaces_, self.holdout_references_)],
            axis=1,
        )
        self.holdout_ratio_ = distance_ratio(self.holdout_distance_, to_other_holdout)
        self.thresholds_ = np.array([near_copy_threshold(d, self.quantile) for d in self.holdout_distance_.T])
        self.ratio_thresholds_ = np.array([near_copy_threshold(r, self.specificity_quantile) for r in self.holdout_ratio_.T])
        self.train_images_ = train_images
        self.data_hashes_ = {"train": hash_arrays(train_images.numpy()), "holdout": hash_arrays(holdout_images.numpy())}
        self.reset()
        return self

    def reset(self) -> None:
        """Forget the synthetic images seen so far (the fitted reference is kept)."""
        self._check_fitted()
        self._distance: list[np.ndarray] = []
        self.distance_ratio: list[np.ndarray] = []
        self._index: list[np.ndarray] = []
        self._variant: list[np.ndarray] = []
        self._member = np.full((len(self.spaces_), len(self.train_images_)), np.inf)
        self._nonmember = np.full((len(self.spaces_), len(self.holdout_distance_)), np.inf)
        self._pairs: list[tuple[float, int, np.ndarray, int, int, bool]] = []
        self._digest = hashlib.sha256()
        self._seen = 0

    def update(self, synthetic: Any) -> None:
        """Add a chunk of synthetic images (array ``(B, C, *spatial)`` in [0, 1], Tensor or Split)."""
        self._check_fitted()
        images = as_images(synthetic, "synthetic", like=self.train_images_)
        self._digest.update(images.numpy().tobytes())
        to_train, to_holdout = [], []
        for space, train_ref, holdout_ref in zip(self.spaces_, self.train_references_, self.holdout_references_):
            found_train, found_holdout = search(space, images, [train_ref, holdout_ref])
            to_train.append(found_train)
            to_holdout.append(found_holdout)
        distance = np.stack([n.distance for n in to_train], axis=1)
        ratio = distance_ratio(distance, np.stack([n.distance for n in to_holdout], axis=1))
        self._distance.append(distance)
        self.distance_ratio.append(ratio)
        self._index.append(np.stack([n.index for n in to_train], axis=1))
        self._variant.append(to_train[0].variant)
        self._member = np.minimum(self._member, np.stack([n.reference_distance for n in to_train]))
        self._nonmember = np.minimum(self._nonmember, np.stack([n.reference_distance for n in to_holdout]))
        pixel = to_train[0]
        flagged = self._flags(distance[:, 0], ratio[:, 0], 0)
        for i in np.argsort(pixel.distance, kind="stable")[: self.top_k]:
            image = images[i].numpy()
            self._pairs.append(
                (float(pixel.distance[i]), self._seen + int(i), image, int(pixel.index[i]), int(pixel.variant[i]),
                 bool(flagged[i]))
            )
        self._pairs = sorted(self._pairs, key=lambda pair: (pair[0], pair[1]))[: self.top_k]
        self._seen += len(images)

    def compute(self) -> dict[str, Any]:
        """The audit as a JSON-ready dict: top-level ``near_copy_rate``, ``dcr``, ``dcr_ratio`` and
        ``mia_auc`` (pixel space, each ``{"value", "ci", ...}``), per-space figures and provenance."""
        self._check_fitted()
        if not self._seen:
            raise InputError("at least one synthetic image", "none", "call update(synthetic) before compute()", source="PrivacyAudit")
        synthetic, ratio = np.concatenate(self._distance), np.concatenate(self.distance_ratio)
        spaces = {space.name: self._space_summary(k, synthetic[:, k], ratio[:, k]) for k, space in enumerate(self.spaces_)}
        pixel = spaces["pixel"]
        return {
            "near_copy_rate": pixel["near_copy_rate"],
            "dcr": pixel["dcr"],
            "dcr_ratio": pixel["dcr_ratio"],
            "mia_auc": pixel["mia_auc"],
            "spaces": spaces,
            "holdout_duplicates": {
                "count": int(self.duplicates_.sum()),
                "rate": float(self.duplicates_.mean()),
                "ncc": self.duplicate_ncc,
                "note": "held-out images this close to a training image are left out of calibration and non-members",
            },
            "n": {
                "train": len(self.train_images_),
                "holdout": len(self.duplicates_),
                "holdout_unseen": len(self.holdout_distance_),
                "synthetic": self._seen,
            },
            "config": self.config,
            "provenance": {
                "versions": versions(),
                "seed": self.seed,
                "data_hashes": {**self.data_hashes_, "synthetic": self._digest.hexdigest()},
            },
        }

    def per_sample(self) -> pd.DataFrame:
        """One row per synthetic image: near-copy flag, NCC, and per space its DCR and nearest training index."""
        self._check_fitted()
        distance, ratio, index = np.concatenate(self._distance), np.concatenate(self.distance_ratio), np.concatenate(self._index)
        table: dict[str, np.ndarray] = {
            "near_copy": self._flags(distance[:, 0], ratio[:, 0], 0),
            "ncc": 1 - distance[:, 0] ** 2 / 2,
            "train_holdout_ratio": ratio[:, 0],
        }
        for k, space in enumerate(self.spaces_):
            table[f"dcr_{space.name}"] = distance[:, k]
            table[f"nearest_{space.name}"] = index[:, k]
        return pd.DataFrame(table)

    def plot_pairs(self, path: str | Path) -> Path:
        """Write the `top_k` closest synthetic/training pairs (pixel space) side by side as a PNG grid."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._check_fitted()
        per_row = 4
        rows = max(1, math.ceil(len(self._pairs) / per_row))
        figure = Figure(figsize=(2 * per_row * 1.5, rows * 1.9))
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, 2 * per_row, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        threshold = 1 - self.thresholds_[0] ** 2 / 2
        for k, (distance, synthetic_id, image, train_id, variant, flagged) in enumerate(self._pairs):
            left, right = axes[k // per_row, 2 * (k % per_row)], axes[k // per_row, 2 * (k % per_row) + 1]
            left.imshow(_display(image), cmap="gray", vmin=0, vmax=1)
            right.imshow(_display(self.train_images_[train_id].numpy()), cmap="gray", vmin=0, vmax=1)
            flag = " near-copy" if flagged else ""
            left.set_title(f"synthetic {synthetic_id}\nncc {1 - distance**2 / 2:.3f}{flag}", fontsize=7)
            right.set_title(f"train {train_id}\n{self.spaces_[0].describe(variant)}", fontsize=7)
        figure.suptitle(
            f"Closest synthetic (left) / training (right) pairs; near-copy when ncc > {threshold:.3f}"
            f" and train/held-out distance ratio < {self.ratio_thresholds_[0]:.3f}",
            fontsize=9,
        )
        figure.tight_layout()
        path = Path(path)
        with atomic_path(path) as temp:
            figure.savefig(temp, format="png", dpi=110)
        return path

    def _flags(self, distance: np.ndarray, ratio: np.ndarray, k: int) -> np.ndarray:
        synthetic = np.stack([distance, ratio], axis=1)
        return near_copies(synthetic, self._holdout_pairs(k), self.quantile, self.specificity_quantile)

    def _holdout_pairs(self, k: int) -> np.ndarray:
        """``(Nh, 2)``: each unseen held-out image's distance to train and its train/held-out ratio (space k)."""
        return np.stack([self.holdout_distance_[:, k], self.holdout_ratio_[:, k]], axis=1)

    def _space_summary(self, k: int, synthetic: np.ndarray, ratio: np.ndarray) -> dict[str, Any]:
        holdout, quantile = self.holdout_distance_[:, k], self.quantile
        members, nonmembers = -self._member[k], -self._nonmember[k]
        threshold = float(self.thresholds_[k])
        flags = self._flags(synthetic, ratio, k)
        paired_synthetic, paired_holdout = np.stack([synthetic, ratio], axis=1), self._holdout_pairs(k)
        summary: dict[str, Any] = {
            "near_copy_rate": {
                "value": float(flags.mean()),
                "ci": self._ci(
                    lambda s, h: near_copy_rate(s, h, quantile, self.specificity_quantile), paired_synthetic, paired_holdout
                ),
                "count": int(flags.sum()),
                "threshold": threshold,
                "ratio_threshold": float(self.ratio_thresholds_[k]),
                "close_rate": float((synthetic < threshold).mean()),
                "quantile": self.quantile,
                "specificity_quantile": self.specificity_quantile,
            },
            "dcr": {"value": float(np.median(synthetic)), "ci": self._ci(np.median, synthetic), "holdout": float(np.median(holdout))},
            "dcr_ratio": {
                "value": float(np.median(synthetic) / np.median(holdout)),
                "ci": self._ci(lambda s, h: float(np.median(s) / np.median(h)), synthetic, holdout),
            },
            "mia_auc": {
                "value": membership_auc(members, nonmembers),
                "ci": self._ci(membership_auc, members, nonmembers),
                "attack": "distance to the closest synthetic image (Chen et al. 2020)",
                "members": len(members),
                "non_members": len(nonmembers),
            },
        }
        if self.spaces_[k].name == "pixel":
            summary["near_copy_rate"]["threshold_ncc"] = 1 - threshold**2 / 2
        return summary

    def _ci(self, statistic: Callable[..., float], *samples: np.ndarray) -> list[float | None]:
        replicates = bootstrap_replicates(statistic, *samples, n_resamples=self.n_bootstrap, seed=self.seed)
        return percentile_interval(replicates, self.confidence)

    def _make_spaces(self) -> list[Space]:
        spaces: list[Space] = [PixelSpace(self.max_shift, self.flip, self.max_side, self.smooth)]
        if "embedding" in self.features:
            spaces.append(EmbeddingSpace(self.embedding or ContrastiveEmbedding(seed=self.seed), self.flip, self.max_side))
        if "radiomics" in self.features:
            spaces.append(RadiomicsSpace(self.radiomics_feature_set))
        return spaces

    def _check_options(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURE_SPACES))
        if unknown:
            raise InputError(
                f"features among {FEATURE_SPACES}", repr(unknown), "choose listed feature spaces (or none)", source="PrivacyAudit"
            )
        if not (0.5 <= self.quantile < 1 and 0.5 <= self.specificity_quantile < 1):
            raise InputError(
                "0.5 <= quantile < 1 and 0.5 <= specificity_quantile < 1",
                f"quantile={self.quantile}, specificity_quantile={self.specificity_quantile}",
                "use e.g. 0.99 and 0.95",
                source="PrivacyAudit",
                argument="quantile" if not 0.5 <= self.quantile < 1 else "specificity_quantile",
            )
        if not 0 < self.duplicate_ncc <= 1:
            raise InputError("0 < duplicate_ncc <= 1", str(self.duplicate_ncc), "use e.g. 0.97", source="PrivacyAudit")
        if self.smooth < 0:
            raise InputError(
                "smooth >= 0 (pixels)", str(self.smooth), "use e.g. 1.0, or 0 for raw pixels", source="PrivacyAudit"
            )
        if self.n_bootstrap < 1 or not 0 < self.confidence < 1 or self.top_k < 0:
            raise InputError(
                "n_bootstrap >= 1, 0 < confidence < 1 and top_k >= 0",
                f"n_bootstrap={self.n_bootstrap}, confidence={self.confidence}, top_k={self.top_k}",
                "pass valid settings (e.g. --bootstrap 1000)",
                source="PrivacyAudit",
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "spaces_"):
            raise NotFittedError(self)


def audit(train: Any, holdout: Any, synthetic: Any, *, chunk_size: int = 512, **options: Any) -> dict[str, Any]:
    """Privacy audit of `synthetic` against `train` (members) and `holdout` (non-members).

    Options are those of `PrivacyAudit`; returns `PrivacyAudit.compute()`.
    """
    privacy = PrivacyAudit(**options).fit(train, holdout)
    images = as_images(synthetic, "synthetic", like=privacy.train_images_)
    for chunk in images.split(chunk_size):
        privacy.update(chunk)
    return privacy.compute()


def _display(image: np.ndarray) -> np.ndarray:
    """A 2D (or RGB) view of one channel-first image; 3D volumes show their middle slice."""
    if image.ndim == 4:
        image = image[:, image.shape[1] // 2]
    return np.moveaxis(image, 0, -1) if image.shape[0] == 3 else image[0]
