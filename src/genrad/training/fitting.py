"""`train`: the one way genrad trains a generator, shared by the command line and the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from genrad.errors import InputError


def train(
    model: Any,
    data: Any,
    *,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    epsilon: float | None = None,
    delta: float | None = None,
    max_grad_norm: float = 1.0,
    callbacks: Iterable[Callable[..., Any]] = (),
    progress: bool = True,
) -> Any:
    """Fit `model` on `data` and return it: plainly, or with DP-SGD when a privacy budget `epsilon` is given
    (`genrad.training.dp.fit_private`; build the model with ``private=True``). A DP run is never resumed without DP,
    and `resume` needs a checkpoint in `out_dir`."""
    if resume and (out_dir is None or not (Path(out_dir) / "training_state.json").exists()):
        raise InputError("resume with a checkpoint in the output folder", f"no training_state.json in {out_dir}",
                         "start a new run (drop --resume), or point --out at the interrupted run", argument="resume")
    if epsilon is not None:
        from genrad.training.dp import fit_private

        return fit_private(model, data, epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm, max_steps=max_steps,
                           max_minutes=max_minutes, seed=seed, callbacks=callbacks, out_dir=out_dir, resume=resume,
                           progress=progress)
    if resume and out_dir is not None:
        from genrad.training.dp import refuse_private_run

        refuse_private_run(out_dir)
    return model.fit(data, max_steps=max_steps, max_minutes=max_minutes, seed=seed, callbacks=callbacks, out_dir=out_dir,
                     resume=resume, progress=progress)
