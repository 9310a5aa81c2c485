"""The DAG run's note, set through Airflow's REST API with the HTTP provider's hook.

The Task SDK of Airflow 3.3 cannot set the note of a running DAG run, so this needs an HTTP connection
``llmops_airflow_api`` (host = the API server's base URL; login/password for ``/auth/token``, or a token as the
password). Without it the note is left alone and the log says so.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

NOTE_CONNECTION = "llmops_airflow_api"


class _Bearer:
    """requests auth: ``Authorization: Bearer <token>`` (the hook's session auth, so nothing overrides it)."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def set_run_note(dag_id: str, run_id: str, text: str, conn_id: str = NOTE_CONNECTION) -> bool:
    """PATCH the run's note (first 1,000 characters); False (and a log line saying why) when it cannot."""
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # not defined: the usual case on the embedded default
        log.info("DAG run note not set: no '%s' connection to Airflow's REST API (the Task SDK cannot set it)",
                 conn_id)
        return False
    try:
        token = conn.password
        if conn.login:
            token = HttpHook(method="POST", http_conn_id=conn_id).run(
                "/auth/token", json={"username": conn.login, "password": conn.password},
                extra_options={"timeout": 10}).json()["access_token"]
        hook = HttpHook(method="PATCH", http_conn_id=conn_id, auth_type=lambda *_: _Bearer(token))
        hook.run(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}?update_mask=note", json={"note": text[:1000]},
                 extra_options={"timeout": 10})
    except Exception as e:  # the note is a convenience: the decision is in the log, MLflow and the report
        log.warning("DAG run note not set through connection '%s': %s", conn_id, e)
        return False
    log.info("DAG run note set through connection '%s'", conn_id)
    return True
