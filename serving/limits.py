"""Request body size limit (413) as a plain ASGI middleware, for declared and streamed bodies alike."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from serving.metrics import ASGIApp, Message, Scope
from serving.problems import MEDIA_TYPE, Problem, problem_body


class BodyTooLarge(Problem):
    """Raised inside `receive` once a streamed body passes the limit.

    An HTTPException, because FastAPI turns any other error while reading a body into a 400.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes", code="body_too_large")


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, before the endpoint reads them when Content-Length says so."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Callable[[Message], Awaitable[None]]) -> None:
        body = json.dumps(problem_body(413, "body_too_large", f"request body larger than {self.max_bytes} bytes"),
                          ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
