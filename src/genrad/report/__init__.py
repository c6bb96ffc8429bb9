"""One self-contained HTML report per run: grids, pairs, feature plots, metric tables, curves."""

from genrad.report.build import build

__all__ = ["build"]
