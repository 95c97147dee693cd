"""Models: the catalog's list, a model's page and a version's page, and the forms that
move aliases and stages, decide approvals, edit the model-risk inventory and retire.

Every write is a form carrying the session's CSRF token, posted to a route here that
calls the API as the session's key: the API decides (roles, the approval gate,
retirement's checks). A refusal re-renders the page it came from with the API's message
and status; a change redirects back (303) with a fixed note naming what was done.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from modelyard.domain.models import INVENTORY_FIELDS, RISK_TIERS, VALIDATION_STATUSES, Stage
from modelyard.ui.apiclient import Api, ApiError
from modelyard.ui.views import ROLE_RANK, PageNotFound, View, page

router = APIRouter()

# the stages a form may move a version to (retirement has its own form)
STAGES = tuple(stage.value for stage in Stage if stage is not Stage.RETIRED)
# what a change's redirect says (fixed texts: nothing from the URL is shown as a message)
DONE = {
    "alias": "The alias was moved.",
    "unalias": "The alias was removed.",
    "stage": "The stage was changed.",
    "request": "Approval was requested.",
    "approve": "The version was approved.",
    "reject": "The version was rejected.",
    "inventory": "The inventory was saved.",
    "retire": "The version was retired.",
    "retire-model": "Every version of the model was retired.",
}


def _path(name: str) -> str:
    return quote(name, safe="")


def _can(view: View, workspace: str) -> dict[str, bool]:
    """Which forms to show: by the role held in the workspace that owns the model (the
    API refuses the rest anyway)."""
    role = dict((name, held) for name, held in view.me.get("roles", [])).get(workspace, "")
    rank = ROLE_RANK.get(role, -1)
    return {"request": rank >= ROLE_RANK["contributor"], "promote": rank >= ROLE_RANK["maintainer"]}


@router.get("/models")
@page
async def models(view: View, search: str = "") -> Response:
    found = await view.api.get("/models", params={"name_contains": search} if search else None)
    production: dict[str, list[int]] = {}
    for version in await view.api.get("/versions", params={"stage": "production"}):
        production.setdefault(version["model"], []).append(version["version"])
    return view.render(
        "models/list.html", models=found, search=search.strip(), production=production
    )


@router.get("/models/{name}")
@page
async def model(view: View, name: str, card: str = "", done: str = "") -> Response:
    return await _model_page(view, name, card=int(card) if card.isdigit() else None, done=done)


@router.get("/models/{name}/versions/{number}")
@page
async def version(view: View, name: str, number: str, done: str = "") -> Response:
    if not number.isdigit():
        raise PageNotFound(
            f"There is no version '{number}' of model '{name}': versions are numbers."
        )
    return await _version_page(view, name, int(number), done=done)


async def _model_page(
    view: View,
    name: str,
    *,
    card: int | None = None,
    done: str = "",
    refusal: str = "",
    status: int = 200,
) -> Response:
    model = await _visible(view, f"/models/{_path(name)}", f"model '{name}'")
    # versions and endpoints are listed in the model's own workspace, whichever is chosen
    api = Api(view.request, workspace=model["workspace"])
    versions = await api.get("/versions", params={"name": name})
    versions.sort(key=lambda v: v["version"], reverse=True)
    approvals = {
        v["version"]: await api.get(f"/models/{_path(name)}/versions/{v['version']}/approvals")
        for v in versions
    }
    card_version = card or model["aliases"].get("champion") or model["latest_version"]
    return view.render(
        "models/model.html",
        status,
        model=model,
        can=_can(view, model["workspace"]),
        versions=versions,
        live=[v for v in versions if v["stage"] != "retired"],
        approvals=approvals,
        decisions=_decisions(approvals),
        inventory=await api.get(f"/models/{_path(name)}/inventory"),
        serving=_serving(name, await api.get("/endpoints")),
        card=await _card(api, name, card_version) if card_version else None,
        card_version=card_version,
        stages=STAGES,
        risk_tiers=RISK_TIERS,
        validation_statuses=VALIDATION_STATUSES,
        done=DONE.get(done, ""),
        refusal=refusal,
    )


async def _version_page(
    view: View, name: str, number: int, *, done: str = "", refusal: str = "", status: int = 200
) -> Response:
    base = f"/models/{_path(name)}/versions/{number}"
    version = await _visible(view, base, f"model '{name}' version {number}")
    run, datasets = None, []
    if version["run_id"]:
        run = await view.api.get(f"/runs/{_path(version['run_id'])}")
        datasets = await view.api.get(f"/runs/{_path(version['run_id'])}/datasets")
    return view.render(
        "models/version.html",
        status,
        model_version=version,  # "version" is modelyard's own, in every page's context
        can=_can(view, (await view.api.get(f"/models/{_path(name)}"))["workspace"]),
        run=run,
        datasets=datasets,
        approval=await view.api.get(f"{base}/approvals"),
        history=await view.api.get(f"{base}/stages"),
        card=await _card(view.api, name, number),
        stages=STAGES,
        done=DONE.get(done, ""),
        refusal=refusal,
    )


async def _visible(view: View, path: str, what: str) -> dict[str, Any]:
    """What ``path`` reads, or a 404 naming ``what`` when it is not in the key's workspaces.

    Every member may read, so a read refused (403) means the resource belongs to a
    workspace the key is not a member of: the page does not say whose it is."""
    try:
        return dict(await view.api.get(path))
    except ApiError as error:
        if error.status != 403:
            raise
        mine = ", ".join(sorted(name for name, _ in view.me.get("roles", [])))
        raise PageNotFound(f"There is no {what} in your workspaces ({mine}).") from None


async def _card(api: Api, name: str, number: int) -> dict[str, Any]:
    card = await api.get(f"/models/{_path(name)}/versions/{number}/card", params={"format": "json"})
    return dict(card)


def _decisions(approvals: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every decision on every version, newest first."""
    rows = [{**h, "version": number} for number, a in approvals.items() for h in a["history"]]
    return sorted(rows, key=lambda row: row["at"], reverse=True)


def _serving(name: str, endpoints: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Version number -> the endpoints that route to it (with their weight) or shadow it."""
    serving: dict[int, list[dict[str, Any]]] = {}
    for endpoint in endpoints:
        spec = endpoint["spec"]
        targets = [(r, False) for r in spec["routes"]] + [(s, True) for s in spec["shadows"]]
        for target, shadow in targets:
            if target["model"] == name:
                use = {"endpoint": endpoint["name"], "weight": target["weight"], "shadow": shadow}
                serving.setdefault(target["version"], []).append(use)
    return serving


# -- writes ----------------------------------------------------------------------------


@router.post("/models/{name}/aliases")
@page
async def move_alias(view: View, name: str) -> Response:
    form = await _form(view)

    async def act() -> str:
        alias = form.get("alias", "").strip()
        if form.get("version") == "none":
            await view.api.call("DELETE", f"/models/{_path(name)}/aliases/{_path(alias)}")
            return "unalias"
        body = {"version": _number(form.get("version"), "version")}
        await view.api.call("PUT", f"/models/{_path(name)}/aliases/{_path(alias)}", json=body)
        return "alias"

    return await _write(view, name, form, act)


@router.post("/models/{name}/stage")
@page
async def move_stage(view: View, name: str) -> Response:
    form = await _form(view)

    async def act() -> str:
        number = _number(form.get("version"), "version")
        body = {"stage": form.get("stage", ""), "comment": form.get("comment", "")}
        await view.api.post(f"/models/{_path(name)}/versions/{number}/stage", body)
        return "stage"

    return await _write(view, name, form, act)


@router.post("/models/{name}/approvals")
@page
async def decide(view: View, name: str) -> Response:
    form = await _form(view)

    async def act() -> str:
        number = _number(form.get("version"), "version")
        base = f"/models/{_path(name)}/versions/{number}"
        decision, comment = form.get("decision", ""), form.get("comment", "")
        if decision == "request":
            await view.api.post(f"{base}/approval-requests", {"comment": comment})
        else:
            await view.api.post(f"{base}/approvals", {"decision": decision, "comment": comment})
        return decision if decision in DONE else ""

    return await _write(view, name, form, act)


@router.post("/models/{name}/inventory")
@page
async def edit_inventory(view: View, name: str) -> Response:
    form = await _form(view)

    async def act() -> str:
        changes = {key: form[key].strip() for key in INVENTORY_FIELDS if form.get(key, "").strip()}
        await view.api.call("PATCH", f"/models/{_path(name)}/inventory", json=changes)
        return "inventory"

    return await _write(view, name, form, act)


@router.post("/models/{name}/retire")
@page
async def retire(view: View, name: str) -> Response:
    form = await _form(view)

    async def act() -> str:
        body = {"comment": form.get("comment", "")}
        if form.get("version") == "all":
            await view.api.post(f"/models/{_path(name)}/retire", body)
            return "retire-model"
        number = _number(form.get("version"), "version")
        await view.api.post(f"/models/{_path(name)}/versions/{number}/retire", body)
        return "retire"

    return await _write(view, name, form, act)


async def _write(view: View, name: str, form: dict[str, str], act: Any) -> Response:
    """Run a form's change; back to its page with a note, or the page with the refusal."""
    on_version = form.get("from", "").isdigit()
    try:
        view.check_form(form)
        done = await act()
    except ApiError as error:
        if error.status == 401:
            raise
        if on_version:
            return await _version_page(
                view, name, int(form["from"]), refusal=error.message, status=error.status
            )
        return await _model_page(view, name, refusal=error.message, status=error.status)
    target = f"/models/{_path(name)}"
    if on_version:
        target += f"/versions/{form['from']}"
    return RedirectResponse(f"{target}?done={done}", status_code=303)


async def _form(view: View) -> dict[str, str]:
    # ui.app.form_of does the same, but ui.app imports the pages (an import cycle)
    body = (await view.request.body()).decode("utf-8", "replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}


def _number(text: str | None, field: str) -> int:
    if not text or not text.isdigit():
        raise ApiError(400, "invalid_input", f"choose a {field} (got {text or 'nothing'!r})")
    return int(text)
