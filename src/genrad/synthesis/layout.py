"""Where each stage of a genrad run writes its outputs inside a run directory: the one owner of those file names,
used by every writer (`genrad.evaluation.outputs`, the utility protocol, the CLI) and by the pipeline and report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genrad.synthesis.dataset import NPZ

RUN_JSON = "run.json"
REPORT_HTML = "report.html"
FIDELITY_JSON = "fidelity.json"
SAMPLES_PARQUET = "samples.parquet"
FEATURES_REAL = "features_real.parquet"
FEATURES_SYNTHETIC = "features_synthetic.parquet"
PRIVACY_JSON = "privacy.json"
PAIRS_PNG = "pairs.png"
PRIVACY_SAMPLES_CSV = "privacy_samples.csv"
UTILITY_JSON = "utility.json"
SCALING_PNG = "scaling.png"


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run directory: one sub-folder per stage, `run.json` and `report.html` at the top."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

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
        return self.fidelity_dir / FIDELITY_JSON

    @property
    def samples_parquet(self) -> Path:
        return self.fidelity_dir / SAMPLES_PARQUET

    @property
    def features_real(self) -> Path:
        return self.fidelity_dir / FEATURES_REAL

    @property
    def features_synthetic(self) -> Path:
        return self.fidelity_dir / FEATURES_SYNTHETIC

    @property
    def privacy_dir(self) -> Path:
        return self.root / "privacy"

    @property
    def privacy_json(self) -> Path:
        return self.privacy_dir / PRIVACY_JSON

    @property
    def pairs_png(self) -> Path:
        return self.privacy_dir / PAIRS_PNG

    @property
    def utility_dir(self) -> Path:
        return self.root / "utility"

    @property
    def utility_json(self) -> Path:
        return self.utility_dir / UTILITY_JSON

    @property
    def scaling_png(self) -> Path:
        return self.utility_dir / SCALING_PNG

    @property
    def scenarios_dir(self) -> Path:
        return self.root / "scenarios"

    def stage_dir(self, stage: str) -> Path:
        """The folder a stage of `genrad run` writes (``train`` the model, ``generate`` the synthetic set)."""
        return {"train": self.model_dir, "generate": self.synthetic_dir}.get(stage, self.root / stage)

    def stage_started(self, stage: str) -> Path:
        """Written first by a stage: the fingerprint its outputs are being written for."""
        return self.root / f".{stage}.started.json"

    def stage_marker(self, stage: str) -> Path:
        """Written last by a stage: its presence (with a matching config hash) means 'complete'."""
        return self.root / f".{stage}.complete.json"
