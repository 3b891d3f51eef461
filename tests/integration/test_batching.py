"""Dynamic batching in the sampling worker: requests queued together render in one forward pass, and
each caller gets exactly the image it would have got alone."""

from __future__ import annotations

import time

import httpx
import pytest
from redis import Redis
from rq import Queue

from tests.integration.conftest import Stack
from workers.batching import gather
from workers.contract import GENERATE_JOB, SAMPLING_QUEUE, TRAIN_JOB

pytestmark = pytest.mark.integration


def result_of(api: httpx.Client, location: str) -> httpx.Response:
    deadline = time.monotonic() + 60
    while api.get(location).json()["status"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return api.get(location + "/result")


def test_batched_results_equal_unbatched(api: httpx.Client, stack: Stack, trained_digits: str) -> None:
    requests = [{"seed": seed, "label": str(seed % 10)} for seed in range(12)]
    alone = []
    for body in requests:  # one at a time: each renders alone
        response = api.post(f"/v1/models/{trained_digits}/generate", json=body)
        assert response.headers["x-batch-images"] == "1"
        alone.append(response.content)

    stack.kill("worker-sampling")  # queue them all, then let one worker take them together
    waiting = [
        api.post(f"/v1/models/{trained_digits}/generate", json=body, headers={"Prefer": "respond-async"})
        for body in requests
    ]
    stack.start_worker("sampling")
    stack.wait_ready()
    batched = [result_of(api, response.headers["location"]) for response in waiting]
    assert [int(response.headers["x-batch-images"]) for response in batched] == [12] * 12
    assert [response.content for response in batched] == alone  # each caller its own seed and label


def test_gather_takes_waiting_generate_jobs_of_any_model(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    queue = Queue(SAMPLING_QUEUE, connection=redis)

    def enqueue(model: str, seeds: list[int]):
        return queue.enqueue(
            GENERATE_JOB,
            kwargs={
                "model_id": model,
                "seeds": seeds,
                "labels": None,
                "truncation": 1.0,
                "checkpoint": 1,
                "format": "png",
            },
        )

    first = enqueue("m_a", [1, 2])
    enqueue("m_b", [3])
    enqueue("m_a", [4])
    queue.enqueue(TRAIN_JOB, "m_c")  # another kind of job ends the batch
    enqueue("m_a", [5])
    taken = Queue.dequeue_any([queue], None, connection=redis)[0]
    assert taken.id == first.id
    batch = gather(taken, queue, max_images=64, max_delay_seconds=0)
    assert [job.kwargs.get("model_id", job.args) for job in batch] == ["m_a", "m_b", "m_a", ("m_c",)]
    assert queue.count == 1  # the job after the other kind waits for the next round

    enqueue("m_a", list(range(10)))
    enqueue("m_b", [1])
    next_first = Queue.dequeue_any([queue], None, connection=redis)[0]
    assert len(gather(next_first, queue, max_images=5, max_delay_seconds=0)) == 2  # stops at the image cap
