"""The DAG run note goes through the HTTP provider's hook to Airflow's REST API (a local HTTP server stands in for
the api-server's two routes: the token and the PATCH of the run)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmops.run_note import set_run_note


@pytest.fixture
def api():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            return json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")

        def do_POST(self):  # noqa: N802
            body = self._body()
            seen.append(("POST", self.path, body, self.headers.get("Authorization")))
            if body == {"username": "admin", "password": "s3cret"}:
                self._reply(201, {"access_token": "tok-123"})
            else:
                self._reply(401, {"detail": "bad credentials"})

        def do_PATCH(self):  # noqa: N802
            seen.append(("PATCH", self.path, self._body(), self.headers.get("Authorization")))
            ok = self.headers.get("Authorization") == "Bearer tok-123"
            self._reply(200 if ok else 401, {"note": "x"} if ok else {"detail": "unauthorized"})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_the_note_is_patched_with_a_token_from_the_login(api, monkeypatch):
    host, seen = api
    monkeypatch.setenv("AIRFLOW_CONN_LLMOPS_AIRFLOW_API", f"http://admin:s3cret@{host}")
    assert set_run_note("qa__finetune", "manual__1", "**Gate PASSED** " + "x" * 2000) is True
    (post, patch) = seen
    assert post[:3] == ("POST", "/auth/token", {"username": "admin", "password": "s3cret"})
    assert patch[0] == "PATCH" and patch[1] == "/api/v2/dags/qa__finetune/dagRuns/manual__1?update_mask=note"
    assert patch[3] == "Bearer tok-123" and len(patch[2]["note"]) == 1000


def test_a_refused_login_or_a_missing_connection_leaves_the_note_alone(api, monkeypatch, caplog):
    host, seen = api
    monkeypatch.delenv("AIRFLOW_CONN_LLMOPS_AIRFLOW_API", raising=False)
    assert set_run_note("qa__finetune", "manual__1", "text") is False
    assert "no 'llmops_airflow_api' connection" in caplog.text and seen == []
    monkeypatch.setenv("AIRFLOW_CONN_LLMOPS_AIRFLOW_API", f"http://admin:wrong@{host}")
    assert set_run_note("qa__finetune", "manual__1", "text") is False
    assert "DAG run note not set through connection 'llmops_airflow_api'" in caplog.text
    assert [s[0] for s in seen] == ["POST"]  # nothing patched without a token
