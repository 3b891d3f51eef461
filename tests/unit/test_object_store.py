"""Storage over a real S3 server (moto's): two "hosts" are two Storages with their own empty cache
folders, sharing only the bucket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import free_port
from workers.shared.contract import TrainingSpec
from workers.shared.datasets.store import BUILTIN_DIGITS_ID, ensure_builtin_datasets
from workers.shared.file_cache import FileCache
from workers.shared.object_store import StoreMisconfigured, StoreUnavailable, open_store
from workers.shared.storage import ModelManifest, Storage, new_id, training_job_id_for, utc_now

MiB = 2**20


def host(url: str, folder: Path, cache_bytes: int = 64 * MiB) -> Storage:
    return Storage(folder, open_store(url, folder, cache_bytes))


def model(storage: Storage) -> ModelManifest:
    model_id = new_id("m")
    manifest = ModelManifest(
        id=model_id,
        name="tiny",
        training_job_id=training_job_id_for(model_id),
        created_at=utc_now(),
        spec=TrainingSpec(dataset_id="digits", steps=1, keep_checkpoints=2),
        dataset_id="digits",
        image_size=32,
        channels=1,
    )
    storage.write_model(manifest)
    return manifest


def write_checkpoint(storage: Storage, model_id: str, step: int, data: bytes = b"weights") -> Path:
    path = storage.checkpoint_file(model_id, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_manifest_written_on_one_host_is_read_fresh_on_another(s3_url: str, tmp_path: Path) -> None:
    one, two = host(s3_url, tmp_path / "one"), host(s3_url, tmp_path / "two")
    manifest = model(one)
    assert two.read_model(manifest.id) == manifest
    assert [m.id for m in two.list_models()] == [manifest.id]
    one.update_model(manifest.id, status="running")
    assert two.read_model(manifest.id).status == "running"  # not the copy it read before
    one.delete_tree(one.model_dir(manifest.id))
    assert two.read_model(manifest.id) is None and two.list_models() == []


def test_run_files_are_published_and_fetched_once(s3_url: str, tmp_path: Path) -> None:
    trainer, sampler = host(s3_url, tmp_path / "trainer"), host(s3_url, tmp_path / "sampler")
    manifest = model(trainer)
    for step in (1, 2, 3):
        write_checkpoint(trainer, manifest.id, step, f"step {step}".encode())
        trainer.publish_run(manifest.id, keep_checkpoints=2)
    assert sampler.checkpoint_steps(manifest.id) == [2, 3]  # pruned in the store as on disk
    path = sampler.checkpoint_file(manifest.id, 3)
    assert not path.exists() and sampler.fetch(path) and path.read_bytes() == b"step 3"
    os.utime(path, ns=(0, 0))
    assert sampler.fetch(path) and path.stat().st_mtime_ns > 0  # served from the cache, its use noted
    assert not sampler.fetch(sampler.checkpoint_file(manifest.id, 1))


def test_a_run_resumes_on_another_host_from_the_stores_newest_checkpoint(s3_url: str, tmp_path: Path) -> None:
    first, second = host(s3_url, tmp_path / "first"), host(s3_url, tmp_path / "second")
    manifest = model(first)
    write_checkpoint(first, manifest.id, 10)
    (first.model_dir(manifest.id) / "metrics.jsonl").write_text('{"step": 10}\n')
    first.publish_run(manifest.id, keep_checkpoints=0)
    second.pull_run(manifest.id)
    run = second.model_dir(manifest.id)
    assert (run / "checkpoints" / "step-000010.pt").read_bytes() == b"weights"
    assert second.metrics(manifest.id) == [{"step": 10}]


def test_datasets_are_published_manifest_last_and_fetched_where_read(s3_url: str, tmp_path: Path) -> None:
    api, worker = host(s3_url, tmp_path / "api"), host(s3_url, tmp_path / "worker")
    ensure_builtin_datasets(api)
    assert worker.read_dataset(BUILTIN_DIGITS_ID).count == 1797
    folder = worker.dataset_files(BUILTIN_DIGITS_ID)
    assert (folder / "images.npy").read_bytes() == (api.dataset_dir("digits") / "images.npy").read_bytes()
    assert (folder / "labels.npy").is_file()


def test_an_object_deleted_under_a_reader_is_named(s3_url: str, tmp_path: Path) -> None:
    api, worker = host(s3_url, tmp_path / "api"), host(s3_url, tmp_path / "worker")
    ensure_builtin_datasets(api)
    api.store.delete(api.dataset_dir(BUILTIN_DIGITS_ID) / "images.npy")
    with pytest.raises(FileNotFoundError, match=r"dataset digits: images\.npy is not in the store"):
        worker.dataset_files(BUILTIN_DIGITS_ID)


def test_latents_live_in_the_store(s3_url: str, tmp_path: Path) -> None:
    from workers.shared.storage import NamedLatentRecord

    one, two = host(s3_url, tmp_path / "one"), host(s3_url, tmp_path / "two")
    manifest = model(one)
    record = NamedLatentRecord(name="smile", latent={"seed": 3}, source="seed", created_at=utc_now())
    one.write_latent(manifest.id, record)
    assert two.list_latents(manifest.id) == [record]
    assert two.delete_latent(manifest.id, "smile")
    assert one.read_latent(manifest.id, "smile") is None and not one.delete_latent(manifest.id, "smile")


def test_exports_live_in_the_store(s3_url: str, tmp_path: Path) -> None:
    from workers.shared.exports import ExportRecord, file_path, list_exports, read_export, write_export

    worker, api = host(s3_url, tmp_path / "worker"), host(s3_url, tmp_path / "api")
    manifest = model(worker)
    record = ExportRecord(
        id="ex_1",
        model_id=manifest.id,
        format="onnx",
        step=1,
        status="completed",
        created_at=utc_now(),
        latent_dim=8,
        labels=[],
        image_size=32,
        channels=1,
    )
    path = file_path(worker, record)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"onnx")
    worker.publish(path)  # the file, then its record
    write_export(worker, record)
    assert read_export(api, manifest.id, "ex_1") == record and list_exports(api, manifest.id) == [record]
    assert api.fetch(file_path(api, record)) and file_path(api, record).read_bytes() == b"onnx"


def test_the_cache_keeps_within_its_bound_least_recently_used_out(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=250)
    files = [tmp_path / f"step-{index:06d}.pt" for index in range(3)]
    for index, path in enumerate(files):
        path.write_bytes(b"x" * 100)
        os.utime(path, ns=(index, index))
    cache.use(files[0])  # now the most recently used
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(b"{}" * 100)  # never evicted
    newest = tmp_path / "step-000009.pt"
    newest.write_bytes(b"y" * 100)
    cache.added(newest)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "manifest.json",
        "step-000000.pt",
        "step-000009.pt",
    ]


def test_a_bucket_that_does_not_exist_is_named(s3_url: str, tmp_path: Path) -> None:
    store = open_store("s3://no-such-bucket/x", tmp_path, MiB)
    with pytest.raises(StoreMisconfigured, match="bucket 'no-such-bucket' does not exist"):
        store.check()
    with pytest.raises(StoreMisconfigured, match="no-such-bucket"):
        Storage(tmp_path, store).read_model("m_1")


def test_an_unreachable_store_is_unavailable(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    store = open_store(s3_url, tmp_path, MiB)
    with pytest.raises(StoreUnavailable, match=f"the store {s3_url} could not reach"):
        store.check()


def test_a_url_that_is_not_s3_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="must be empty or s3://bucket/prefix"):
        open_store("gs://bucket", tmp_path, MiB)
