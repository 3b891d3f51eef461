"""HTTP figures for /metrics: requests by route, method and status, and their latency.

A pure ASGI middleware, outermost, so it also counts what the other middleware refuses before any route
runs (403 from app.locality and app.same_origin, 413 from app.body_limit). A request is labelled with
the template of the route that served it (`/v1/models/{model_id}/generate`), or `none` when no route
did, never with its raw path; and with a known method or `OTHER`. Label values a client chooses would
make one time series per distinct value: a memory leak anyone could drive.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_ROUTE = "none"  # the route label of a request no route served: a 404, or refused before routing


class HttpFigures:
    """The HTTP metrics of one app, registered in its registry."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "ganforge_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "ganforge_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer (an event stream: until it closes).",
            ["route", "method"],
            registry=registry,
        )


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request: the router puts the route in the scope."""
    route = scope.get("route")
    return route.path if route is not None else NO_ROUTE


class HttpMetrics:
    def __init__(self, app: ASGIApp, figures: HttpFigures):
        self.app = app
        self.figures = figures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        status = 500  # an error that escapes every handler: Starlette's last resort answers 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = route_template(scope)
            self.figures.requests.labels(route, method, str(status)).inc()
            self.figures.duration.labels(route, method).observe(time.perf_counter() - start)
