"""Where each stage of a genrad run writes its outputs inside a run directory (read by the pipeline and the report)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genrad.synthesis.dataset import NPZ


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run directory: one sub-folder per stage, `run.json` and `report.html` at the top."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def synthetic_dir(self) -> Path:
        return self.root / "synthetic"

    @property
    def synthetic_npz(self) -> Path:
        return self.synthetic_dir / NPZ

    @property
    def fidelity_dir(self) -> Path:
        return self.root / "fidelity"

    @property
    def fidelity_json(self) -> Path:
        return self.fidelity_dir / "fidelity.json"

    @property
    def samples_parquet(self) -> Path:
        return self.fidelity_dir / "samples.parquet"

    @property
    def features_real(self) -> Path:
        return self.fidelity_dir / "features_real.parquet"

    @property
    def features_synthetic(self) -> Path:
        return self.fidelity_dir / "features_synthetic.parquet"

    @property
    def privacy_dir(self) -> Path:
        return self.root / "privacy"

    @property
    def privacy_json(self) -> Path:
        return self.privacy_dir / "privacy.json"

    @property
    def pairs_png(self) -> Path:
        return self.privacy_dir / "pairs.png"

    @property
    def utility_dir(self) -> Path:
        return self.root / "utility"

    @property
    def utility_json(self) -> Path:
        return self.utility_dir / "utility.json"

    @property
    def scaling_png(self) -> Path:
        return self.utility_dir / "scaling.png"

    @property
    def scenarios_dir(self) -> Path:
        return self.root / "scenarios"

    def stage_marker(self, stage: str) -> Path:
        """Written last by a stage: its presence (with a matching config hash) means 'complete'."""
        return self.root / f".{stage}.complete.json"
