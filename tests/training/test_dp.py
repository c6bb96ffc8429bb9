"""DP-SGD training: the accountant's epsilon is recorded, saved, reloaded and carried to samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from opacus.accountants import RDPAccountant
from opacus.optimizers import DPOptimizer

from genrad.cli.main import main
from genrad.data import load
from genrad.data.phantom import make_phantom
from genrad.errors import InputError
from genrad.models import GAN, VAE
from genrad.models import load as load_model
from genrad.training.dp import ALPHAS, PrivateTrainer, fit_private, refuse_private_run


def small_vae() -> VAE:
    return VAE(num_classes=3, image_size=16, channels=(8, 16), latent_dim=8, batch_size=16, **VAE.private_settings)


@pytest.fixture(scope="module")
def train_split():
    return make_phantom(n=200, size=28, seed=0).train


class StopAt:
    """Callback: stop training after `step` steps (an interruption)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, info) -> bool:
        return info.step >= self.step


def test_fit_private_records_spends_and_saves_epsilon(train_split, tmp_path):
    model = fit_private(small_vae(), train_split, epsilon=4.0, max_steps=6, seed=0, out_dir=tmp_path / "run", progress=False)
    privacy = model.privacy_
    assert 0 < privacy["epsilon"] <= 4.0 and privacy["steps"] == 6 and privacy["noise_multiplier"] > 0
    assert privacy["delta"] == pytest.approx(min(1e-5, 1 / (10 * len(train_split))))
    accountant = RDPAccountant()
    accountant.history = [(privacy["noise_multiplier"], privacy["sample_rate"], 6)]
    assert privacy["epsilon"] == pytest.approx(accountant.get_epsilon(privacy["delta"], alphas=ALPHAS))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["fitted"]["privacy"]
    assert saved == privacy
    reloaded = load_model(tmp_path / "run")
    assert reloaded.privacy_ == privacy and reloaded.model_hash() == model.model_hash()
    again = fit_private(small_vae(), train_split, epsilon=4.0, max_steps=6, seed=0, progress=False)
    assert again.model_hash() == model.model_hash()  # seeded Poisson sampling and noise
    other = fit_private(small_vae(), train_split, epsilon=4.0, max_steps=6, seed=1, progress=False)
    assert other.model_hash() != model.model_hash()
    # a later non-private fit voids the record
    assert not hasattr(reloaded.fit(train_split, max_steps=1, progress=False), "privacy_")


def test_trainer_uses_dp_optimizer_and_more_steps_spend_more(train_split):
    trainer = PrivateTrainer(small_vae(), train_split, epsilon=8.0, steps=20, seed=0, progress=False)
    assert isinstance(trainer.optimizers["vae"], DPOptimizer)
    trainer.run(max_steps=5)
    early = trainer.model.privacy_["epsilon"]
    trainer.run(max_steps=20)
    assert 0 < early < trainer.model.privacy_["epsilon"] <= 8.0


def test_interrupted_dp_run_resumes_to_the_same_weights(train_split, tmp_path):
    whole = fit_private(small_vae(), train_split, epsilon=4.0, max_steps=8, seed=0, out_dir=tmp_path / "whole", progress=False)
    part = tmp_path / "part"
    fit_private(small_vae(), train_split, epsilon=4.0, max_steps=8, seed=0, out_dir=part, callbacks=[StopAt(3)], progress=False)
    assert json.loads((part / "config.json").read_text())["fitted"]["privacy"]["steps"] == 3
    with pytest.raises(InputError, match="original --epsilon"):
        fit_private(small_vae(), train_split, epsilon=2.0, max_steps=8, seed=0, out_dir=part, resume=True, progress=False)
    with pytest.raises(InputError, match="with --dp"):
        refuse_private_run(part)
    resumed = fit_private(small_vae(), train_split, epsilon=4.0, max_steps=8, seed=0, out_dir=part, resume=True, progress=False)
    assert resumed.privacy_ == whole.privacy_
    assert resumed.model_hash() == whole.model_hash()


def test_bad_budgets_and_families_are_refused(train_split, tmp_path):
    n = len(train_split)
    for kwargs, message in [
        ({"epsilon": 0.0}, "epsilon > 0"),
        ({"epsilon": 4.0, "delta": 1.0 / n}, "delta"),
        ({"epsilon": 4.0, "max_grad_norm": 0.0}, "max-grad-norm"),
        ({"epsilon": 1e-4}, "reachable"),
    ]:
        with pytest.raises(InputError, match=message):
            fit_private(small_vae(), train_split, max_steps=4, progress=False, **kwargs)
    with pytest.raises(InputError, match="latent_prior='standard'"):
        fit_private(VAE(num_classes=3, latent_prior="class_gaussian"), train_split, epsilon=4.0, max_steps=2, progress=False)
    with pytest.raises(InputError, match="precision 'fp32'"):
        fit_private(VAE(num_classes=3, latent_prior="standard", precision="bf16"), train_split, epsilon=4.0, max_steps=2,
                    progress=False)
    with pytest.raises(InputError, match="family with DP"):
        fit_private(GAN(num_classes=3), train_split, epsilon=4.0, max_steps=2, progress=False)
    plain = tmp_path / "plain"
    small_vae().fit(train_split, max_steps=2, out_dir=plain, progress=False)
    with pytest.raises(InputError, match="without --dp"):
        fit_private(small_vae(), train_split, epsilon=4.0, max_steps=4, out_dir=plain, resume=True, progress=False)


def test_cli_train_dp_and_the_guarantee_reaches_samples(tmp_path, capsys):
    data = tmp_path / "phantom.npz"
    make_phantom(n=120, size=28, seed=0).save(str(data))
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", str(data), "--model", "vae", "--out", str(run), "--max-steps", "3", "--image-size", "16",
              "--dp", "--epsilon", "8", "--delta", "1e-4"])
    assert (stopped.value.code or 0) == 0
    assert "epsilon" in capsys.readouterr().out
    privacy = load_model(run).privacy_
    assert privacy["delta"] == 1e-4 and 0 < privacy["epsilon"] <= 8
    with pytest.raises(SystemExit) as stopped:
        main(["sample", str(run), "--n", "30", "--out", str(tmp_path / "synthetic.npz")])
    assert load(tmp_path / "synthetic.npz").preprocessing["saved"]["privacy"] == privacy
    from genrad.synthesis import generate

    synthetic = generate(str(run), multiple=0.1, data=load(data), out=tmp_path / "generated", seed=0, progress=False)
    record = json.loads((tmp_path / "generated" / "synthesis.json").read_text())
    assert record["privacy"] == privacy
    assert np.allclose(synthetic.manifest["dp_epsilon"], privacy["epsilon"])
    for args in (["--dp"], ["--epsilon", "8"], ["--dp", "--epsilon", "-1"]):
        with pytest.raises(SystemExit) as stopped:
            main(["train", "--data", str(data), "--model", "vae", "--out", str(tmp_path / "bad"), "--max-steps", "2", *args])
        assert stopped.value.code == 2
        assert capsys.readouterr().err.startswith("error:")
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", str(data), "--model", "vae", "--out", str(run), "--max-steps", "5", "--resume"])
    assert stopped.value.code == 2 and "with --dp" in capsys.readouterr().err
