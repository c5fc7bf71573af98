"""The case-system API: ``Authorization: Bearer $EARLYHELP_DUTY_TOKEN``.

``GET /api/escalations[?status=open|acknowledged|closed][&area=ID]`` lists escalations (all areas: the
token belongs to the council's system, not to one worker); ``POST /api/escalations/{id}/ack`` with an
optional JSON body ``{"by": "system or person"}`` acknowledges one. Off (503) until the token is set.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from bot.errors import BadInput
from bot.web.keys import BROADCASTER, ESCALATIONS, SETTINGS, WEB_STORE
from bot.web.security import json_error, read_json, same_secret

routes = web.RouteTableDef()


def _authorised(request: web.Request) -> web.Response | None:
    token = request.app[SETTINGS].duty_token
    if not token:
        return json_error(503, "The case-system API is off: set EARLYHELP_DUTY_TOKEN to turn it on.")
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not same_secret(value.strip(), token):
        response = json_error(401, "A valid bearer token is required.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="earlyhelp"'
        return response
    return None


@routes.get("/api/escalations")
async def list_escalations(request: web.Request) -> web.Response:
    refused = _authorised(request)
    if refused:
        return refused
    status = request.query.get("status")
    area = request.query.get("area")
    try:
        items = await asyncio.to_thread(request.app[ESCALATIONS].list, status, [area] if area else None)
    except BadInput as err:
        return json_error(400, str(err))
    await asyncio.to_thread(request.app[WEB_STORE].log, "api", "listed", None, {"count": len(items), "status": status, "area": area})
    return web.json_response({"escalations": items})


@routes.post("/api/escalations/{id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    refused = _authorised(request)
    if refused:
        return refused
    by = "case system"
    if request.can_read_body:
        doc = await read_json(request, 4096)
        if doc.get("by") is not None:
            if not isinstance(doc["by"], str) or not doc["by"].strip() or len(doc["by"]) > 100:
                return json_error(400, "'by' must be a name of 1 to 100 characters.")
            by = doc["by"].strip()
    store = request.app[ESCALATIONS]
    escalation_id = request.match_info["id"]
    if await asyncio.to_thread(store.get, escalation_id) is None:
        return json_error(404, "No such escalation.")
    escalation = await asyncio.to_thread(store.acknowledge, escalation_id, f"api: {by}")
    await asyncio.to_thread(request.app[WEB_STORE].log, "api", "ack", escalation_id, {"by": by})
    request.app[BROADCASTER].bump()
    return web.json_response({"escalation": escalation})
