"""The Airflow plugin of this project: the LLMOps view (FastAPI app in the api-server, entry in the navigation).

It lives at the top of plugins/ because plugins/.airflowignore keeps Airflow from scanning the llmops package
itself. The app is built lazily by the api-server only; other components load this file without FastAPI work.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from llmops.links import VIEW_PREFIX


class _LazyApp:
    """An ASGI app that builds the real one on its first request (keeps plugin loading cheap everywhere)."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            from llmops.view.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class LLMOpsPlugin(AirflowPlugin):
    name = "llmops"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": VIEW_PREFIX, "name": "LLMOps view"}]
    external_views = [{"name": "LLMOps", "href": f"{VIEW_PREFIX}/use-cases/", "url_route": "llmops",
                       "destination": "nav", "category": "browse"}]
