"""Dynamic batching in the sampling worker: requests queued together render in one forward pass, and
each caller gets exactly the image it would have got alone; the generate lane's taking, answering and
recovery, on a real Redis."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest
import torch
from redis import Redis

from tests.api.conftest import make_model
from tests.integration.conftest import Stack
from workers.jobs.generate import GenerateConsumer, image_capped_chunks, recover_dead_consumers
from workers.jobs.runtime import Runtime
from workers.shared.generate_lane import (
    CONSUMERS_KEY,
    MAX_ATTEMPTS,
    QUEUE_KEY,
    REPLY_TTL_SECONDS,
    Answer,
    GenerateCall,
    alive_key,
    answer,
    enqueue,
    job_key,
    new_job_id,
    read_job,
    record_queued,
    reply_key,
    submit,
    taken_key,
)
from workers.shared.settings import Settings

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


def test_a_delivered_answer_is_not_kept_for_the_result_ttl(
    api: httpx.Client, stack: Stack, trained_digits: str
) -> None:
    """Redis keeps an answer for GANFORGE_RESULT_TTL_SECONDS only when nobody waited for it."""
    redis = Redis.from_url(stack.env["REDIS_URL"])
    before = set(redis.scan_iter(match=job_key("*")))
    assert api.post(f"/v1/models/{trained_digits}/generate", json={"seed": 1}).status_code == 200
    (delivered,) = set(redis.scan_iter(match=job_key("*"))) - before
    later = api.post(
        f"/v1/models/{trained_digits}/generate", json={"seed": 2}, headers={"Prefer": "respond-async"}
    )
    fetched = result_of(api, later.headers["location"])
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    assert 0 < redis.ttl(delivered) <= REPLY_TTL_SECONDS
    assert redis.ttl(job_key(later.json()["id"])) > REPLY_TTL_SECONDS  # the result TTL, an hour


def call(model: str, seeds: list[int]) -> GenerateCall:
    return GenerateCall(new_job_id(), model, seeds, None, 1.0, 1, "png", result_ttl=60)


@pytest.fixture
def consumer(redis_url: str, tmp_path: Path) -> GenerateConsumer:
    """A consumer on a real Redis (flushed) and an empty data folder; no thread runs it."""
    Redis.from_url(redis_url).flushdb()
    settings = Settings(redis_url=redis_url, data_dir=tmp_path, batch_max_images=4)
    return GenerateConsumer(Runtime(settings, torch.device("cpu")), name="c1")


def answered(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()


def queue(redis: Redis, *calls: GenerateCall) -> None:
    with redis.pipeline() as pipeline:
        for each in calls:
            submit(pipeline, each)
        pipeline.execute()


def test_a_batch_takes_what_waits_up_to_the_image_cap(consumer: GenerateConsumer) -> None:
    redis = consumer.redis
    waiting = [call("m_a", [1, 2]), call("m_b", [3]), call("m_a", [4]), call("m_a", [5])]
    queue(redis, *waiting)
    batch = consumer.take_batch()
    assert [each.job_id for each in batch] == [each.job_id for each in waiting[:3]]  # 4 images: the cap
    assert redis.llen(QUEUE_KEY) == 1 and redis.llen(taken_key("c1")) == 3  # held until answered
    assert [each.job_id for each in consumer.take_batch()] == [waiting[3].job_id]
    assert consumer.take_batch() == []  # nothing waits: the blocking take times out


def test_an_answer_is_kept_long_only_when_nobody_waits_for_it() -> None:
    waiting = GenerateCall("gen_1", "m", [1], None, 1.0, 1, "png", 3600, wait_seconds=20, enqueued_at=1000.0)
    assert waiting.answer_ttl(now=1001.0) == REPLY_TTL_SECONDS  # its request takes it from the reply list
    assert waiting.answer_ttl(now=1019.0) == 3600  # the wait may have run out: 202, then GET /v1/jobs
    assert dataclasses.replace(waiting, wait_seconds=0).answer_ttl(now=1000.5) == 3600  # asked for 202


def test_a_wait_that_runs_out_records_the_call_without_hiding_an_answer(consumer: GenerateConsumer) -> None:
    """A waited-for call is queued with no job record; when the wait runs out the API records it as
    queued, and an answer that a worker stored in that instant stays the job's outcome."""
    redis = consumer.redis
    unanswered, answered = call("m_x", [1]), call("m_x", [2])
    with redis.pipeline(transaction=False) as pipeline:
        enqueue(pipeline, unanswered)
        enqueue(pipeline, answered)
        answer(pipeline, answered, Answer({"kind": "json", "body": {"ok": True}}))
        pipeline.execute()
    assert read_job(redis, unanswered.job_id) is None
    with redis.pipeline(transaction=False) as pipeline:
        record_queued(pipeline, unanswered)
        record_queued(pipeline, answered)
        pipeline.execute()
    assert read_job(redis, unanswered.job_id)["status"] == "queued"
    kept = read_job(redis, answered.job_id)
    assert kept["status"] == "finished" and kept["answer"].result == {"kind": "json", "body": {"ok": True}}
    assert unanswered.result_ttl - 5 < redis.ttl(job_key(unanswered.job_id)) <= unanswered.result_ttl


def test_calls_are_cut_into_forward_passes_of_at_most_the_cap() -> None:
    calls = [call("m", [1, 2, 3]), call("m", [4]), call("m", list(range(6))), call("m", [7]), call("m", [8])]
    assert [[len(each.seeds) for each in chunk] for chunk in image_capped_chunks(calls, 4)] == [
        [3, 1],
        [6],
        [1, 1],
    ]


def test_a_failed_request_is_answered_with_its_error(consumer: GenerateConsumer) -> None:
    missing = call("m_gone", [1])
    queue(consumer.redis, missing)
    answered(consumer.serve(consumer.take_batch()))
    record = read_job(consumer.redis, missing.job_id)
    assert record["status"] == "failed" and "m_gone does not exist" in record["answer"].error
    assert consumer.redis.llen(taken_key("c1")) == 0
    assert Answer.decode(consumer.redis.lpop(reply_key(missing.job_id))).error == record["answer"].error


def test_a_dead_consumers_requests_go_back_to_the_front(consumer: GenerateConsumer) -> None:
    redis = consumer.redis
    taken, later = [call("m_a", [1]), call("m_a", [2])], call("m_a", [3])
    queue(redis, *taken, later)
    assert len(consumer.take_batch()) == 3
    redis.rpush(QUEUE_KEY, redis.rpop(taken_key("c1")))  # `later` back on the queue, as if never taken
    redis.set(alive_key("c2"), 1)
    redis.rpush(taken_key("c2"), call("m_b", [9]).encode())  # a live consumer's request stays put
    redis.sadd(CONSUMERS_KEY, "c1", "c2", "c3")  # c3 died having taken nothing

    assert recover_dead_consumers(redis) == 2  # c1 has no heartbeat
    back = [GenerateCall.decode(raw) for raw in redis.lrange(QUEUE_KEY, 0, -1)]
    assert [each.job_id for each in back] == [each.job_id for each in [*taken, later]]
    assert [each.attempts for each in back] == [1, 1, 0]
    assert not redis.exists(taken_key("c1")) and redis.llen(taken_key("c2")) == 1
    assert redis.smembers(CONSUMERS_KEY) == {b"c2"}  # the dead are forgotten


def test_a_request_whose_consumers_keep_dying_fails(consumer: GenerateConsumer) -> None:
    redis = consumer.redis
    doomed = call("m_a", [1])
    queue(redis, doomed)
    for _ in range(MAX_ATTEMPTS):
        assert redis.lmove(QUEUE_KEY, taken_key("c1"), "LEFT", "RIGHT") is not None
        redis.sadd(CONSUMERS_KEY, "c1")
        recover_dead_consumers(redis)
    record = read_job(redis, doomed.job_id)
    assert record["status"] == "failed" and f"stopped {MAX_ATTEMPTS} times" in record["answer"].error
    assert redis.llen(QUEUE_KEY) == 0


def test_a_small_request_is_not_answered_after_another_models_large_pass(
    consumer: GenerateConsumer,
) -> None:
    """Each model's pass is answered as soon as it renders, fewest images first: one image for model B,
    queued behind 60 for model A in the same batch, is answered before them."""
    storage = consumer.runtime.storage
    large, small = make_model(storage, []), make_model(storage, [])
    consumer.runtime.settings.batch_max_images = 64
    queue(consumer.redis, behind := call(large.id, list(range(60))), first := call(small.id, [7]))
    answered(consumer.serve(consumer.take_batch()))
    assert consumer.redis.llen(taken_key("c1")) == 0  # answered requests leave the taken list
    records = {each.job_id: read_job(consumer.redis, each.job_id) for each in (behind, first)}
    assert all(record["status"] == "finished" for record in records.values())
    assert records[first.job_id]["ended_at"] < records[behind.job_id]["ended_at"]


def test_taken_requests_can_be_given_back_in_order(consumer: GenerateConsumer) -> None:
    """What a consumer does when Redis failed while it answered: its taken requests go back to the
    front of the queue, ahead of what waits, in their order."""
    redis = consumer.redis
    taken, waiting = [call("m_a", [1]), call("m_a", [2])], call("m_a", [3])
    queue(redis, *taken)
    consumer.take_batch()
    queue(redis, waiting)
    consumer._give_back_taken()
    back = [GenerateCall.decode(raw).job_id for raw in redis.lrange(QUEUE_KEY, 0, -1)]
    assert back == [each.job_id for each in [*taken, waiting]] and redis.llen(taken_key("c1")) == 0
