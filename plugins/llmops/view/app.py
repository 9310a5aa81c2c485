"""The LLMOps view as a FastAPI app, mounted by the Airflow plugin in the api-server under ``/llmops``.

Every route requires the user logged in to Airflow (the auth manager's JWT, from the UI's cookie or a bearer
token), through the api-server's own dependency; an anonymous request gets 401. Read-only.

The pages live inside Airflow's UI: the navigation entry opens ``/plugin/llmops`` (an iframe on ``/llmops/...``)
and Airflow 3.3 keeps the iframe's path in the UI's URL (``/plugin/llmops/llmops/use-cases/...``). A bare
``/llmops/...`` page opened as a top-level document (an extra link, a bookmark) is redirected into that framed
route (:func:`framed`), by the browser's ``Sec-Fetch-Dest: document`` header, or by the page's own script where no
such header came.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from llmops.links import VIEW_PREFIX
from llmops.view import pages, plots, records

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"chart.umd.min.js": "text/javascript", "view.js": "text/javascript",
                "chart.js.LICENSE.md": "text/plain"}


def framed(path: str, query: str = "") -> str | None:
    """The framed route of a view page: ``<base>/plugin/llmops<base>/llmops/...`` (None: not a view path)."""
    i = path.find(VIEW_PREFIX + "/")
    if i < 0:
        return None
    return f"{path[:i]}/plugin/llmops{path}{'?' + query if query else ''}"


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
    app = FastAPI(title="LLMOps", dependencies=[Depends(_authenticated())], docs_url=None, redoc_url=None,
                  openapi_url=None)
    _add_errors_and_framing(app)
    _add_static_and_index(app)
    _add_use_case_pages(app)
    _add_run_pages(app)
    return app


def _add_errors_and_framing(app: FastAPI) -> None:
    """How a bad name or a missing record answers, and the redirect of a top-level page into Airflow's frame."""
    from llmops.errors import InvalidName, PermanentError

    @app.exception_handler(InvalidName)
    def _invalid_name(_request, e: InvalidName):  # a name of the wrong shape: refused before any path is built
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.exception_handler(PermanentError)
    def _not_found(_request, e: PermanentError):  # a snapshot, version or use case that does not exist
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.middleware("http")
    async def _into_the_frame(request: Request, call_next):
        """A page opened as the browser's top-level document (not in Airflow's iframe, not fetched by a script)
        moves into the framed route; everything else is served as is."""
        if request.method == "GET" and request.headers.get("sec-fetch-dest") == "document":
            target = framed(request.url.path, request.url.query)
            if target:
                return RedirectResponse(target, status_code=307)
        return await call_next(request)


def _add_static_and_index(app: FastAPI) -> None:
    @app.get("/static/{file}")
    def static(file: str):
        if file not in STATIC_FILES:
            raise HTTPException(404, f"no static file {file}")
        return FileResponse(STATIC / file, media_type=STATIC_FILES[file],
                            headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/")
    def index_redirect():
        return RedirectResponse("use-cases/")

    @app.get("/use-cases/", response_class=HTMLResponse)
    def index():
        return pages.index(records.use_cases())


def _add_use_case_pages(app: FastAPI) -> None:
    """A use case's page, a version's lineage chain and a snapshot's manifest."""
    from llmops import names

    @app.get("/use-cases/{name}", response_class=HTMLResponse)
    def use_case(name: str):
        cfg = _config(name)
        found = records.summaries(name)  # every run summary, read once for the whole page
        snaps, versions = records.snapshots(cfg, found), records.versions(cfg.model_name, name, found)
        metrics = [r.metric for r in cfg.gate.rules]
        over_time = plots.versions_over_time(versions, metrics, records.version_intervals(name, versions, metrics))
        serving = plots.per_day(records.serving_days(name), ["p50_latency_ms", "p95_latency_ms", "block_rate",
                                                             "recitation_rate", "length_psi", "vocabulary_overlap"])
        return pages.use_case(name, cfg.model_name, snaps, versions, over_time=over_time,
                              snapshot_rows=plots.snapshot_rows(snaps), serving=serving,
                              serving_limits=records.serving_thresholds(cfg),
                              gate_runs=records.gate_runs(name, found=found),
                              feedback=plots.feedback_per_day(records.feedback_records(name)),
                              preferences=plots.preference_sizes(records.preference_snapshots(cfg)))

    @app.get("/use-cases/{name}/versions/{version}", response_class=HTMLResponse)
    def version(name: str, version: str):
        cfg = _config(name)
        chain = records.chain(cfg, names.version(version, "version"))
        if chain is None:
            raise HTTPException(404, f"{cfg.model_name} has no version {version}")
        return pages.version(name, cfg.model_name, chain)

    @app.get("/use-cases/{name}/snapshots/{snapshot_id}/manifest", response_class=HTMLResponse)
    def manifest(name: str, snapshot_id: str):
        cfg = _config(name)
        m = records.snapshot(cfg, names.snapshot_id(snapshot_id, "snapshot_id"))
        return pages.manifest(name, m, f"{pages.links.snapshot_manifest(name, snapshot_id)}.json")

    @app.get("/use-cases/{name}/snapshots/{snapshot_id}/manifest.json")
    def manifest_json(name: str, snapshot_id: str):
        cfg = _config(name)
        return JSONResponse(records.snapshot(cfg, names.snapshot_id(snapshot_id, "snapshot_id")))


def _run(name: str, run_id: str) -> tuple[dict, str | None]:
    """A DAG run's summary and the version it registered (400: not a run id; 404: no such run)."""
    if not run_id or len(run_id) > 250 or run_id.strip(".") == "" or "/" in run_id or "\\" in run_id:
        raise HTTPException(400, f"run_id: not a DAG run id: {run_id[:80]!r}")
    summary = records.run_summary(name, run_id)
    if summary is None:
        raise HTTPException(404, f"no DAG run {run_id} of {name}")
    return summary, (summary.get("register") or {}).get("version")


def _add_run_pages(app: FastAPI) -> None:
    """A DAG run's gate, training and data-validation pages."""

    @app.get("/use-cases/{name}/runs/{run_id}/gate", response_class=HTMLResponse)
    def gate(name: str, run_id: str):
        _config(name)
        summary, version_no = _run(name, run_id)
        decision = records.decision(summary)
        return pages.gate(name, run_id, plots.gate_forest(decision),
                          plots.regression_suite((summary.get("evaluate") or {}).get("metrics")),
                          (decision or {}).get("text") or "", version_no,
                          (summary.get("finetune") or {}).get("mlflow_run_id"))

    @app.get("/use-cases/{name}/runs/{run_id}/training", response_class=HTMLResponse)
    def training(name: str, run_id: str):
        _config(name)
        summary, version_no = _run(name, run_id)
        runs = records.trained_runs(summary)
        return pages.training(name, run_id, plots.training_loss(records.loss_histories(runs)),
                              plots.sweep_knobs(records.decision(summary)), version_no, runs)

    @app.get("/use-cases/{name}/runs/{run_id}/validation")
    def validation_report(name: str, run_id: str):
        from llmops import paths

        _config(name)
        report = paths.run_dir(name, run_id) / "validation" / "index.html"
        if not _inside(report, paths.llmops_home()) or not report.is_file():
            raise HTTPException(404, f"no validation report for run {run_id}")
        return FileResponse(report, media_type="text/html")


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())
