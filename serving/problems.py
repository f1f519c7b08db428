"""Errors as RFC 9457 problem details: one shape for every refusal, a stable machine-readable `code` and a
Chinese `title` the consoles can show as it is.

    {"type": "about:blank", "status": 403, "code": "forbidden", "title": "无权访问", "detail": "…"}

Handlers never echo the request's input back (a NaN or a lone surrogate there cannot be encoded, and an echo
leaks what a tenant sent); validation problems list the field and the reason only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("quanxuan.serving")
MEDIA_TYPE = "application/problem+json"

# code -> (status, Chinese title). Codes are part of the API: add new ones, never rename.
CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "请求无法解析"),
    "unauthorised": (401, "缺少或无效的 API 密钥"),
    "forbidden": (403, "无权访问"),
    "not_found": (404, "未找到"),
    "unknown_group": (404, "未找到该群"),
    "method_not_allowed": (405, "不支持该请求方法"),
    "conflict": (409, "数据已被他人修改，请刷新后重试"),
    "body_too_large": (413, "请求内容过大"),
    "batch_too_large": (413, "一次提交的事件过多"),
    "unsupported_media_type": (415, "请求格式不受支持"),
    "invalid_request": (422, "请求参数有误"),
    "invalid_events": (422, "部分事件不合规，未保存"),
    "rate_limited": (429, "请求过于频繁，请稍后再试"),
    "busy": (429, "同类计算正在进行，请稍后再试"),
    "internal": (500, "服务内部错误"),
    "not_ready": (503, "服务尚未就绪"),
}
# A bare HTTP status gets the first code listed for it (e.g. 404 → not_found, not unknown_group).
_DEFAULT_CODE = {status: code for code, (status, _) in reversed(list(CODES.items()))}


class Problem(StarletteHTTPException):
    """An HTTP error with a problem code; `extra` members (e.g. `rejected`) join the body."""

    def __init__(self, status: int, detail: str, code: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(status, detail, headers=headers)
        self.code = code or _DEFAULT_CODE.get(status, "internal" if status >= 500 else "bad_request")
        if self.code not in CODES:
            raise ValueError(f"unknown problem code {self.code!r}")
        self.extra = extra


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem-details object for a status, code and detail."""
    return {"type": "about:blank", "status": status, "code": code, "title": CODES[code][1], "detail": detail, **extra}


def problem_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                     **extra: Any) -> Response:
    """A problem-details response (encoded strictly: an unencodable member becomes its repr)."""
    body = json.dumps(problem_body(status, code, detail, **extra), ensure_ascii=False, allow_nan=False, default=repr)
    return Response(body.encode("utf-8", "backslashreplace"), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Field and reason of each validation error, never the input."""
    out = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        message = str(error.get("msg", "invalid"))
        ctx = error.get("ctx") or {}
        if error.get("type") == "json_invalid" and "error" in ctx:
            message = f"invalid JSON: {ctx['error']}"
        out.append({"field": ".".join(loc) or "body",
                    "reason": message.encode("utf-8", "backslashreplace").decode("utf-8")})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        code = exc.code if isinstance(exc, Problem) else _DEFAULT_CODE.get(exc.status_code, "bad_request")
        extra = exc.extra if isinstance(exc, Problem) else {}
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False, default=repr)
        return problem_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None), **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response(422, "invalid_request", detail, errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal", "internal error; the service log has the details")
