"""The training engine: checkpoints, optimizer/RNG round trips, data order, EMA, seeding, budgets."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genrad.core import default_device, seeded_init
from genrad.data import Split
from genrad.errors import InputError
from genrad.models import VAE
from genrad.models.checkpoint import (
    OPTIMIZER,
    STATE,
    WEIGHTS,
    optimizer_state,
    restore_optimizers,
)
from genrad.training import (
    EMA,
    EpochBatchSampler,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)


def toy(n: int = 24) -> Split:
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 2).astype(np.int64)
    images = (rng.random((n, 1, 12, 12)) * (0.5 + 0.5 * labels[:, None, None, None])).astype(np.float32)
    return Split(images, labels)


def tiny_vae() -> VAE:
    return VAE(num_classes=2, channels=(4, 8), latent_dim=4, batch_size=8)


def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    weights = {"a": torch.arange(6.0).view(2, 3), "b": torch.tensor(3)}
    save_checkpoint(tmp_path, weights=weights, config={"x": 1}, state={"step": 5}, extra={"rng/noise": torch.ones(4, dtype=torch.uint8)})
    loaded = load_checkpoint(tmp_path, extra=True)
    assert loaded.config == {"x": 1} and loaded.state["step"] == 5 and "torch" in loaded.state["versions"]
    assert torch.equal(loaded.weights["a"], weights["a"]) and torch.equal(loaded.extra["rng/noise"], torch.ones(4, dtype=torch.uint8))
    for suffix in (".pt", ".pth", ".pkl", ".ckpt"):
        (tmp_path / f"x{suffix}").write_bytes(b"\x80\x04.")
        with pytest.raises(InputError, match="genrad never unpickles"):
            load_checkpoint(tmp_path)
        (tmp_path / f"x{suffix}").unlink()
    (tmp_path / OPTIMIZER).write_bytes((tmp_path / OPTIMIZER).read_bytes() + b" ")
    with pytest.raises(InputError, match="SHA-256"):
        load_checkpoint(tmp_path, extra=True)
    (tmp_path / STATE).write_text("{not json")
    with pytest.raises(InputError, match="valid JSON"):
        load_checkpoint(tmp_path)
    with pytest.raises(InputError, match="no such directory"):
        load_checkpoint(tmp_path / "missing")
    state = {"step": 1}
    save_checkpoint(tmp_path, weights=weights, config={}, state=state)
    recorded = json.loads((tmp_path / STATE).read_text())
    del recorded["files"][WEIGHTS]
    (tmp_path / STATE).write_text(json.dumps(recorded))
    with pytest.raises(InputError, match=r"no SHA-256|none recorded"):
        load_checkpoint(tmp_path)


def test_optimizer_state_round_trips_exactly() -> None:
    def trained(steps: int) -> tuple[nn.Linear, torch.optim.Adam]:
        with seeded_init(0):
            layer = nn.Linear(3, 2)
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
        for _ in range(steps):
            optimizer.zero_grad()
            layer(torch.ones(1, 3)).sum().backward()
            optimizer.step()
        return layer, optimizer

    layer, optimizer = trained(3)
    tensors, meta = optimizer_state({"opt": optimizer})
    json.dumps(meta)
    copy, fresh = trained(0)
    copy.load_state_dict(layer.state_dict())
    restore_optimizers({"opt": fresh}, tensors, json.loads(json.dumps(meta)))
    for module, opt in ((layer, optimizer), (copy, fresh)):
        opt.zero_grad()
        module(torch.ones(1, 3)).sum().backward()
        opt.step()
    assert torch.equal(layer.weight, copy.weight) and torch.equal(layer.bias, copy.bias)


def test_epoch_sampler_is_a_pure_function_of_seed_and_step() -> None:
    sampler = EpochBatchSampler(10, 3, seed=1)
    assert len(sampler) == 3

    def batches_from(step: int) -> list[list[int]]:
        sampler.step = step
        return list(sampler)

    straight = batches_from(0) + batches_from(3) + batches_from(6)
    assert all(len(b) == 3 for b in straight) and len(straight) == 9
    assert straight[:3] != straight[3:6]  # each epoch has its own permutation
    assert batches_from(4) == straight[4:6]  # resuming mid-epoch gives the remaining batches
    assert list(EpochBatchSampler(10, 3, seed=2)) != list(EpochBatchSampler(10, 3, seed=1))


def test_ema_follows_the_weights() -> None:
    with seeded_init(0):
        net = nn.Linear(2, 1)
    average = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    before = average.network.weight.clone()
    average.update(net, step=1000)
    assert torch.allclose(average.network.weight, 0.9 * before + 0.1 * net.weight)
    assert not average.network.weight.requires_grad
    with pytest.raises(ValueError, match="decay"):
        EMA(net, decay=1.0)


def test_seeded_init_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    with seeded_init(5, "x"):
        first = torch.rand(3)
    with seeded_init(5, "x"):
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert default_device().type in ("cpu", "cuda")


def test_budgets_callbacks_and_outputs(tmp_path: Path) -> None:
    seen = []
    model = tiny_vae().fit(toy(), max_steps=50, callbacks=[lambda info: seen.append(info) or info.step >= 3], progress=False)
    assert model.step_ == 3 and [i.step for i in seen] == [1, 2, 3] and seen[-1].images_per_second > 0
    assert tiny_vae().fit(toy(), max_minutes=0.002, progress=False).step_ < 1000
    for bad in (-1, True, 2.0):
        with pytest.raises(InputError, match="max_steps"):
            tiny_vae().fit(toy(), max_steps=bad)
    for bad in (0, "5", float("nan")):
        with pytest.raises(InputError, match="max_minutes"):
            tiny_vae().fit(toy(), max_minutes=bad)
    model = tiny_vae().fit(toy(), max_steps=4, out_dir=tmp_path, progress=False)
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,elapsed_seconds,images_per_second,loss") and history[-1].startswith("4")
    assert (tmp_path / "samples" / "step_0000004.png").exists()
    state = json.loads((tmp_path / STATE).read_text())
    assert state["step"] == 4 and state["seed"] == 0 and state["data_hash"] == toy().content_hash()
    assert state["model_hash"] == model.model_hash()


def test_interrupt_checkpoints_then_raises(tmp_path: Path) -> None:
    def interrupt(info):
        if info.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        tiny_vae().fit(toy(), max_steps=10, out_dir=tmp_path, callbacks=[interrupt], progress=False)
    assert json.loads((tmp_path / STATE).read_text())["step"] == 2
    assert tiny_vae().fit(toy(), max_steps=4, out_dir=tmp_path, resume=True, progress=False).step_ == 4


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_then_resume_gives_the_uninterrupted_weights(tmp_path: Path, signum: int) -> None:
    """SIGTERM (a scheduler's stop) like Ctrl-C: a checkpoint at the step it arrived, then resuming gives exactly the
    weights of an uninterrupted run."""
    def interrupt(info):
        if info.step == 3:
            os.kill(os.getpid(), signum)

    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt):
        tiny_vae().fit(toy(), max_steps=6, out_dir=tmp_path / "stopped", callbacks=[interrupt], progress=False)
    assert signal.getsignal(signum) == before  # the handler in place before training is restored
    assert json.loads((tmp_path / "stopped" / STATE).read_text())["step"] == 3
    resumed = tiny_vae().fit(toy(), max_steps=6, out_dir=tmp_path / "stopped", resume=True, progress=False)
    reference = tiny_vae().fit(toy(), max_steps=6, out_dir=tmp_path / "reference", progress=False)
    assert resumed.model_hash() == reference.model_hash()


def test_resume_refuses_other_data_or_config(tmp_path: Path) -> None:
    tiny_vae().fit(toy(), max_steps=2, out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="same --data"):
        tiny_vae().fit(toy(n=16), max_steps=4, out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(InputError, match="same model and options"):
        VAE(num_classes=2, channels=(4, 8), latent_dim=5, batch_size=8).fit(toy(), max_steps=4, out_dir=tmp_path, resume=True)
    with pytest.raises(InputError, match="checkpoint to resume"):
        tiny_vae().fit(toy(), max_steps=4, out_dir=tmp_path / "new", resume=True)


def test_trainer_parts_can_be_replaced_for_dp_sgd() -> None:
    """Opacus' make_private wraps the trainer's network, optimizer and loader (DP-SGD on the VAE)."""
    opacus = pytest.importorskip("opacus")
    model = tiny_vae()
    trainer = Trainer(model, toy(), seed=0, progress=False)
    before = {k: v.clone() for k, v in model.networks_["vae"].state_dict().items()}
    engine = opacus.PrivacyEngine()
    network, optimizer, loader = engine.make_private(
        module=trainer.networks["vae"], optimizer=trainer.optimizers["vae"], data_loader=trainer.loader,
        noise_multiplier=1.0, max_grad_norm=1.0, noise_generator=torch.Generator().manual_seed(0),
    )
    trainer.networks["vae"], trainer.optimizers["vae"], trainer.loader = network, optimizer, loader
    trainer.run(max_steps=3)
    after = model.networks_["vae"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert engine.get_epsilon(delta=1e-5) > 0
    assert model.sample(2).shape == (2, 1, 12, 12)
