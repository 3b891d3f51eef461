"""Webhook deliveries: what was sent for a job and every attempt, and sending one again
(docs/webhooks.md). A job's list sits under the job; a delivery, once known, has its own address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse

from app.dependencies import JobId, RedisDep
from app.job_handles import find_job
from app.responses import LOCATION, error_answer, error_answers
from app.routers.training_jobs import TrainingModelDep
from app.security import AdminOnly, AnyKey
from workers.shared.webhooks import (
    StoredDelivery,
    WebhookDelivery,
    WebhookDeliveryList,
    attempt_in_flight,
    job_deliveries,
    read_delivery,
    redeliver,
)

router = APIRouter(tags=["webhooks"])

DeliveryId = Annotated[
    str, Path(pattern=r"^msg_[0-9a-f]{32}$", description="A delivery's id: its `webhook-id` header.")
]


@router.get(
    "/v1/training-jobs/{training_job_id}/webhook-deliveries",
    summary="A training job's webhook deliveries and their attempts",
    operation_id="training-jobs-webhook-deliveries",
    dependencies=[AdminOnly],
    responses={**error_answer(404, "No such training job."), **error_answers(422)},
)
def list_training_job_deliveries(manifest: TrainingModelDep, redis: RedisDep) -> WebhookDeliveryList:
    return WebhookDeliveryList(deliveries=job_deliveries(redis, manifest.training_job_id))


@router.get(
    "/v1/jobs/{job_id}/webhook-deliveries",
    summary="A job's webhook deliveries and their attempts",
    operation_id="jobs-webhook-deliveries",
    dependencies=[AnyKey],
    responses={**error_answer(404, "No such job, or its result has expired."), **error_answers(422, 502)},
)
def list_job_deliveries(job_id: JobId, redis: RedisDep) -> WebhookDeliveryList:
    """Deliveries outlive a job's record (kept 7 days): 404 only when neither is known."""
    deliveries = job_deliveries(redis, job_id)
    if not deliveries:
        find_job(job_id, redis)
    return WebhookDeliveryList(deliveries=deliveries)


def get_delivery(delivery_id: DeliveryId, redis: RedisDep) -> StoredDelivery:
    delivery = read_delivery(redis, delivery_id)
    if delivery is None:
        raise HTTPException(404, f"webhook delivery {delivery_id!r} not found (deliveries are kept 7 days)")
    return delivery


DeliveryDep = Annotated[StoredDelivery, Depends(get_delivery)]
NOT_FOUND = error_answer(404, "No such delivery, or it has expired.")


def _public(delivery: StoredDelivery) -> WebhookDelivery:
    """The delivery without the body it sends (the job's JSON, which the job's own route shows)."""
    return WebhookDelivery.model_validate(delivery.model_dump(exclude={"body"}))


@router.get(
    "/v1/webhook-deliveries/{delivery_id}",
    summary="One webhook delivery and its attempts",
    operation_id="webhook-deliveries-get",
    dependencies=[AnyKey],
    responses={**NOT_FOUND, **error_answers(422)},
)
def show_delivery(delivery: DeliveryDep) -> WebhookDelivery:
    return _public(delivery)


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivered or failed webhook again",
    operation_id="webhook-deliveries-redeliver",
    dependencies=[AdminOnly],
    response_model=WebhookDelivery,
    responses={
        202: {"description": "The delivery, pending again: follow `Location`.", "headers": LOCATION},
        **NOT_FOUND,
        **error_answer(409, "An attempt at this delivery is queued, scheduled or running."),
        **error_answers(422),
    },
)
def redeliver_delivery(delivery: DeliveryDep, redis: RedisDep) -> JSONResponse:
    """The same `webhook-id` and body, newly signed, in a new round of attempts with the usual
    retries; a receiver that already has the id can ignore it. A pending delivery can be sent again only
    if its attempt was lost (its worker was killed during it)."""
    if delivery.status == "pending" and attempt_in_flight(redis, delivery):
        raise HTTPException(409, f"webhook delivery {delivery.id!r} is still pending: an attempt is queued")
    body = _public(redeliver(redis, delivery)).model_dump(mode="json")
    return JSONResponse(body, 202, headers={"Location": f"/v1/webhook-deliveries/{delivery.id}"})
