"""Mount the web UI on the API app: sign-in, the pages, and the files they load.

>>> install_ui(app)     # in api.app.create_app

Routes are left out of the OpenAPI document: they are pages, not API.
"""

from __future__ import annotations

import inspect
import secrets
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.api.session import CSRF_FIELD, SESSION_COOKIE, WORKSPACE_COOKIE
from modelyard.ui.apiclient import Api, ApiError
from modelyard.ui.pages import PAGES
from modelyard.ui.views import View, error_page, page, render, safe_next

STATIC = Path(__file__).parent / "static"
SIGNIN_COOKIE = "modelyard_signin"  # the sign-in form's own CSRF token (double submit)
VENDOR = {"plotly.min.js": ("plotly", "package_data/plotly.min.js")}


async def form_of(request: Request) -> dict[str, str]:
    """A posted form's fields (the last value of each)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def install_ui(app: FastAPI) -> None:
    """Add the UI's routes and static files to ``app`` (the API app)."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_api_route("/ui/vendor/{name}", vendor, include_in_schema=False)
    app.add_api_route("/signin", signin_form, include_in_schema=False)
    app.add_api_route("/signin", signin, methods=["POST"], include_in_schema=False)
    app.add_api_route("/signout", signout, methods=["POST"], include_in_schema=False)
    app.add_api_route("/workspace", switch_workspace, methods=["POST"], include_in_schema=False)
    for router in PAGES:
        app.include_router(router, include_in_schema=False)
    _html_for_browsers(app)


async def vendor(name: str) -> Response:
    """A third-party script installed with modelyard's dependencies (never fetched)."""
    if name not in VENDOR:
        raise StarletteHTTPException(404, f"no file '{name}'")
    package, inner = VENDOR[name]
    path = Path(str(resources.files(package).joinpath(inner)))
    return FileResponse(path, headers={"cache-control": "public, max-age=86400"})


async def signin_form(request: Request, message: str = "", next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "signin.html", message=message, next=safe_next(next), token=token)
    response.set_cookie(SIGNIN_COOKIE, token, httponly=True, samesite="strict", path="/signin")
    return response


async def signin(request: Request) -> Response:
    form = await form_of(request)
    target = safe_next(form.get("next"))
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or form.get(CSRF_FIELD) != expected:
        return await signin_form(request, "The sign-in form expired: please try again.", target)
    key = form.get("key", "").strip()
    if not key:
        return await signin_form(request, "Enter an API key.", target)
    try:
        me = await Api(request, key=key, workspace="").get("/whoami")
    except ApiError as error:
        response = await signin_form(request, error.message, target)
        response.status_code = 401
        return response
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(WORKSPACE_COOKIE, me["workspace"], samesite="strict", path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@page
async def signout(view: View) -> Response:
    view.check_form(await form_of(view.request))
    response = RedirectResponse("/signin?message=You+are+signed+out.", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(WORKSPACE_COOKIE, path="/")
    return response


@page
async def switch_workspace(view: View) -> Response:
    form = await form_of(view.request)
    view.check_form(form)
    chosen = form.get("workspace", "")
    if chosen not in {name for name, _ in view.me.get("roles", [])}:
        raise ApiError(403, "permission_denied", f"you are not a member of workspace '{chosen}'")
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    response.set_cookie(WORKSPACE_COOKIE, chosen, samesite="strict", path="/")
    return response


def _html_for_browsers(app: FastAPI) -> None:
    """A page, not JSON, for a browser that asks for a path that is not there."""
    json_handler = app.exception_handlers[StarletteHTTPException]

    async def on_http_error(request: Request, exc: Exception) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if isinstance(exc, StarletteHTTPException) and wants_html and not _is_api(request):
            title = "Not found" if exc.status_code == 404 else "Refused"
            message = f"There is no page at {request.url.path}."
            if exc.status_code != 404:
                message = str(exc.detail)
            return error_page(request, exc.status_code, title, message)
        answer = json_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, on_http_error)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")
