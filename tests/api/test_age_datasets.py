"""Uploading age-labelled datasets: UTKFace file names and labels.csv with an age column, bucketed by
`age_bins` into classes kept in age order. Real app, real Redis, no worker."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.archives import png, zip_bytes
from workers.shared.storage import Storage

# UTKFace names: {age}_{gender}_{race}_{date}.jpg.chip.jpg (the bytes here are PNGs; the name is what counts)
FACES = {
    "UTKFace/25_0_2_20170116174525125.jpg.chip.jpg": png(1),
    "UTKFace/18_1_0_20170109214419716.jpg.chip.jpg": png(2),
    "UTKFace/19_0_3_20170119180036026.jpg.chip.jpg": png(3),
    "UTKFace/60_1_0_20170110122859523.jpg.chip.jpg": png(4),
    "UTKFace/99_1_2_20170112213001988.jpg.chip.jpg": png(5),
    "UTKFace/7_0_0_20170110215648859.jpg.chip.jpg": png(6),
    "UTKFace/45_0_1_20170113175838925.jpg.chip.jpg": png(7),
    "UTKFace/selfie.png": png(8),
    "UTKFace/150_0_0_20170113175838925.jpg.chip.jpg": png(9),
}


def upload(client: TestClient, data: bytes, **form: str):
    return client.post("/v1/datasets", files={"file": ("faces.zip", data)}, data=form)


def dataset_ids(client: TestClient) -> list[str]:
    return [d["id"] for d in client.get("/v1/datasets").json()["datasets"]]


def test_utkface_upload_has_age_classes_in_order(client: TestClient, storage: Storage) -> None:
    response = upload(client, zip_bytes(FACES), name="faces", image_size="32", labels="utkface")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["labels"] == "utkface"
    assert body["age_bins"] == [0, 19, 30, 40, 50, 60]
    assert body["classes"] == ["0-18", "19-29", "40-49", "60+"]  # age order; empty groups left out
    assert body["class_counts"] == {"0-18": 2, "19-29": 2, "40-49": 1, "60+": 2}
    assert body["count"] == 7
    assert {s["path"]: s["reason"] for s in body["skipped"]} == {
        "UTKFace/150_0_0_20170113175838925.jpg.chip.jpg": "impossible age 150",
        "UTKFace/selfie.png": "no age in file name",
    }
    shown = client.get(f"/v1/datasets/{body['id']}").json()
    assert shown["labels"] == "utkface" and shown["age_bins"] == [0, 19, 30, 40, 50, 60]
    assert shown["classes"] == body["classes"]
    listed = {d["id"]: d for d in client.get("/v1/datasets").json()["datasets"]}
    assert listed[body["id"]]["age_bins"] == [0, 19, 30, 40, 50, 60]
    manifest = storage.read_dataset(body["id"])
    assert manifest is not None and manifest.age_bins == [0, 19, 30, 40, 50, 60]
    assert manifest.classes == ["0-18", "19-29", "40-49", "60+"]


def test_custom_age_bins_keep_age_order(client: TestClient) -> None:
    faces = {f"{age}_0_0_2017.jpg": png(age) for age in (3, 8, 12, 40, 100)}
    response = upload(client, zip_bytes(faces), labels="utkface", age_bins="0, 5,10,100")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["classes"] == ["0-4", "5-9", "10-99", "100+"]  # alphabetical would put "10-99" second
    assert body["class_counts"] == {"0-4": 1, "5-9": 1, "10-99": 2, "100+": 1}
    assert body["age_bins"] == [0, 5, 10, 100]


def test_csv_with_an_age_column(client: TestClient) -> None:
    archive = zip_bytes(
        {
            "set/labels.csv": b"filename,age\na.png,12\nb.png,33\nc.png,70\nd.png,unknown\n",
            "set/a.png": png(1),
            "set/b.png": png(2),
            "set/c.png": png(3),
            "set/d.png": png(4),
        }
    )
    response = upload(client, archive, labels="csv", age_bins="0,30,60")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["labels"] == "csv" and body["age_bins"] == [0, 30, 60]
    assert body["classes"] == ["0-29", "30-59", "60+"]
    assert body["class_counts"] == {"0-29": 1, "30-59": 1, "60+": 1}
    assert body["skipped"] == [{"path": "set/d.png", "reason": "age 'unknown' is not a number"}]


def test_datasets_without_ages_show_no_age_bins(client: TestClient) -> None:
    archive = zip_bytes({"pets/cats/1.png": png(1), "pets/dogs/2.png": png(2)})
    body = upload(client, archive, labels="folders").json()
    assert body["labels"] == "folders" and body["age_bins"] is None
    assert client.get("/v1/datasets/digits").json()["age_bins"] is None


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"labels": "utkface", "age_bins": "0,ten,30"}, "whole numbers"),
        ({"labels": "utkface", "age_bins": "0,30,20"}, "strictly increasing"),
        ({"labels": "utkface", "age_bins": "0,30,30"}, "strictly increasing"),
        ({"labels": "utkface", "age_bins": "-1,30"}, "negative"),
        ({"labels": "utkface", "age_bins": " , "}, "not one"),
        ({"labels": "utkface", "age_bins": "  "}, "empty"),
        ({"labels": "utkface", "age_bins": ",".join(map(str, range(21)))}, "at most 20"),
        ({"labels": "folders", "age_bins": "0,30"}, "labels=folders"),
        ({"labels": "none", "age_bins": "0,30"}, "labels=none"),
    ],
)
def test_bad_age_bins_are_422_and_store_nothing(
    client: TestClient, storage: Storage, form: dict[str, str], words: str
) -> None:
    before = dataset_ids(client)
    response = upload(client, zip_bytes(FACES), **form)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [["body", "age_bins"]]
    assert words in detail[0]["msg"]
    assert dataset_ids(client) == before
    assert not [p for p in (storage.root / "datasets").iterdir() if p.name.startswith(".")]


def test_age_bins_with_a_label_only_csv_is_422(client: TestClient) -> None:
    before = dataset_ids(client)
    archive = zip_bytes({"labels.csv": b"filename,label\na.png,cat\n", "a.png": png(1)})
    response = upload(client, archive, labels="csv", age_bins="0,30")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "age_bins"]
    assert "age column" in response.json()["detail"][0]["msg"]
    assert dataset_ids(client) == before


def test_utkface_with_no_usable_age_is_400(client: TestClient) -> None:
    before = dataset_ids(client)
    response = upload(client, zip_bytes({"me.png": png(1), "200_0_0_x.png": png(2)}), labels="utkface")
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", "file"]
    assert "impossible age 200" in response.json()["detail"][0]["msg"]
    assert dataset_ids(client) == before
