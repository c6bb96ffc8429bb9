"""`run_demo`: the pipeline on the built-in phantom with budgets for about 5 minutes on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

from genrad.data.phantom import make_phantom
from genrad.pipeline.config import RunConfig
from genrad.pipeline.run import run_pipeline

DEMO_PHANTOM = {"n": 600, "size": 28, "dims": 2}


def demo_config(data_path: str, *, seed: int = 0) -> RunConfig:
    """Small budgets: a VAE of at most 600 steps or 3 minutes, the fast feature set, a privacy audit in
    pixel and radiomic space (no embedding to train), a quick utility protocol.

    The demo keeps every generated image (the per-sample QA still scores and reports them): a model
    trained for a few minutes may have most samples flagged, and the demo must always reach its report.
    """
    return RunConfig().with_overrides(
        **{
            "seed": seed,
            "data.path": data_path,
            "train.model": "vae",
            "train.budget_minutes": 3.0,
            "train.max_steps": 600,
            "generate.filter": False,
            "fidelity.feature_set": "fast",
            "fidelity.n_bootstrap": 50,
            "privacy.features": ["radiomics"],
            "privacy.n_bootstrap": 200,
            "utility.seeds": 2,
        }
    )


def run_demo(out: str | Path, *, seed: int = 0) -> Path:
    """Write the phantom into `out`, run the pipeline on it and return the report path."""
    out = Path(out)
    data_path = out / "phantom.npz"
    if not data_path.exists():
        make_phantom(seed=seed, **DEMO_PHANTOM).save(str(data_path))
    return run_pipeline(demo_config(str(data_path), seed=seed), out)
