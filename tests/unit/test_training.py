import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.augment import ADA_INTERVAL
from models.checkpoints import load_checkpoint, save_checkpoint
from models.devices import autocast_dtype
from models.losses import discriminator_loss
from models.networks import NetworkSpec
from models.run import Schedule, TrainingDiverged, resume_newest, run_training
from models.sampling import generate, latent_for_seed, latents_for_seeds
from models.training import TrainConfig, Trainer, load_generator
from workers.shared.layout import checkpoint_steps, last_metrics, read_metrics, sample_steps
from workers.shared.recipes import CONDITIONINGS


def tiny_config(architecture: str = "dcgan", conditioning: str = "input", **changes) -> TrainConfig:
    network = NetworkSpec(
        image_size=32,
        channels=1,
        latent_dim=8,
        base_channels=4,
        num_classes=3,
        architecture=architecture,
        conditioning=conditioning,
    )
    return TrainConfig(network=network, batch_size=8, steps=6, **changes)


# Every recipe beyond the default, alone, and all at once. ada_target −1: D's real logits always beat
# it, so p rises at every adjustment (ADA_INTERVAL D updates) and the augmentation is really used.
RECIPES = {
    "translation,cutout,color": {"augment": "translation,cutout,color"},
    "ada": {"augment": "ada", "ada_target": -1.0, "ada_speed_images": 64},
    "r1": {"r1_gamma": 1.0, "r1_every": 2},
    "resnet": {"architecture": "resnet"},
    "batchnorm": {"conditioning": "batchnorm"},
    "d_steps": {"d_steps": 2},
    "all": {
        "architecture": "resnet",
        "conditioning": "batchnorm",
        "augment": "ada",
        "ada_target": -1.0,
        "ada_speed_images": 64,
        "r1_gamma": 1.0,
        "r1_every": 3,
        "d_steps": 2,
    },
}


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 1, 32, 32), dtype=np.uint8), rng.integers(0, 3, 40)


@pytest.mark.parametrize("recipe", [{}, *RECIPES.values()], ids=["default", *RECIPES])
def test_one_step_changes_every_network(data, recipe: dict) -> None:
    trainer = Trainer(tiny_config(**recipe), *data)
    before = {
        name: [p.clone() for p in net.parameters()]
        for name, net in [
            ("g", trainer.generator),
            ("d", trainer.discriminator),
            ("ema", trainer.generator_ema),
        ]
    }
    metrics = trainer.train_step()
    assert metrics.step == trainer.step == 1
    assert 0 < metrics.d_real < 1 and 0 < metrics.d_fake < 1
    assert all(math.isfinite(value) for value in metrics.as_dict().values())
    for _ in range(3):
        metrics = trainer.train_step()
        assert math.isfinite(metrics.loss_d) and math.isfinite(metrics.loss_g)
    assert metrics.augment_p == trainer.augment.p
    for name, net in [("g", trainer.generator), ("d", trainer.discriminator), ("ema", trainer.generator_ema)]:
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True))
        assert changed, f"{name} did not change"


def test_dataset_of_another_size_is_resized_on_load(data) -> None:
    images = np.repeat(np.repeat(data[0], 2, axis=2), 2, axis=3)  # 64 px
    trainer = Trainer(tiny_config(), images, data[1])
    assert trainer.images.shape == (40, 1, 32, 32) and trainer.images.dtype == torch.uint8


def test_checkpoint_round_trip(tmp_path: Path, data) -> None:
    trainer = Trainer(tiny_config(), *data)
    trainer.train_step()
    save_checkpoint(tmp_path, trainer.step, trainer.state_dict(), keep=2)
    restored = Trainer(tiny_config(), *data)
    restored.load_state_dict(load_checkpoint(tmp_path))
    assert restored.step == 1
    for a, b in zip(
        trainer.state_dict()["generator_ema"].values(),
        restored.state_dict()["generator_ema"].values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    assert torch.equal(trainer.rng.get_state(), restored.rng.get_state())


def test_checkpoints_are_pruned_to_keep(tmp_path: Path, data) -> None:
    trainer = Trainer(tiny_config(), *data)
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, trainer.state_dict(), keep=2)
    assert checkpoint_steps(tmp_path) == [3, 4]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize(
    ("recipe", "stop_at"),
    # With every recipe the run stops after 5 steps, 10 D updates: R1 came at update 9, ADA's p moved
    # at update 8, and the resumed run must carry both the R1 phase and the half-full ADA statistics.
    [({}, 4), (RECIPES["batchnorm"], 4), (RECIPES["all"], 5)],
    ids=["default", "batchnorm", "resnet+batchnorm+ada+r1+d_steps"],
)
def test_resumed_run_ends_with_the_same_weights(
    tmp_path: Path, data, precision: str, recipe: dict, stop_at: int
) -> None:
    config = tiny_config(precision=precision, **recipe)
    unbroken = Trainer(config, *data)
    assert run_training(unbroken, tmp_path / "a", Schedule(steps=7, checkpoint_every=3)) == "completed"

    first = Trainer(config, *data)
    calls = iter(range(100))
    stopped = run_training(
        first,
        tmp_path / "b",
        Schedule(steps=7, checkpoint_every=100),
        should_stop=lambda: next(calls) >= stop_at,
    )
    assert stopped == "stopped" and checkpoint_steps(tmp_path / "b") == [stop_at]

    resumed = Trainer(config, *data)
    assert resume_newest(resumed, tmp_path / "b") == stop_at
    assert run_training(resumed, tmp_path / "b", Schedule(steps=7, checkpoint_every=3)) == "completed"
    for key in ("generator", "discriminator", "generator_ema"):
        for a, b in zip(unbroken.state_dict()[key].values(), resumed.state_dict()[key].values(), strict=True):
            assert torch.equal(a, b), key
    assert unbroken.augment.state_dict()["p"] == resumed.augment.state_dict()["p"]
    assert [row["step"] for row in read_metrics(tmp_path / "b")] == [1, 7]


def test_ada_raises_p_in_the_trainer_and_reports_it(data) -> None:
    trainer = Trainer(tiny_config(**RECIPES["ada"]), *data)
    reported = [trainer.train_step().augment_p for _ in range(2 * ADA_INTERVAL)]
    step = 8 * ADA_INTERVAL / 64  # images of an interval / ada_speed_images
    assert reported == pytest.approx([0.0] * (ADA_INTERVAL - 1) + [step] * ADA_INTERVAL + [2 * step])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_r1_adds_a_non_zero_gradient_on_its_updates_only(data, precision: str) -> None:
    """From the same start, D's first update (an R1 update) differs with and without R1, and the
    penalty's own gradient on D is non-zero; the second (r1_every = 2: not an R1 update) is the same
    given the same D."""
    plain = Trainer(tiny_config(precision=precision), *data)
    with_r1 = Trainer(tiny_config(precision=precision, r1_gamma=10.0, r1_every=2), *data)
    plain.train_step()
    with_r1.train_step()
    differs = [
        not torch.equal(a, b)
        for a, b in zip(plain.discriminator.parameters(), with_r1.discriminator.parameters(), strict=True)
    ]
    assert any(differs)

    real, labels, _ = with_r1._next_batch()
    real.requires_grad_(True)
    with with_r1._autocast():
        logits = with_r1.discriminator(real, labels)
    (gradient,) = torch.autograd.grad(logits.float().sum(), real, create_graph=True)
    gradient.square().sum(dim=(1, 2, 3)).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in with_r1.discriminator.parameters())
    assert sum(p.grad.abs().sum() for p in with_r1.discriminator.parameters()) > 0

    plain.load_state_dict(copy.deepcopy(with_r1.state_dict()))  # a copy: the optimisers' states would alias
    plain.train_step()
    with_r1.train_step()
    for a, b in zip(plain.discriminator.parameters(), with_r1.discriminator.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"augment": "flip"}, "augment must be one of"),
        ({"r1_gamma": -1.0}, "r1_gamma"),
        ({"r1_every": 0}, "r1_every"),
        ({"d_steps": 0}, "d_steps"),
    ],
)
def test_recipe_values_are_checked(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change)


def test_a_checkpoint_from_before_augmentation_loads(data) -> None:
    trainer = Trainer(tiny_config(), *data)
    trainer.train_step()
    state = trainer.state_dict()
    del state["augment"]
    state["config"]["network"].pop("architecture")
    state["config"]["network"].pop("conditioning")  # its G's weights load: the input-conditioned layout
    restored = Trainer(TrainConfig.from_dict(state["config"]), *data)
    restored.load_state_dict(state)
    assert restored.step == 1 and restored.augment.p == 0.0


def test_run_writes_samples_checkpoints_and_metrics(tmp_path: Path, data) -> None:
    trainer = Trainer(tiny_config(), *data)
    logged = []
    run_training(
        trainer,
        tmp_path,
        Schedule(steps=6, checkpoint_every=4, sample_every=2, log_every=2),
        on_log=logged.append,
    )
    assert sample_steps(tmp_path) == [2, 4, 6]
    assert checkpoint_steps(tmp_path) == [4, 6]
    assert [m.step for m in logged] == [1, 2, 4, 6]
    assert [row["step"] for row in read_metrics(tmp_path)] == [1, 2, 4, 6]
    assert last_metrics(tmp_path) == read_metrics(tmp_path)[-1]


def test_non_finite_loss_stops_with_last_good_checkpoint(tmp_path: Path, data) -> None:
    trainer = Trainer(tiny_config(), *data)
    run_training(trainer, tmp_path, Schedule(steps=2, checkpoint_every=2))
    with torch.no_grad():
        for parameter in trainer.discriminator.parameters():
            parameter.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 3"):
        run_training(trainer, tmp_path, Schedule(steps=6, checkpoint_every=1))
    assert checkpoint_steps(tmp_path) == [2]


def test_seed_latent_is_fixed_and_sampling_is_batch_independent(data) -> None:
    expected = torch.Generator().manual_seed(7)
    assert torch.equal(latent_for_seed(7, 8), torch.randn(8, generator=expected))
    trainer = Trainer(tiny_config(), *data)
    trainer.train_step()
    generator = load_generator(trainer.state_dict())
    latents = latents_for_seeds([7, 8, 9], 8)
    labels = torch.tensor([0, 1, 2])
    together = generate(generator, latents, labels)
    alone = np.concatenate([generate(generator, latents[i : i + 1], labels[i : i + 1]) for i in range(3)])
    assert together.dtype == np.uint8 and together.shape == (3, 1, 32, 32)
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_bf16_losses_follow_fp32_within_tolerance(data, conditioning: str) -> None:
    """Over a short run from the same start, the bf16 path's losses stay within 0.15 (mean absolute
    difference per step) of the fp32 path's."""
    runs = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(tiny_config(conditioning=conditioning, precision=precision), *data)
        runs[precision] = [trainer.train_step() for _ in range(10)]
    for name in ("loss_d", "loss_g"):
        differences = [
            abs(getattr(a, name) - getattr(b, name)) for a, b in zip(runs["fp32"], runs["bf16"], strict=True)
        ]
        assert sum(differences) / len(differences) < 0.15, (name, differences)


def test_generator_update_leaves_discriminator_trainable_with_only_its_own_gradients(data) -> None:
    """G's phase skips D's weight gradients: after a step D is trainable again and its gradients are
    exactly those of its own loss (the G phase added nothing to them)."""
    trainer = Trainer(tiny_config(), *data)
    trainer.train_step()
    assert all(parameter.requires_grad for parameter in trainer.discriminator.parameters())
    assert all(parameter.grad is not None for parameter in trainer.generator.parameters())
    d_grads = [parameter.grad.clone() for parameter in trainer.discriminator.parameters()]

    replay = Trainer(tiny_config(), *data)
    real, labels, latents = replay._next_batch()
    with replay._autocast():  # the trainer's precision (bf16 on a CPU with AVX512-BF16)
        fake = replay.generator(latents, labels)
        real_logits = replay.discriminator(real, labels)
        fake_logits = replay.discriminator(fake.detach(), labels)
        loss_d = discriminator_loss(
            replay.config.loss, real_logits, fake_logits, replay.config.label_smoothing
        )
    loss_d.backward()
    for replayed, trained in zip(replay.discriminator.parameters(), d_grads, strict=True):
        assert torch.allclose(replayed.grad, trained, atol=1e-6)


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        ({"avx512_bf16": True}, torch.bfloat16),
        ({"amx_bf16": True}, torch.bfloat16),
        ({"avx512_f": True}, None),
    ],
)
def test_auto_precision_uses_bf16_only_where_the_cpu_runs_it_natively(
    monkeypatch, capabilities: dict, expected
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert autocast_dtype("auto", torch.device("cpu")) is expected
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert autocast_dtype("fp32", torch.device("cpu")) is None
