import pytest
import torch

from models.augment import ADA_INTERVAL, PARAMETERS, Augment, augment, cutout, policy_operations, translate
from workers.shared.recipes import AUGMENT_POLICIES

ALL = ("color", "translation", "cutout")


def images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize(
    ("policy", "operations"),
    [
        ("none", ()),
        ("translation", ("translation",)),
        ("translation,cutout", ("translation", "cutout")),
        ("translation,cutout,color", ALL),
        ("ada", ALL),
    ],
)
def test_policies_name_their_operations_in_diffaugments_order(policy: str, operations: tuple) -> None:
    assert policy_operations(policy) == operations


def test_an_unknown_policy_is_an_error_listing_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="must be one of") as error:
        policy_operations("cutout,translation")
    assert all(policy in str(error.value) for policy in AUGMENT_POLICIES)


def test_gradients_flow_through_every_operation() -> None:
    x = images(4).double().requires_grad_(True)
    parameters = torch.rand(4, PARAMETERS, generator=torch.Generator().manual_seed(1))
    assert torch.autograd.gradcheck(lambda x: augment(x, parameters, ALL), (x[:, :, :8, :8],))
    augment(x, parameters, ALL).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_an_images_transform_depends_on_the_stream_not_on_the_rest_of_its_batch() -> None:
    """From the same generator state, image 0 gets the same transform alone or at the head of another
    batch; from another state, another transform."""
    batch, alone = images(8), images(8, seed=1)
    alone[0] = batch[0]

    def augmented(x: torch.Tensor, seed: int) -> torch.Tensor:
        transform = Augment("translation,cutout,color", seed=0)
        transform.generator.manual_seed(seed)
        return transform(x)

    assert torch.equal(augmented(batch, seed=3)[0], augmented(batch[:1], seed=3)[0])
    assert torch.equal(augmented(batch, seed=3)[0], augmented(alone, seed=3)[0])
    assert not torch.equal(augmented(batch, seed=3)[0], augmented(batch, seed=4)[0])


def test_translation_shifts_by_whole_pixels_and_fills_with_zero() -> None:
    x = images(1)
    # A uniform u maps to the shift floor(u·9) − 4 at 32 px: 5/9 → +1 row, 4/9 → no column shift.
    shifted = translate(x, torch.tensor([[5.5 / 9, 4.5 / 9]]), torch.tensor([True]))
    assert torch.equal(shifted[0, :, :-1], x[0, :, 1:])
    assert torch.equal(shifted[0, :, -1], torch.zeros(3, 32))
    assert torch.equal(translate(x, torch.tensor([[0.0, 0.99]]), torch.tensor([False])), x)


def test_cutout_zeroes_a_square_of_half_the_size() -> None:
    x = images(1) + 3  # no zero pixels of its own
    cut = cutout(x, torch.tensor([[0.5, 0.5]]), torch.tensor([True]))
    assert (cut == 0).all(dim=1).sum() == 16 * 16
    assert torch.equal(cutout(x, torch.tensor([[0.5, 0.5]]), torch.tensor([False])), x)


def test_p_zero_is_the_identity_and_draws_nothing() -> None:
    x = images(4)
    assert torch.allclose(augment(x, torch.rand(4, PARAMETERS), ALL, p=0.0), x, atol=1e-6)
    for policy in ("none", "ada"):
        transform = Augment(policy, seed=0)
        state = transform.generator.get_state()
        assert transform.p == 0.0 and transform(x) is x
        assert torch.equal(transform.generator.get_state(), state)


def test_fixed_policies_apply_every_transform_also_in_bf16() -> None:
    """Gates are compared in fp32: a gate of 0.9999 would round to 1 in bf16 and skip the transform."""
    x = images(1).bfloat16()
    parameters = torch.full((1, PARAMETERS), 0.9999)
    out = augment(x, parameters, ("cutout",), p=1.0)
    assert out.dtype == torch.bfloat16 and (out == 0).any()


def test_ada_p_rises_while_d_is_over_confident_and_stays_at_zero_otherwise() -> None:
    ada = Augment("ada", seed=0, target=0.6, speed_images=1000)
    assert ada.p == 0.0
    unsure = torch.tensor([1.0, -1.0, 2.0, -3.0, 0.5])  # r_t = 0.2 < 0.6
    for _ in range(3 * ADA_INTERVAL):
        ada.observe(unsure)
    assert ada.p == 0.0

    sure = torch.ones(10)  # r_t = 1 > 0.6: each interval adds 10·4 images / 1000
    for update in range(1, 2 * ADA_INTERVAL + 1):
        ada.observe(sure)
        assert ada.p == pytest.approx(0.04 * (update // ADA_INTERVAL))
    for _ in range(ADA_INTERVAL):
        ada.observe(unsure)  # 5·4 images / 1000 back down
    assert ada.p == pytest.approx(0.08 - 0.02)


def test_ada_p_stays_within_zero_and_one() -> None:
    ada = Augment("ada", seed=0, speed_images=1)
    for _ in range(ADA_INTERVAL):
        ada.observe(torch.ones(4))
    assert ada.p == 1.0


def test_state_dict_resumes_the_stream_and_p() -> None:
    first = Augment("ada", seed=0, target=0.0, speed_images=100)
    for _ in range(ADA_INTERVAL + 1):  # one adjustment, then one update into the next interval
        first.observe(torch.ones(8))
        first(images(2))
    resumed = Augment("ada", seed=0, target=0.0, speed_images=100)
    resumed.load_state_dict(first.state_dict())
    x = images(2)
    assert torch.equal(first(x), resumed(x)) and first.p == resumed.p > 0
    for _ in range(ADA_INTERVAL - 1):
        first.observe(torch.ones(8))
        resumed.observe(torch.ones(8))
    assert first.p == resumed.p == pytest.approx(2 * 32 / 100)


def test_the_augmentation_stream_differs_from_the_runs_main_stream() -> None:
    main = torch.rand(4, PARAMETERS, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(torch.rand(4, PARAMETERS, generator=Augment("color", seed=0).generator), main)
