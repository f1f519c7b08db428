"""Who is calling, checked before anything else: the key, its rate limit and its scope come before the body is
read, so a key outside a route's scope learns nothing from the route's validation; and bodies are strict JSON
(no NaN or Infinity, no lone surrogates), so nothing the encoder cannot write back gets in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from serving import auth
from serving.problems import Problem

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
# An escaped UTF-16 surrogate in the raw body: only then can a decoded string hold a lone one.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


async def offload(blocking: bool, fn: Callable[..., T], *args: Any) -> T:
    """Run a call in the thread pool when it waits on I/O, else right here (a thread hop costs more than the call)."""
    return await run_in_threadpool(fn, *args) if blocking else fn(*args)


def presented_key(request: Request) -> str:
    """The key from `X-API-Key` or `Authorization: Bearer`, or ''."""
    key = request.headers.get("x-api-key")
    if not key:
        authorization = request.headers.get("authorization", "")
        key = authorization[7:] if authorization[:7].lower() == "bearer " else ""
    return key.strip()


async def identify(request: Request) -> auth.Principal:
    """The caller's principal, 401 without a valid key; no rate limit (see `authenticate`)."""
    # Reads the headers itself rather than through FastAPI security classes: this runs on every
    # request, and each extra dependency costs more than the whole cached picks answer.
    services = request.app.state.services
    presented = presented_key(request)
    principal = None
    if auth.KEY_PATTERN.match(presented):
        principal = services.keys.cached(presented) or await run_in_threadpool(services.keys.resolve, presented)
    if principal is None:
        raise Problem(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return principal


def check_wait(wait: float) -> None:
    """429 with Retry-After when a rate-limit wait is due."""
    if wait > 0:
        raise Problem(429, "rate limit exceeded for this key", headers={"Retry-After": str(max(1, math.ceil(wait)))})


async def authenticate(request: Request) -> auth.Principal:
    """The caller's principal; 401 without a valid key, 429 when its rate limit is spent. Once per request."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = await identify(request)
    services = request.app.state.services
    check_wait(await offload(services.cache.blocking, services.limiter.wait_seconds, principal))
    request.state.principal = principal
    return principal


def require(principal: auth.Principal, action: str) -> None:
    """403 unless the principal's role may do `action`."""
    if not auth.allowed(principal, action):
        raise Problem(403, f"a {principal.role} key may not do {action}")


def requires(action: str) -> Callable[[F], F]:
    """Mark an endpoint with the action its caller must be allowed; `GuardedRoute` checks it before the body."""

    def mark(endpoint: F) -> F:
        endpoint.required_action = action  # type: ignore[attr-defined]
        return endpoint

    return mark


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _find_surrogate(value: Any) -> bool:
    """Whether any string (key or value) in a decoded JSON value holds a lone surrogate."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_find_surrogate(k) or _find_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_find_surrogate(v) for v in value)
    return False


def strict_loads(body: bytes) -> Any:
    """JSON as RFC 8259 has it: UTF-8, no NaN or Infinity, no lone surrogates; json.JSONDecodeError otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), text, 0) from None
    if _ESCAPED_SURROGATE.search(text) and _find_surrogate(value):
        raise json.JSONDecodeError("a string holds a lone UTF-16 surrogate", text, 0)
    return value


class StrictJSONRequest(Request):
    """A request whose JSON body is decoded by `strict_loads`."""

    async def json(self) -> Any:
        """The decoded body, cached."""
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class GuardedRoute(APIRoute):
    """A route that checks the caller (key, rate, the endpoint's `requires` action) before reading the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler behind the caller check, on a strict-JSON request."""
        handler = super().get_route_handler()
        action: str | None = getattr(self.endpoint, "required_action", None)

        async def guarded(request: Request) -> Response:
            request = StrictJSONRequest(request.scope, request.receive)
            if action is not None:
                require(await authenticate(request), action)
            return await handler(request)

        return guarded
