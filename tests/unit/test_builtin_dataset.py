from pathlib import Path

import pytest

from workers.shared.datasets.store import BUILTIN_DIGITS_ID, ensure_builtin_datasets
from workers.shared.storage import Storage


def test_api_processes_racing_to_create_digits_all_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second API process that checked before the first finished loses the rename, drops its copy
    and starts anyway (`uvicorn --workers 2` crashed here)."""
    storage = Storage(tmp_path)
    ensure_builtin_datasets(storage)  # the process that won
    first = storage.read_dataset(BUILTIN_DIGITS_ID)

    real_read = Storage.read_dataset
    checks = iter([None])  # the loser's first look: not there yet
    monkeypatch.setattr(Storage, "read_dataset", lambda self, id: next(checks, real_read(self, id)))
    ensure_builtin_datasets(storage)

    assert storage.read_dataset(BUILTIN_DIGITS_ID) == first
    assert [path.name for path in storage.dataset_dir(BUILTIN_DIGITS_ID).parent.iterdir()] == [
        BUILTIN_DIGITS_ID
    ]
