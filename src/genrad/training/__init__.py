"""Training engine: `train` (plain or differentially private), EMA, progress, checkpoints (safetensors + JSON),
resume, budgets (seeding and the device live in `genrad.core`)."""

from genrad.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from genrad.models.ema import EMA
from genrad.training.fitting import train
from genrad.training.trainer import EpochBatchSampler, StepInfo, Trainer

__all__ = ["EMA", "Checkpoint", "EpochBatchSampler", "StepInfo", "Trainer", "load_checkpoint", "save_checkpoint", "train"]
