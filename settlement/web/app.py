"""The application factory: middleware (security headers, the upload size limit), the
exception → status mapping in one place, templates, static files and the routes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from .. import __version__
from ..clock import local_text, now_utc
from ..errors import (
    ConfigError,
    InputFileError,
    RefusedError,
    ReplaceRefused,
    SettlementError,
    UsageError,
)
from . import api, api_payouts, pages, pages_auditor, pages_payout, pages_simulate  # noqa: F401 (api_payouts: routes on api.router)
from .access import Forbidden, NotAuthenticated, identify
from .accounts import BadLogin, Throttled
from .portal import Busy, NotFound, Portal, Settings
from .simulations import Simulations
from .submissions import ForeignRows, TooLarge
from .templating import OFFICE, render, templates

HERE = Path(__file__).parent
log = logging.getLogger("settlement.web")

#: Pages: scripts and styles only from this site, no frames, forms only to this site.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The OpenAPI page's own inline start-up script and styles.
CSP_DOCS = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: Statements and notices as published (self-contained HTML with inline styles): no script at all.
CSP_DOCUMENT = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


class SecurityHeaders:
    """Every response: CSP (unless the route set its own), no framing, no sniffing, no referrer,
    no caching of what is shown to a logged-in user."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                policy = CSP_DOCS if path.startswith(("/docs", "/static-offline-docs")) else CSP
                extra = {
                    b"content-security-policy": policy.encode(),
                    b"x-frame-options": b"DENY",
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
                    b"cache-control": b"no-store",
                }
                if scope.get("scheme") == "https":
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                for key, value in extra.items():
                    if key not in present:
                        headers.append((key, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse a request body over the limit: at once by its Content-Length, or as soon as more
    arrives than the limit (413, with a message saying what to do)."""

    def __init__(self, app, limit: int, upload_limit: int) -> None:
        self.app, self.limit, self.upload_limit = app, limit, upload_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length and length.isdigit() and int(length) > self.limit:
            message = str(TooLarge(self.upload_limit))
            if scope.get("path", "").startswith("/api/"):
                response: Response = JSONResponse({"detail": message}, status_code=413)
            else:
                response = Response(
                    f"<!doctype html><meta charset=utf-8><title>文件过大</title><p>{message}</p>",
                    status_code=413,
                    media_type="text/html",
                )
            # the body is not read: the client may still be sending it, so close the connection
            response.headers["connection"] = "close"
            return await response(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise TooLarge(self.upload_limit)
            return message

        await self.app(scope, limited, send)


#: The OpenAPI page and schema: for logged-in users only, like every page (the Swagger UI's own
#: scripts under /static-offline-docs are the library's, and stay open).
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")


class DocsNeedLogin:
    """401 for the OpenAPI page and schema without a session or token (the login page, or JSON
    for the schema)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path") in DOCS_PATHS:
            request = Request(scope)
            if identify(request, request.app.state.portal.accounts) is None:
                if scope["path"] == "/openapi.json":
                    response: Response = JSONResponse(
                        {"detail": NOT_AUTHENTICATED},
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                else:
                    response = pages.login_page(request, NOT_AUTHENTICATED, 401)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


STATUS = (
    (NotAuthenticated, 401),
    (BadLogin, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (TooLarge, 413),
    (ForeignRows, 422),
    (Throttled, 429),
    (ReplaceRefused, 409),
    (UsageError, 422),
    (ConfigError, 422),
    (InputFileError, 422),
    (RefusedError, 409),
    (Busy, 503),
    (SettlementError, 500),
)
TITLES = {
    403: "无权访问",
    404: "未找到",
    409: "操作未执行",
    413: "文件过大",
    422: "输入有误",
    429: "请稍后再试",
    500: "系统错误",
    503: "系统繁忙",
}
NOT_AUTHENTICATED = "未登录或登录已过期：请先登录，或在请求头中提供 Authorization: Bearer 令牌"


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def error_response(request: Request, exc: Exception) -> Response:
    """The one place that turns an error into a status and a message (JSON or a page)."""
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
    if isinstance(exc, NotAuthenticated):
        message = NOT_AUTHENTICATED
    elif isinstance(exc, Forbidden):
        message = str(exc) or "无权访问"
    else:
        message = str(exc)
    extra: dict = {}
    if isinstance(exc, ReplaceRefused):
        extra["changes"] = exc.changes
    if isinstance(exc, ForeignRows):
        extra |= {"rows": exc.rows, "count": exc.count}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if wants_json(request):
        return JSONResponse({"detail": message, **extra}, status_code=status, headers=headers)
    if status == 401:
        return pages.login_page(request, message, status)
    principal = identify(request, request.app.state.portal.accounts)
    return render(
        request,
        principal,
        "error.html",
        TITLES.get(status, "操作未完成"),
        status,
        message=message,
        **extra,
    )


async def handle(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, SettlementError | NotAuthenticated | Forbidden):
        log.exception("internal error on %s", request.url.path)
        exc = SettlementError(f"内部错误：{type(exc).__name__}（详细信息见服务器日志）")
    return error_response(request, exc)


async def handle_http(request: Request, exc: StarletteHTTPException) -> Response:
    text = {404: "页面不存在", 405: "不支持该请求方法"}.get(exc.status_code, str(exc.detail))
    if wants_json(request):
        return JSONResponse({"detail": text}, status_code=exc.status_code)
    principal = identify(request, request.app.state.portal.accounts)
    return render(request, principal, "error.html", text, exc.status_code, message=text)


async def handle_validation(request: Request, exc: RequestValidationError) -> Response:
    problems = "；".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or '请求'}：{e['msg']}" for e in exc.errors()
    )
    return JSONResponse(
        {
            "detail": f"请求格式错误：{problems}",
            "errors": json.loads(json.dumps(exc.errors(), default=str)),
        },
        status_code=422,
    )


async def handle_multipart(request: Request, exc: MultiPartException) -> Response:
    return error_response(request, UsageError(f"上传的表单无法解析：{exc.message}"))


def create_app(settings: Settings) -> FastAPI:
    """The portal for one output folder, store and configuration."""
    portal = Portal(settings)
    app = FastAPIOffline(
        title=f"{OFFICE} API",
        version=__version__,
        redoc_url=None,
        description=(
            "快递进村补贴结算（SPEC §11）的 JSON 接口。企业系统用 `Authorization: Bearer 令牌` "
            "调用（令牌由管理员用 `settle user token` 生成）；浏览器会话的 POST 需带 "
            "`X-CSRF-Token`。金额均为整数“分”（`*_fen`）。"
        ),
    )
    app.state.portal = portal
    app.state.simulations = Simulations(portal)
    app.state.templates = templates
    app.state.started_at = local_text(now_utc())
    app.add_middleware(
        BodyLimit, limit=settings.upload_limit + 1024 * 1024, upload_limit=settings.upload_limit
    )
    app.add_middleware(DocsNeedLogin)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(MultiPartException, handle_multipart)
    app.add_exception_handler(Exception, handle)
    for kind in (SettlementError, NotAuthenticated, Forbidden):
        app.add_exception_handler(kind, handle)
    app.include_router(api.public)
    app.include_router(api.router)  # with api_payouts' routes, registered on import
    app.include_router(pages.router)
    app.include_router(pages_auditor.router)
    app.include_router(pages_simulate.api)
    app.include_router(pages_simulate.router)
    app.include_router(pages_payout.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app
