"""Synthesis at scale: sampling plans, sharded resumable generation, manifest, local and Ray backends.

    synth = genrad.synthesis.generate(model, balance=True, out="synth/", seed=0, workers=2)
    synth.images, synth.labels, synth.manifest   # float32 [0, 1] images, labels, one row per image
"""

from genrad.synthesis.dataset import SyntheticSet, merge_scores
from genrad.synthesis.generate import generate
from genrad.synthesis.plan import SamplingPlan, make_plan, parse_per_class

__all__ = ["SamplingPlan", "SyntheticSet", "generate", "make_plan", "merge_scores", "parse_per_class"]
