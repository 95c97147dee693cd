"""What every page shares: the signed-in principal, its workspaces, the CSRF token,
rendering a template, and turning the API's refusals into pages.

A page handler is ``async def handler(view: View) -> Response`` wrapped by ``page``:

>>> @router.get("/models")
... @page
... async def models(view: View) -> Response:
...     return view.render("models.html", models=await view.api.get("/models"))

An unknown key or an expired one sends the browser to sign-in with the API's message;
a 404 from the API is a page naming what was not found; a bug is a page with an error
id (the traceback goes to the server log under that id), never a stack trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modelyard import __version__
from modelyard.api.session import CSRF_FIELD, SESSION_COOKIE, csrf_matches, csrf_token
from modelyard.ui.apiclient import Api, ApiError
from modelyard.ui.format import FILTERS

logger = logging.getLogger("modelyard.ui")

TEMPLATES = Path(__file__).parent / "templates"
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(FILTERS)

# (path, label, permission a workspace role needs to see the link)
NAVIGATION = (
    ("/experiments", "Runs"),
    ("/models", "Models"),
    ("/endpoints", "Endpoints"),
    ("/monitors", "Monitors"),
    ("/lineage", "Lineage"),
)
# pages over what is platform-wide (no workspace owns it): a refusal there stays a 403
PLATFORM_PAGES = frozenset({"/audit"})
ROLE_RANK = {"viewer": 0, "contributor": 1, "maintainer": 2, "admin": 3}
# the headers every page carries: nothing is loaded from another origin
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class PageNotFound(Exception):
    """A name in the page's URL names nothing the key can see."""


class View:
    """One page request: the API as the session's key, and the principal behind it."""

    def __init__(self, request: Request, api: Api, me: dict[str, Any]) -> None:
        self.request = request
        self.api = api
        self.me = me

    @property
    def workspace(self) -> str:
        return str(self.me["workspace"])

    @property
    def role(self) -> str:
        return str(self.me["role"])

    def allows(self, role: str) -> bool:
        """Whether the principal's role in the current workspace is at least ``role``."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    @property
    def is_admin(self) -> bool:
        """Admin of ``default``: users, keys and the audit log are platform-wide."""
        return (
            dict((name, role) for name, role in self.me.get("roles", [])).get("default") == "admin"
        )

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status, view=self, **context)

    def check_form(self, form: dict[str, str]) -> None:
        """Refuse a form without the session's CSRF token."""
        if not csrf_matches(self.api.key, form.get(CSRF_FIELD)):
            raise ApiError(403, "permission_denied", "the form's CSRF token is missing or wrong")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    view: View | None = context.pop("view", None)
    html = ENVIRONMENT.get_template(template).render(
        request=request,
        view=view,
        me=view.me if view else None,
        csrf=csrf_token(view.api.key) if view else "",
        navigation=NAVIGATION,
        path=request.url.path,
        version=__version__,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


Handler = Callable[[View], Awaitable[Response]]


def page(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """A page handler with the session checked and the API's refusals made pages."""

    @functools.wraps(handler)
    async def wrapped(request: Request, **params: Any) -> Response:
        if not request.cookies.get(SESSION_COOKIE):
            return to_signin(request, "")
        api = Api(request)
        view: View | None = None
        try:
            view = View(request, api, await api.get("/whoami"))
            return await handler(view, **params)
        except ApiError as error:
            if error.status == 401:
                return to_signin(request, error.message)
            if view is not None and _elsewhere(request, error):
                mine = ", ".join(sorted(name for name, _ in view.me.get("roles", [])))
                message = f"There is nothing at {request.url.path} in your workspaces ({mine})."
                return error_page(request, 404, "Not found", message, view)
            if error.status >= 500:
                return error_page(
                    request, error.status, "Something went wrong", error.message, view
                )
            titles = {403: "Not allowed", 404: "Not found"}
            title = titles.get(error.status, "Refused")
            return error_page(request, error.status, title, error.message, view)
        except PageNotFound as missing:
            return error_page(request, 404, "Not found", str(missing), view)
        except Exception:
            error_id = secrets.token_hex(6)
            logger.exception("UI page %s failed (error id %s)", request.url.path, error_id)
            message = (
                f"The server could not show this page. Error id: {error_id}. "
                "An administrator finds the details in the server log under this id."
            )
            return error_page(request, 500, "Something went wrong", message, view)

    # FastAPI reads the route's parameters from this: the request, then the handler's own
    # (path and query parameters) after ``view``
    own = list(inspect.signature(handler, eval_str=True).parameters.values())[1:]
    request_parameter = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    wrapped.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [request_parameter, *own], return_annotation=Response
    )
    return wrapped


def _elsewhere(request: Request, error: ApiError) -> bool:
    """A read refused because what it names belongs to a workspace the key is not in:
    for the reader it does not exist (a 404 page that does not name the owner)."""
    return (
        request.method == "GET"
        and request.url.path not in PLATFORM_PAGES
        and error.status == 403
        and "is not a member of workspace" in error.message
    )


def error_page(
    request: Request, status: int, title: str, message: str, view: View | None = None
) -> HTMLResponse:
    return render(request, "error.html", status, view=view, title=title, message=message)


def to_signin(request: Request, message: str) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"next": target, **({"message": message} if message else {})}
    response = RedirectResponse("/signin?" + urlencode(query), status_code=303)
    if message:  # the key no longer works: forget it
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after sign-in (never another origin)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return quote(target, safe="/?=&%:@,;+-_.~")
