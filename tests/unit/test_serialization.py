"""Nothing executable crosses Redis: what ganforge writes there reads back as data, a pickle is refused
unread, and every RQ queue, job and worker in app/ and workers/ uses the data-only serializer."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import msgpack
import numpy as np
import pytest

from tests.conftest import Payload
from workers.shared.generate_lane import Answer, GenerateCall
from workers.shared.serialization import DataSerializer, UnreadableData

ROOT = Path(__file__).resolve().parents[2]


def test_values_round_trip_as_data() -> None:
    image = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    value = {
        "media_type": "image/png",
        "body": b"\x89PNG\x00\xff",
        "headers": {"X-Seeds": "1,2"},
        "terms": [(1.5, {"seed": 7}), (-1.0, {"vector": [0.25, -3e38]})],
        "image": image,
        "latent": np.zeros(3, np.float32),
        "fid": np.float64(12.5),
        "none": None,
    }
    back = DataSerializer.loads(DataSerializer.dumps(value))
    assert back["body"] == b"\x89PNG\x00\xff" and back["headers"] == {"X-Seeds": "1,2"}
    assert back["terms"] == [[1.5, {"seed": 7}], [-1.0, {"vector": [0.25, -3e38]}]]  # tuples: lists
    assert back["image"].dtype == np.uint8 and np.array_equal(back["image"], image)
    assert back["image"].flags.writeable
    assert back["latent"].dtype == np.float32 and back["latent"].shape == (3,)
    assert back["fid"] == 12.5 and type(back["fid"]) is float
    assert back["none"] is None


def test_rq_job_data_round_trips() -> None:
    """RQ stores (function name, instance, args, kwargs) through the serializer."""
    data = ("workers.jobs.latents.invert_image", None, (), {"image": np.ones((1, 2, 2), np.uint8)})
    name, instance, args, kwargs = DataSerializer.loads(DataSerializer.dumps(data))
    assert (name, instance, args) == ("workers.jobs.latents.invert_image", None, [])
    assert kwargs["image"].shape == (1, 2, 2)


@pytest.mark.parametrize("value", [object(), np.array([object()]), {1, 2}])
def test_what_is_not_data_is_not_written(value: object) -> None:
    with pytest.raises(TypeError):
        DataSerializer.dumps(value)


def test_a_pickle_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = pickle.dumps({"result": Payload(marker)})
    with pytest.raises(UnreadableData):
        DataSerializer.loads(crafted)
    with pytest.raises(UnreadableData):
        Answer.decode(crafted)
    assert not marker.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc1",  # never used in msgpack
        msgpack.packb([1, 2]) + b"extra",
        msgpack.packb(msgpack.ExtType(9, b"?")),  # an extension ganforge does not write
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["|O", [1]]) + b"\x00" * 8)),  # object array
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["<f4", [1000]]) + b"\x00" * 8)),  # short data
    ],
)
def test_malformed_data_is_refused(raw: bytes) -> None:
    with pytest.raises(UnreadableData):
        DataSerializer.loads(raw)


def test_lane_messages_reject_what_they_did_not_write() -> None:
    with pytest.raises(UnreadableData):
        Answer.decode(DataSerializer.dumps({"result": "not a pair"}))
    with pytest.raises(UnreadableData):
        GenerateCall.decode(b"\x80\x05not json")
    with pytest.raises(UnreadableData):
        GenerateCall.decode(b'{"unexpected": 1}')
    answer = Answer({"media_type": "image/png", "body": b"png", "headers": {}}, None)
    assert Answer.decode(answer.encode()) == answer


RQ_CONSTRUCTORS = {"Queue", "Job.fetch", "Job.fetch_many", "Job.create", "Worker", "SimpleWorker"}


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def test_every_rq_queue_and_job_uses_the_data_serializer() -> None:
    """A Queue or Job made without `serializer=` would read and write pickles again."""
    missing = []
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("workers/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or _called_name(node) not in RQ_CONSTRUCTORS:
                continue
            if not any(keyword.arg == "serializer" for keyword in node.keywords):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {_called_name(node)}")
    assert missing == []


def test_the_worker_uses_the_data_serializer(redis) -> None:
    pytest.importorskip("torch")
    from workers.jobs.worker import InProcessWorker

    worker = InProcessWorker(["sampling"], connection=redis)
    assert worker.serializer is DataSerializer


def test_no_pickle_in_app_or_workers() -> None:
    unpicklers = {"pickle", "cloudpickle", "dill", "_pickle"}
    users = []
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("workers/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name.split(".")[0] in unpicklers for name in names):
                users.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert users == []
