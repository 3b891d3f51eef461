"""Generated requests against every operation in the OpenAPI schema: none may get a 5xx.

schemathesis reads the app's own /openapi.json in-process (ASGI, no server) and, for each operation,
sends the schema's examples, its coverage cases (boundaries, wrong types, missing fields) and then
fuzzed requests, checking only `not_a_server_error`.

The app runs against the real test Redis with no worker, and GANFORGE_SYNC_WAIT_SECONDS=0 so generation
answers 202 at once. A tiny trained model with labels "0".."9" (the schema's generate example asks for
label "3") sits on disk; its id, its training job, the built-in `digits` set, a queued generate job and
step 1 are written into the schema as the path parameters' examples, so the examples phase reaches
real resources while fuzzing mostly meets unknown ids.

Requests go to http://127.0.0.1 from a loopback client (`from_loopback`: schemathesis' in-process
client calls itself "testclient"): with no API keys configured the service serves only local clients.
The run is seeded and derandomized, and examples per operation are capped (MAX_EXAMPLES), so it is
reproducible in CI and takes about a minute on two cores.

`GET /v1/training-jobs/{id}/events` is included: the only job here is finished, so its stream ends
after the first event, and an unknown id is a 404.

The multipart routes get real files (`with_file_parts`): images in the formats schemathesis carries
(PNG, JPEG, GIF, WebP) for invert and transform, and small archives of PNGs (zip, tar.gz) for dataset
uploads, besides arbitrary bytes, so fuzzing reaches past the file checks into decoding, ingest and
queueing. FastAPI's OpenAPI 3.1 marks a file only with `contentMediaType`, for which schemathesis
generates text.
"""

from __future__ import annotations

import copy
import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from tests.archives import labelled_zip, png
from workers.shared.generate_lane import GenerateCall, submit
from workers.shared.settings import get_settings
from workers.shared.storage import Storage

MAX_EXAMPLES = 50
SEED = 20_240_611

CONFIG = {
    "seed": SEED,
    "base-url": "http://127.0.0.1",
    "request-timeout": 30,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large", "large_base_example"],
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
}

# Fixed ids, so they can be the schema's examples when the module loads it (at collection).
MODEL_ID = "m_5c4e3a7e5150"
TRAINING_JOB_ID = "tj_5c4e3a7e5150"
JOB_ID = "gen_5c4e3a7e5150aa01bb02cc03"
EXAMPLES = {
    "model_id": MODEL_ID,
    "training_job_id": TRAINING_JOB_ID,
    "dataset_id": "digits",
    "job_id": JOB_ID,
    "step": 1,
}


def with_examples(openapi: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    """A copy of the schema where each path parameter named in `examples` has that example."""
    openapi = copy.deepcopy(openapi)
    for operations in openapi["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in examples:
                    parameter["example"] = examples[parameter["name"]]
    return openapi


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ARCHIVE_FORMAT = "image-archive"
ARCHIVES = [
    labelled_zip(("a", "b"), per_class=2),
    tar_gz({f"{index}.png": png(index, size=16) for index in range(3)}),
]
schemathesis.openapi.format(ARCHIVE_FORMAT, st.one_of(st.sampled_from(ARCHIVES), st.binary(max_size=512)))


def multipart_bodies(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The schemas of the multipart request bodies (app.forms), by name."""
    names = {
        operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for item in openapi["paths"].values()
        for operation in item.values()
        if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})
    }
    return {name: openapi["components"]["schemas"][name] for name in names}


def with_file_parts(openapi: dict[str, Any]) -> dict[str, Any]:
    """`openapi` with each uploaded file given a `format`, so schemathesis sends bytes: `binary` (its
    image samples, or arbitrary bytes) for images, ARCHIVE_FORMAT for the dataset upload's archive."""
    for name, body in multipart_bodies(openapi).items():
        for prop in body["properties"].values():
            for variant in prop.get("anyOf", [prop]):
                if variant.get("contentMediaType") == "application/octet-stream":
                    variant["format"] = ARCHIVE_FORMAT if name == "DatasetUpload" else "binary"
    return openapi


def load_schema() -> Any:
    from app.main import create_app

    openapi = create_app().openapi()  # the schema only: each test builds its own app (api_app)
    get_settings.cache_clear()  # create_app read the settings; tests set their own
    config = SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_dict(with_file_parts(with_examples(openapi, EXAMPLES)), config=config)


schema = load_schema()


@pytest.fixture(scope="module")
def model_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional model with classes "0".."9", trained once for the module, stored as MODEL_ID."""
    from tests.api.conftest import make_model

    template = Storage(tmp_path_factory.mktemp("schemathesis-model"))
    trained = make_model(template, [str(digit) for digit in range(10)])
    folder = template.model_dir(MODEL_ID)
    template.model_dir(trained.id).rename(folder)
    template.write_model(trained.model_copy(update={"id": MODEL_ID, "training_job_id": TRAINING_JOB_ID}))
    return folder


@pytest.fixture
def api_app(service_env, redis, monkeypatch: pytest.MonkeyPatch, model_template: Path) -> Iterator[Any]:
    """A fresh app on a fresh data folder holding the model, and a queued generate request in Redis."""
    from app.main import create_app

    monkeypatch.setenv("GANFORGE_SYNC_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    storage = Storage(get_settings().data_dir)
    shutil.copytree(model_template, storage.model_dir(MODEL_ID))
    assert storage.read_model(MODEL_ID) is not None and storage.checkpoint_steps(MODEL_ID) == [1]
    with redis.pipeline() as pipeline:
        submit(pipeline, GenerateCall(JOB_ID, MODEL_ID, [1], None, 1.0, 1, "png", result_ttl=60))
        pipeline.execute()
    yield from_loopback(create_app())
    asgi.shutdown_lifespans()  # the app's lifespan ran in schemathesis' event loop; close its clients


def from_loopback(app: Any) -> Any:
    """`app`, seeing every request come from 127.0.0.1, as it would from a local client."""

    async def local(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": ("127.0.0.1", 50000)}
        await app(scope, receive, send)

    return local


@schema.parametrize()
# One check, as a pytest parameter: with it pytest 9 gives each operation its own test id (schemathesis
# 4.32 names its items in a way pytest 9.2 no longer reads, so they would all share one id).
@pytest.mark.parametrize("checks", [[not_a_server_error]], ids=["not_a_server_error"])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # api_app: one per operation
def test_no_server_errors(case, api_app, checks) -> None:
    if case.operation.label == "GET /readyz":  # 503 by design while no worker serves the queues
        response = case.call(app=api_app)
        if response.status_code >= 500:
            assert response.status_code == 503 and response.json()["ready"] is False, response.text
            idle = {"training": 0, "evaluation": 0, "sampling": 0, "webhooks": 0}
            assert response.json()["workers"] == idle
        return
    case.call_and_validate(checks=checks, app=api_app)


def test_every_operation_is_fuzzed() -> None:
    """schemathesis understands every operation of the schema (none turns into a schema error), the
    multipart upload and the event stream included, and the examples reached the path parameters."""
    from schemathesis.core.result import Ok

    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)
    labels = {operation.label for operation in operations}
    declared = {
        f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item
    }
    assert labels == declared
    assert {"POST /v1/datasets", "GET /v1/training-jobs/{training_job_id}/events"} <= labels
    generate = schema["/v1/models/{model_id}/generate"]["POST"]
    assert [p.definition.get("example") for p in generate.path_parameters] == [MODEL_ID]


def test_uploads_are_sent_as_files() -> None:
    """Every uploaded file of the multipart routes (dataset archive, invert and transform images) is
    generated as bytes, not text."""
    bodies = multipart_bodies(schema.raw_schema)
    assert sorted(bodies) == ["DatasetUpload", "InvertRequest", "TransformRequest"]
    files = {
        (name, field): [
            variant.get("format") for variant in prop.get("anyOf", [prop]) if variant.get("type") == "string"
        ]
        for name, body in bodies.items()
        for field, prop in body["properties"].items()
        if "application/octet-stream" in str(prop)
    }
    assert sorted(field for _, field in files) == ["file", "image", "image"]
    assert all(formats in (["binary"], [ARCHIVE_FORMAT]) for formats in files.values()), files
