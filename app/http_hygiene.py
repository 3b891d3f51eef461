"""What every route gets from HTTP without declaring it: HEAD wherever GET works, and `nosniff`."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
_RAW_NOSNIFF = [(name.lower().encode(), value.encode()) for name, value in NOSNIFF.items()]


class NoSniff:
    """`X-Content-Type-Options: nosniff` on every response: a browser must not run an answer (an error
    echoing input, a PNG) as HTML or script because its bytes look like it. Starlette's last-resort
    500 is sent outside the middleware, so app.errors sets the header on it too."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_RAW_NOSNIFF]}
            await send(message)

        await self.app(scope, receive, send_nosniff)


class HeadAsGet:
    """A HEAD is answered as the GET would be, headers only (FastAPI routes declared for GET do not
    take HEAD). Once the headers are out the route is told the client left, so an event stream ends."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def receive_until_done() -> Message:
            return {"type": "http.disconnect"} if done else await receive()

        async def send_headers_only(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.body":
                done = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        scope["method"] = "GET"  # in place: the router's choice of route stays visible to app.http_metrics
        await self.app(scope, receive_until_done, send_headers_only)
