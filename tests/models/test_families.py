"""Family-specific properties: DiffAugment, classifier-free guidance, the VAE objective, network sizes."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import toy_split

from genrad.errors import InputError
from genrad.models import GAN, VAE, Diffusion, build
from genrad.models.blocks import ConditionEmbedding, default_channels
from genrad.models.diffusion import diffusion_channels
from genrad.models.gan import _shift, diff_augment
from genrad.models.vae import LatentPrior


def test_diff_augment_is_seeded_differentiable_and_shape_preserving() -> None:
    x = torch.rand(4, 1, 16, 16, requires_grad=True)
    first = diff_augment(x, torch.Generator().manual_seed(0))
    assert first.shape == x.shape
    assert torch.equal(first, diff_augment(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, diff_augment(x, torch.Generator().manual_seed(1)))
    first.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    volume = diff_augment(torch.rand(2, 1, 8, 8, 8), torch.Generator().manual_seed(0))
    assert volume.shape == (2, 1, 8, 8, 8)
    cut = diff_augment(torch.ones(64, 1, 16, 16) * 5, torch.Generator().manual_seed(0), translation=0.0)
    zero_fraction = float((cut == 0).float().mean())
    assert 0.1 < zero_fraction < 0.3  # cutout removes a box of half the size per axis (<= 1/4 of the image)


def test_shift_moves_pixels_and_fills_zeros() -> None:
    x = torch.arange(5.0).view(1, 1, 1, 5).repeat(2, 1, 1, 1)
    out = _shift(x, [torch.tensor([0, 0]), torch.tensor([1, -2])])
    assert out[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 2.0, 3.0]
    assert out[1, 0, 0].tolist() == [2.0, 3.0, 4.0, 0.0, 0.0]


def test_guidance_zero_ignores_the_condition() -> None:
    """With w = 0 only the unconditional branch remains: samples no longer depend on the label."""
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=2, batch_size=8, guidance_scale=0.0)
    model.fit(toy_split(), max_steps=2, progress=False)
    assert torch.equal(model.sample(3, labels=0, generator=1), model.sample(3, labels=1, generator=1))
    guided = Diffusion(**{**model.config, "guidance_scale": 3.0}).fit(toy_split(), max_steps=2, progress=False)
    assert not torch.equal(guided.sample(3, labels=0, generator=1), guided.sample(3, labels=1, generator=1))
    assert isinstance(guided.networks_["unet"].class_embedding, ConditionEmbedding)


def test_condition_embedding_adds_covariates() -> None:
    embedding = ConditionEmbedding(3, 2, 4)
    labels = torch.tensor([0, 1])
    plain = embedding((labels, torch.zeros(2, 2)))
    assert torch.equal(plain, embedding.classes(labels))
    assert not torch.equal(plain, embedding((labels, torch.ones(2, 2))))


def test_vae_latent_prior_follows_the_covariates() -> None:
    """The fitted prior recovers a per-class linear covariate -> latent link and the residual spread."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat_interleave(500)
    covariates = torch.randn((1000, 1), generator=generator)
    slope = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.5, 3.0]])  # per class: latent means = slope[y] * c + y
    mu = slope[labels] * covariates + labels[:, None] + 0.1 * torch.randn((1000, 3), generator=generator)
    prior = LatentPrior(num_classes=2, latent_dim=3, num_covariates=1)
    prior.fit(mu, torch.full_like(mu, -10.0), labels, covariates)
    z = prior.sample(labels, covariates, torch.randn((1000, 3), generator=generator))
    for k in range(2):
        rows = labels == k
        fitted = torch.linalg.lstsq(torch.cat([torch.ones(500, 1), covariates[rows]], dim=1), z[rows]).solution
        torch.testing.assert_close(fitted[1], slope[k], atol=0.05, rtol=0)
        torch.testing.assert_close(fitted[0], torch.full((3,), float(k)), atol=0.05, rtol=0)
    residual = z - slope[labels] * covariates - labels[:, None]
    assert 0.08 < float(residual.std()) < 0.12


def test_vae_kl_annealing_and_temperature() -> None:
    model = VAE(num_classes=2, channels=(8, 16), latent_dim=4, batch_size=8, kl_warmup_steps=100, temperature=0.0)
    model.fit(toy_split(), max_steps=2, progress=False)
    # temperature 0 decodes z = 0: one image per class, whatever the seed (rows of a batch may differ
    # in the last bit: CPU kernels vectorise across the batch)
    torch.testing.assert_close(model.sample(2, labels=1, generator=1)[0], model.sample(2, labels=1, generator=9)[1], rtol=0, atol=1e-6)
    assert not torch.equal(model.sample(1, labels=0), model.sample(1, labels=1))


@pytest.mark.parametrize("size, levels", [(28, 3), (64, 4), (128, 5)])
def test_default_sizes_reach_a_four_pixel_bottleneck(size: int, levels: int) -> None:
    assert len(default_channels(size, 2)) - 1 == levels
    assert max(default_channels(32, 3)) <= 128
    assert len(diffusion_channels(size, 2)) >= 3


def test_padding_is_invisible() -> None:
    model = GAN(num_classes=2, channels=(8, 16, 32, 32), latent_dim=4, batch_size=8).fit(toy_split(), max_steps=1, progress=False)
    assert model.net_shape_ == (1, 32, 32) and model.image_shape == (1, 28, 28)
    assert model.sample(2).shape == (2, 1, 28, 28)
    dataset = model.model_space(toy_split())
    assert dataset.tensors[0].shape[1:] == (1, 32, 32)
    assert torch.allclose(model._crop(dataset.tensors[0]), torch.from_numpy(toy_split().images) * 2 - 1)


def guided(model: Diffusion, x: torch.Tensor, t: float, labels: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
    """The prediction the sampler steps with under `model`'s guidance settings."""
    return model.guidance()(model.network("unet"), x, t, labels, covariates)


def test_noise_schedules_and_checkpoints_saved_before_the_option(tmp_path) -> None:
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=2, batch_size=8)
    betas = model._noise_scheduler().betas
    assert float(betas[0]) == pytest.approx(1e-4) and float(betas[-1]) == pytest.approx(0.02)
    scaled = Diffusion(num_classes=2, noise_schedule="scaled_linear")._noise_scheduler().betas
    assert float(scaled[0]) == pytest.approx(0.0015) and float(scaled[-1]) == pytest.approx(0.0195)
    for bad in ("cosine", ["linear"]):  # a list is unhashable: refused, not a TypeError from the dict lookup
        with pytest.raises(InputError, match="noise_schedule one of"):
            Diffusion(num_classes=2, noise_schedule=bad)
    model.fit(toy_split(), max_steps=1, progress=False).save(tmp_path)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    del config["config"]["noise_schedule"]  # as written before the option existed
    config_path.write_text(json.dumps(config))
    state_path = tmp_path / "training_state.json"  # ... and before config.json was hashed
    state = json.loads(state_path.read_text())
    del state["files"]["config.json"]
    state_path.write_text(json.dumps(state))
    older = Diffusion.load(tmp_path)
    assert older.noise_schedule == "scaled_linear"  # the schedule such models were trained with
    assert Diffusion.from_config(older.config).noise_schedule == "scaled_linear"


def test_min_snr_weights_follow_hang_et_al_and_change_training() -> None:
    plain = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=2, batch_size=8)
    weighted = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=2, batch_size=8, min_snr_gamma=5.0)
    timesteps = torch.tensor([0, 50, 300, 999])
    assert torch.equal(plain._loss_weights(timesteps, plain._noise_scheduler()), torch.ones(4))
    alpha_bar = weighted._noise_scheduler().alphas_cumprod[timesteps]
    snr = alpha_bar / (1 - alpha_bar)
    expected = torch.minimum(snr, torch.tensor(5.0)) / (snr + 1)
    assert torch.allclose(weighted._loss_weights(timesteps, weighted._noise_scheduler()), expected)
    all_snr = weighted._noise_scheduler().alphas_cumprod / (1 - weighted._noise_scheduler().alphas_cumprod)
    # peaks at gamma / (gamma + 1) where SNR crosses gamma
    weights = weighted._loss_weights(torch.arange(1000), weighted._noise_scheduler())
    assert float(weights.max()) <= 5 / 6 + 1e-6 and int(weights.argmax()) == int((all_snr - 5.0).abs().argmin())
    first = plain.fit(toy_split(), max_steps=2, progress=False).sample(2, generator=torch.Generator().manual_seed(0))
    second = weighted.fit(toy_split(), max_steps=2, progress=False).sample(2, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(first, second)
    with pytest.raises(InputError, match="min_snr_gamma"):
        Diffusion(num_classes=2, scheduler="rflow", min_snr_gamma=5.0)
    with pytest.raises(InputError, match="min_snr_gamma"):
        Diffusion(num_classes=2, min_snr_gamma=0.0)


def test_sampling_eta_adds_seeded_noise_only_when_asked() -> None:
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=3, batch_size=8).fit(
        toy_split(), max_steps=2, progress=False)
    deterministic = model.sample(3, generator=torch.Generator().manual_seed(0))
    model.sampling_eta = 1.0
    stochastic = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(stochastic, model.sample(3, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(stochastic, model.sample(3, generator=torch.Generator().manual_seed(1)))
    assert not torch.allclose(stochastic, deterministic)
    model.sampling_eta = 0.0
    assert torch.equal(deterministic, model.sample(3, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(InputError, match="sampling_eta"):
        Diffusion(num_classes=2, sampling_eta=1.5)
    with pytest.raises(InputError, match="sampling_eta"):
        Diffusion(num_classes=2, scheduler="rflow", sampling_eta=0.5)


def test_guidance_interval_limits_guidance_to_its_noise_levels() -> None:
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=4, batch_size=8, guidance_scale=3.0).fit(
        toy_split(), max_steps=2, progress=False)
    x, labels, covariates = torch.randn(2, 1, 16, 16), torch.tensor([0, 1]), torch.zeros(2, 0)
    guided_high = guided(model, x, 900, labels, covariates)
    model.guidance_interval = (0.2, 0.6)
    conditional_high = guided(model, x, 900, labels, covariates)
    model.guidance_scale = 1.0
    assert torch.allclose(conditional_high, guided(model, x, 900, labels, covariates))  # outside: no guidance
    assert not torch.allclose(conditional_high, guided_high)
    model.guidance_scale = 3.0
    inside = guided(model, x, 400, labels, covariates)
    model.guidance_interval = (0.0, 1.0)
    assert torch.allclose(inside, guided(model, x, 400, labels, covariates), atol=1e-6)  # inside: guided as before
    with pytest.raises(InputError, match="guidance_interval"):
        Diffusion(num_classes=2, guidance_interval=(0.6, 0.2))
    assert Diffusion.from_config(model.config).guidance_interval == (0.0, 1.0)  # JSON lists come back as tuples


def test_with_sampling_changes_only_sampling_settings_of_a_trained_model() -> None:
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=3, batch_size=8).fit(
        toy_split(), max_steps=2, progress=False)
    weights = model.model_hash()
    default = model.sample(3, labels=0, generator=1)
    assert model.with_sampling(guidance_scale=4.0) is model
    assert model.config["guidance_scale"] == 4.0 and model.model_hash() == weights
    assert not torch.equal(default, model.sample(3, labels=0, generator=1))
    assert torch.equal(default, model.with_sampling(guidance_scale=1.5).sample(3, labels=0, generator=1))
    with pytest.raises(InputError, match="guidance_scale >= 0"):
        model.with_sampling(guidance_scale=-1.0)
    with pytest.raises(InputError, match="learning_rate"):  # changes what the model learns: a training argument
        model.with_sampling(learning_rate=1e-3)
    assert model.config["guidance_scale"] == 1.5
    assert model.with_sampling(guidance_scale=None).config["guidance_scale"] == 1.5  # None: unchanged
    with pytest.raises(InputError, match="VAE sampling settings among: none"):
        VAE(num_classes=2).with_sampling(guidance_scale=2.0)
    assert VAE(num_classes=2).with_sampling(guidance_scale=None).config == VAE(num_classes=2).config


def test_build_keeps_defaults_for_none_and_routes_sampling_settings() -> None:
    assert build("diffusion", num_classes=2, guidance_scale=None, guide_step=None).config == Diffusion(num_classes=2).config
    built = build("diffusion", num_classes=2, channels=(8, 16), guidance_scale=3.0, guidance_interval=(0.0, 0.2))
    assert built.config == Diffusion(num_classes=2, channels=(8, 16), guidance_scale=3.0, guidance_interval=(0.0, 0.2)).config
    assert build("vae", num_classes=2, guidance_scale=None).config == VAE(num_classes=2).config
    with pytest.raises(InputError, match="VAE sampling settings among: none"):
        build("vae", num_classes=2, guidance_scale=2.0)
    with pytest.raises(InputError, match="a model family among"):
        build("flow", num_classes=2)


def test_autoguidance_keeps_an_earlier_snapshot_and_guides_with_it(tmp_path) -> None:
    """The guide is the EMA UNet at `guide_step`, saved and resumed with the model; guidance uses its
    conditional prediction instead of the unconditional one; before the guide step it falls back to CFG."""
    common = {"num_classes": 2, "channels": (8, 16), "num_inference_steps": 3, "batch_size": 8, "guidance_scale": 2.0}
    model = Diffusion(**common, guide_step=2).fit(toy_split(), max_steps=4, seed=0, progress=False)
    snapshot = Diffusion(**common).fit(toy_split(), max_steps=2, seed=0, progress=False)
    for key, value in snapshot.network("unet").state_dict().items():
        assert torch.equal(model.guide_.state_dict()[key], value), key
    final = model.network("unet").state_dict()
    assert any(not torch.equal(model.guide_.state_dict()[key], value) for key, value in final.items())
    plain = Diffusion(**common).fit(toy_split(), max_steps=4, seed=0, progress=False)
    assert all(torch.equal(plain.network("unet").state_dict()[key], value) for key, value in final.items())  # training unchanged
    x, labels, covariates = torch.randn(2, 1, 16, 16), torch.tensor([0, 1]), torch.zeros(2, 0)
    unet, guide = model.network("unet"), model.guide_
    with torch.no_grad():
        conditional = unet(x, torch.full((2,), 500.0), class_labels=(labels, covariates))
        weak = guide(x, torch.full((2,), 500.0), class_labels=(labels, covariates))
        assert torch.allclose(guided(model, x, 500, labels, covariates), weak + 2.0 * (conditional - weak), atol=1e-6)
        assert not torch.allclose(guided(model, x, 500, labels, covariates), guided(plain, x, 500, labels, covariates))
    model.save(tmp_path / "run")
    loaded = Diffusion.load(tmp_path / "run")
    assert torch.equal(loaded.sample(3, generator=5), model.sample(3, generator=5))
    resumed = Diffusion(**common, guide_step=2)
    resumed.fit(toy_split(), max_steps=3, seed=0, out_dir=tmp_path / "resumed", progress=False)
    resumed.fit(toy_split(), max_steps=4, seed=0, out_dir=tmp_path / "resumed", resume=True, progress=False)
    assert resumed.model_hash() == model.model_hash()
    early = Diffusion(**common, guide_step=10).fit(toy_split(), max_steps=2, seed=0, progress=False)
    with pytest.warns(UserWarning, match="not trained past guide_step 10"):
        cfg = early.sample(2, generator=1)
    assert torch.equal(cfg, Diffusion(**common).fit(toy_split(), max_steps=2, seed=0, progress=False).sample(2, generator=1))
    with pytest.raises(InputError, match="guide_step"):
        Diffusion(num_classes=2, guide_step=0)
