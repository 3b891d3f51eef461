import pytest
import torch

from models.latents import interpolate, lerp, slerp, variations, weighted_sum
from workers.shared.expressions import ExpressionError, parse_expression


@pytest.mark.parametrize("method", ["slerp", "lerp"])
@pytest.mark.parametrize(("count", "steps"), [(2, 0), (2, 7), (4, 3)])
def test_interpolation_has_every_key_exactly_and_the_right_count(method: str, count: int, steps: int) -> None:
    keys = torch.randn(count, 32, generator=torch.Generator().manual_seed(count + steps))
    frames = interpolate(keys, steps, method)
    assert frames.shape == (count + (count - 1) * steps, 32)
    for index, key in enumerate(keys):
        assert torch.equal(frames[index * (steps + 1)], key)
    assert len(torch.unique(frames, dim=0)) == len(frames)


def test_slerp_keeps_the_norm_between_keys_of_equal_norm_and_lerp_does_not() -> None:
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(100, generator=rng), torch.randn(100, generator=rng)
    b = b * (a.norm() / b.norm())
    arc = interpolate(torch.stack([a, b]), 9, "slerp")
    chord = interpolate(torch.stack([a, b]), 9, "lerp")
    assert torch.allclose(arc.norm(dim=1), a.norm().expand(11), rtol=1e-5)
    assert chord[5].norm() < 0.8 * a.norm()  # near-orthogonal keys: the chord's middle dips by ~1/√2


def test_lerp_midpoint_is_the_mean() -> None:
    a, b = torch.tensor([1.0, -2.0, 4.0]), torch.tensor([3.0, 0.0, -4.0])
    assert torch.equal(lerp(a, b, 0.5), (a + b) / 2)
    assert torch.equal(interpolate(torch.stack([a, b]), 1, "lerp")[1], (a + b) / 2)


def test_slerp_of_parallel_keys_falls_back_to_lerp() -> None:
    a = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(slerp(a, 3 * a, 0.5), 2 * a)
    assert torch.isfinite(slerp(a, a, 0.3)).all()
    assert torch.allclose(slerp(a, -a, 0.5), torch.zeros(3))


def test_interpolate_rejects_a_single_key() -> None:
    with pytest.raises(ValueError, match="at least 2 keys"):
        interpolate(torch.randn(1, 8), 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "smiling_woman - neutral_woman + 0.5*glasses",
            [(1.0, "smiling_woman"), (-1.0, "neutral_woman"), (0.5, "glasses")],
        ),
        ("a", [(1.0, "a")]),
        ("-a", [(-1.0, "a")]),
        ("  + 2 * b -1e-1*c\t", [(2.0, "b"), (-0.1, "c")]),
        ("-.5*x_1+x_1", [(-0.5, "x_1"), (1.0, "x_1")]),
        ("2*3", [(2.0, "3")]),
        ("2x - 7", [(1.0, "2x"), (-1.0, "7")]),
        ("1e5", [(1.0, "1e5")]),
        ("a" * 64, [(1.0, "a" * 64)]),
    ],
)
def test_parse_expression(text: str, expected: list[tuple[float, str]]) -> None:
    assert parse_expression(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("a +", 2, "nothing after"),
        ("a - ", 2, "nothing after"),
        ("-", 0, "nothing after"),
        ("0.5*", 3, "nothing after"),
        ("0.5 *  ", 4, "nothing after"),
        ("a $ b", 2, "unexpected character '\\$'"),
        ("Glasses", 0, "unexpected character 'G'"),
        ("a b", 2, "between two names"),
        ("2 glasses", 2, "between two names"),
        ("0.5", 0, "needs '\\* name'"),
        ("a + 0.5 glasses", 4, "needs '\\* name'"),
        ("a*2", 1, "expected '\\+' or '-'"),
        ("a + + b", 4, "expected a name"),
        ("a - -b", 4, "expected a name"),
        ("0.5*0.5*a", 5, "found '.'"),
        ("a" * 65, 64, "at most 64"),
        ("1e999*a", 0, "too large"),
    ],
)
def test_parse_expression_errors_point_at_the_offending_character(
    text: str, position: int, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message) as caught:
        parse_expression(text)
    assert caught.value.position == position
    assert isinstance(caught.value, ValueError)


def test_weighted_sum_cancels_exactly_and_scales_linearly() -> None:
    rng = torch.Generator().manual_seed(1)
    a, b = torch.randn(64, generator=rng), torch.randn(64, generator=rng)
    assert torch.equal(weighted_sum([(1.0, a), (-1.0, a), (1.0, b)]), b)
    assert torch.equal(weighted_sum([(2.0, a)]), 2 * a)
    assert torch.allclose(weighted_sum([(3.0, a), (-0.5, b)]), 3 * a - 0.5 * b)
    assert torch.allclose(weighted_sum([(2.0, a), (1.0, b)]) - weighted_sum([(1.0, a), (1.0, b)]), a)


def test_weighted_sum_rejects_nothing_and_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="nothing"):
        weighted_sum([])
    with pytest.raises(ValueError, match="shapes"):
        weighted_sum([(1.0, torch.zeros(4)), (1.0, torch.zeros(5))])


def test_variations_are_seeded_and_within_the_noise() -> None:
    latent = torch.randn(100, generator=torch.Generator().manual_seed(2))
    first = variations(latent, 8, noise=0.25, seed=3)
    assert first.shape == (8, 100)
    assert torch.equal(first, variations(latent, 8, noise=0.25, seed=3))
    assert not torch.equal(first, variations(latent, 8, noise=0.25, seed=4))
    offsets = first - latent
    assert offsets.abs().max() <= 0.25 + 1e-6
    assert offsets.abs().max() > 0.2 and offsets.std() > 0.1  # spread over the range, not near zero
    assert len(torch.unique(first, dim=0)) == 8
