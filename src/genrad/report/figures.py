"""Figures for the report, rendered with matplotlib (Agg) and embedded as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

REAL_COLOUR, SYNTHETIC_COLOUR = "#1f77b4", "#d62728"


def to_data_uri(figure: Figure) -> str:
    """Render `figure` as a PNG data URI and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_data_uri(path: str) -> str:
    """Embed an existing PNG file."""
    with open(path, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")


def middle_slice(images: np.ndarray) -> np.ndarray:
    """(N, H, W) view of (N, C, H, W) or (N, C, D, H, W) images: first channel, middle slice for 3D."""
    images = images[:, 0]
    return images[:, images.shape[1] // 2] if images.ndim == 4 else images


def image_grid(rows: Sequence[tuple[str, np.ndarray]], columns: int = 8) -> str:
    """One row of up to `columns` images per (title, images) pair, on a shared [0, 1] grey scale."""
    figure, axes = plt.subplots(len(rows), columns, figsize=(columns * 1.1, len(rows) * 1.25), squeeze=False)
    for row, (title, images) in enumerate(rows):
        shown = middle_slice(images[:columns]) if len(images) else images
        for column in range(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if column < len(shown):
                axis.imshow(shown[column], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes[row, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    figure.subplots_adjust(wspace=0.05, hspace=0.1)
    return to_data_uri(figure)


def feature_distributions(real: pd.DataFrame, synthetic: pd.DataFrame, features: Sequence[str]) -> str:
    """Histograms of real vs synthetic values for each feature, in the order given."""
    columns = min(4, len(features))
    rows = int(np.ceil(len(features) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 3.0, rows * 2.3), squeeze=False)
    for axis in axes.flat[len(features) :]:
        axis.set_visible(False)
    for axis, feature in zip(axes.flat, features, strict=False):
        values = np.concatenate([real[feature].to_numpy(), synthetic[feature].to_numpy()])
        bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=30)
        axis.hist(real[feature], bins=bins, density=True, alpha=0.55, color=REAL_COLOUR, label="real")
        axis.hist(synthetic[feature], bins=bins, density=True, alpha=0.55, color=SYNTHETIC_COLOUR, label="synthetic")
        axis.set_title(feature, fontsize=7)
        axis.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return to_data_uri(figure)


def training_curves(history: pd.DataFrame) -> str:
    """Every loss column of a training history against its step column."""
    losses = [c for c in history.columns if c not in ("step", "time", "seconds", "images_per_s", "lr")]
    figure, axis = plt.subplots(figsize=(6, 3))
    for column in losses:
        axis.plot(history["step"], history[column], label=column, linewidth=1)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return to_data_uri(figure)
