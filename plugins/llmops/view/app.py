"""The LLMOps view as a FastAPI app, mounted by the Airflow plugin in the api-server under ``/llmops``.

Every route requires the user logged in to Airflow (the auth manager's JWT, from the UI's cookie or a bearer
token), through the api-server's own dependency; an anonymous request gets 401. Read-only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from llmops.view import pages, records


def _authenticated():
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def _config(name: str):
    from llmops import names
    from llmops.config import load_by_name
    from llmops.errors import ConfigError

    names.use_case(name, "use case")  # InvalidName: 400
    try:
        return load_by_name(name)
    except ConfigError:
        raise HTTPException(404, f"no use case '{name}'") from None


def create_app() -> FastAPI:
    from llmops.errors import InvalidName, PermanentError

    app = FastAPI(title="LLMOps", dependencies=[Depends(_authenticated())], docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(InvalidName)
    def _invalid_name(_request, e: InvalidName):  # a name of the wrong shape: refused before any path is built
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.exception_handler(PermanentError)
    def _not_found(_request, e: PermanentError):  # a snapshot, version or use case that does not exist
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.get("/")
    def index_redirect():
        return RedirectResponse("use-cases/")

    @app.get("/use-cases/", response_class=HTMLResponse)
    def index():
        return pages.index(records.use_cases())

    @app.get("/use-cases/{name}", response_class=HTMLResponse)
    def use_case(name: str):
        cfg = _config(name)
        return pages.use_case(name, cfg.model_name, records.snapshots(cfg), records.versions(cfg.model_name))

    @app.get("/use-cases/{name}/versions/{version}", response_class=HTMLResponse)
    def version(name: str, version: str):
        from llmops import names

        cfg = _config(name)
        chain = records.chain(cfg, names.version(version, "version"))
        if chain is None:
            raise HTTPException(404, f"{cfg.model_name} has no version {version}")
        return pages.version(name, cfg.model_name, chain)

    @app.get("/use-cases/{name}/snapshots/{snapshot_id}/manifest")
    def manifest(name: str, snapshot_id: str):
        from llmops import names

        cfg = _config(name)
        return JSONResponse(records.snapshot(cfg, names.snapshot_id(snapshot_id, "snapshot_id")))

    @app.get("/use-cases/{name}/runs/{run_id}/validation")
    def validation_report(name: str, run_id: str):
        from llmops import paths

        _config(name)
        report = paths.run_dir(name, run_id) / "validation" / "index.html"
        if not _inside(report, paths.llmops_home()) or not report.is_file():
            raise HTTPException(404, f"no validation report for run {run_id}")
        return FileResponse(report, media_type="text/html")

    return app


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())
