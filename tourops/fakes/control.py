"""What both fake gateways share: the control endpoint that simulates an outage."""

from __future__ import annotations

from aiohttp import web

MODES = ("up", "down", "slow")


def new_outage() -> dict:
    """The fake's outage state: ``up``, ``down`` (every API call fails on the gateway's side) or ``slow`` (each
    call waits ``seconds`` first, so clients time out)."""
    return {"mode": "up", "seconds": 0.0}


def outage_control(outage: dict):
    """``POST /_fake/outage`` with JSON ``{"mode": "up" | "down" | "slow", "seconds": n}``."""

    async def set_outage(request: web.Request) -> web.Response:
        try:
            data = await request.json()
            mode = data["mode"]
            seconds = float(data.get("seconds", 0))
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"error": 'expected JSON {"mode": "up"|"down"|"slow", "seconds": n}'}, status=400
            )
        if mode not in MODES:
            return web.json_response({"error": f"unknown mode {mode!r}: use up, down or slow"}, status=400)
        outage.update(mode=mode, seconds=seconds)
        return web.json_response(outage)

    return set_outage
