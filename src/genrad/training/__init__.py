"""Training engine: seeding, EMA, progress, checkpoints (safetensors + JSON), resume, budgets."""

from genrad.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from genrad.training.device import default_device
from genrad.training.ema import EMA
from genrad.training.seeding import derive_seed, make_generator, seeded_init
from genrad.training.trainer import EpochBatchSampler, StepInfo, Trainer

__all__ = [
    "EMA",
    "Checkpoint",
    "EpochBatchSampler",
    "StepInfo",
    "Trainer",
    "default_device",
    "derive_seed",
    "load_checkpoint",
    "make_generator",
    "save_checkpoint",
    "seeded_init",
]
