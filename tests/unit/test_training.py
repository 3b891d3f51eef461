from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoints import load_checkpoint, save_checkpoint
from models.devices import autocast_dtype
from models.layout import checkpoint_steps, last_metrics, read_metrics, sample_steps
from models.losses import discriminator_loss
from models.networks import NetworkSpec
from models.run import Schedule, TrainingDiverged, resume_newest, run_training
from models.sampling import generate, latent_for_seed, latents_for_seeds
from models.training import TrainConfig, Trainer, load_generator


def tiny_config(**changes) -> TrainConfig:
    network = NetworkSpec(image_size=32, channels=1, latent_dim=8, base_channels=4, num_classes=3)
    return TrainConfig(network=network, batch_size=8, steps=6, **changes)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 1, 32, 32), dtype=np.uint8), rng.integers(0, 3, 40)


def test_one_step_changes_every_network(data) -> None:
    trainer = Trainer(tiny_config(), *data)
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
def test_resumed_run_ends_with_the_same_weights(tmp_path: Path, data, precision: str) -> None:
    config = tiny_config(precision=precision)
    unbroken = Trainer(config, *data)
    assert run_training(unbroken, tmp_path / "a", Schedule(steps=6, checkpoint_every=3)) == "completed"

    first = Trainer(config, *data)
    calls = iter(range(100))
    stopped = run_training(
        first, tmp_path / "b", Schedule(steps=6, checkpoint_every=100), should_stop=lambda: next(calls) >= 4
    )
    assert stopped == "stopped" and checkpoint_steps(tmp_path / "b") == [4]

    resumed = Trainer(config, *data)
    assert resume_newest(resumed, tmp_path / "b") == 4
    assert run_training(resumed, tmp_path / "b", Schedule(steps=6, checkpoint_every=3)) == "completed"
    for key in ("generator", "discriminator", "generator_ema"):
        for a, b in zip(unbroken.state_dict()[key].values(), resumed.state_dict()[key].values(), strict=True):
            assert torch.equal(a, b), key
    assert [row["step"] for row in read_metrics(tmp_path / "b")] == [1, 6]


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


def test_bf16_losses_follow_fp32_within_tolerance(data) -> None:
    """Over a short run from the same start, the bf16 path's losses stay within 0.15 (mean absolute
    difference per step) of the fp32 path's."""
    runs = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(tiny_config(precision=precision), *data)
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
