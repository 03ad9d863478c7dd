"""HTTP routes (the pack's small JSON API) and the check of queued prompts, on the host's server."""
from __future__ import annotations

from typing import Any, Callable


def add_get_route(path: str, handler: Any) -> bool:
    """Register an aiohttp GET `handler` at `path` on the running host server (see add_route)."""
    return add_route("GET", path, handler)


def add_route(method: str, path: str, handler: Any) -> bool:
    """Register an aiohttp `handler` for `method` ("GET"/"POST") at `path` on the running host server.

    Custom nodes load before the host mounts its route table, so routes added at import time are
    served. Looks the server up in sys.modules instead of importing it: without a server (tests
    that import the host in-process) nothing is registered and False is returned.
    """
    routes = getattr(_prompt_server(), "routes", None)
    if routes is None:
        return False
    # GET through `routes.get`, which also answers HEAD (as the info route always has).
    register = routes.get(path) if method.upper() == "GET" else routes.route(method, path)
    register(handler)
    return True


def _prompt_server() -> Any:
    """The host's running PromptServer, or None (tests that import the host in-process have none).
    Looked up in sys.modules instead of imported, so importing the pack never starts a server."""
    import sys

    return getattr(getattr(sys.modules.get("server"), "PromptServer", None), "instance", None)


PROMPT_PATHS = ("/prompt", "/api/prompt")


def add_prompt_check(check: Callable[[dict], dict]) -> bool:
    """Check every queued API prompt before the host validates it: `check(prompt)` returns
    host-style `node_errors` ({node id: {"errors": [...], ...}}); any -> 400 with them, as the
    host answers a prompt that fails its own validation. Needed because the host converts values
    in place while validating ("false" -> True for a BOOLEAN, "nan" -> NaN for a FLOAT), so a
    node can no longer tell what was sent. A body that is not a JSON object goes to the host."""
    from aiohttp import web

    app = getattr(_prompt_server(), "app", None)
    if app is None:
        return False

    @web.middleware
    async def hypernetwork_prompt_check(request: Any, handler: Any) -> Any:
        if request.method == "POST" and request.path in PROMPT_PATHS:
            try:
                body = await request.json()  # aiohttp keeps the body: the host's handler reads it again
            except (ValueError, RecursionError, UnicodeDecodeError):
                body = None
            prompt = body.get("prompt") if isinstance(body, dict) else None
            node_errors = check(prompt) if isinstance(prompt, dict) else {}
            if node_errors:
                error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                         "details": "; ".join(e["message"] for n in node_errors.values() for e in n["errors"])[:2000],
                         "extra_info": {}}
                return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        return await handler(request)

    app.middlewares.append(hypernetwork_prompt_check)
    return True
