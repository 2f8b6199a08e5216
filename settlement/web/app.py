"""The application factory: middleware (security headers, the upload size limit), the
exception → status mapping in one place, templates, static files and the routes."""

from __future__ import annotations

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
from .messages import for_portal
from .portal import Busy, MissingCompanies, NotFound, Portal, Settings
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
        message = for_portal(str(exc))
    extra: dict = {}
    if isinstance(exc, ReplaceRefused):
        extra["changes"] = exc.changes
    if isinstance(exc, ForeignRows):
        extra |= {"rows": exc.rows, "count": exc.count}
    if isinstance(exc, MissingCompanies):
        extra["missing"] = exc.missing
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


#: What a request's field should have been, by pydantic's error type (its English never shown).
EXPECTED = {
    "missing": "必须填写",
    "date_type": "应为日期 YYYY-MM-DD",
    "date_parsing": "应为日期 YYYY-MM-DD",
    "date_from_datetime_parsing": "应为日期 YYYY-MM-DD",
    "date_from_datetime_inexact": "应为日期 YYYY-MM-DD",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "json_invalid": "不是有效的 JSON",
    "json_type": "不是有效的 JSON",
    "extra_forbidden": "不是可用的字段",
}


def field_problem(error: dict) -> tuple[str, str]:
    """One pydantic error as (the field's name, what it should be, in Chinese)."""
    path = [str(p) for p in error["loc"][1:] if not isinstance(p, int)]
    kind = error["type"]
    field = ".".join(path) or ("请求体" if error["loc"][:1] == ("body",) else "请求")
    if kind in EXPECTED:
        return field, EXPECTED[kind]
    ctx = error.get("ctx") or {}
    limits = {
        "greater_than_equal": ("应不小于 {}", "ge"),
        "greater_than": ("应大于 {}", "gt"),
        "less_than_equal": ("应不大于 {}", "le"),
        "less_than": ("应小于 {}", "lt"),
        "string_too_short": ("至少 {} 个字符", "min_length"),
        "string_too_long": ("至多 {} 个字符", "max_length"),
        "literal_error": ("应为 {} 之一", "expected"),
        "enum": ("应为 {} 之一", "expected"),
    }
    if kind in limits:
        text, key = limits[kind]
        return field, text.format(ctx.get(key, ""))
    return field, "格式不正确"


async def handle_validation(request: Request, exc: RequestValidationError) -> Response:
    """A request's fields that do not parse: one Chinese sentence naming each field (422)."""
    problems = [field_problem(e) for e in exc.errors()]
    message = "；".join(f"{field}：{what}" for field, what in problems)
    if wants_json(request):
        return JSONResponse(
            {
                "detail": message,
                "errors": [{"field": field, "problem": what} for field, what in problems],
            },
            status_code=422,
        )
    return error_response(request, UsageError(message))


async def handle_multipart(request: Request, exc: MultiPartException) -> Response:
    return error_response(request, UsageError(f"上传的表单无法解析：{exc.message}"))


def check_listen(host: str, port: int) -> None:
    """Refuse, before anything starts, an address the portal cannot listen on: a port in use
    would otherwise end in uvicorn's English traceback."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UsageError(f"无法解析监听地址 {host}；请用 --host 指定本机的地址") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"端口 {port} 已被占用；请用 --port 指定其他端口") from None
            if exc.errno == errno.EACCES:
                raise UsageError(
                    f"没有权限监听端口 {port}（1024 以下的端口需要管理员权限）；请用 --port 指定其他端口"
                ) from None
            raise UsageError(
                f"无法在 {host}:{port} 监听（{exc.strerror}）；请用 --host、--port 指定本机的地址和端口"
            ) from None


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
