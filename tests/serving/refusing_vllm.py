"""A stand-in for a vLLM server that is up but refuses every completion with 400, in vLLM's own error shape (as
vLLM answers a prompt plus ``max_tokens`` longer than its ``--max-model-len``). It answers ``/health``,
``/v1/models``, and loads and unloads any adapter.

In the test process: :func:`start` (a thread on a free loopback port). As a process, in place of the vLLM
environment's python (``serving.vllm.python``): ``python refusing_vllm.py -m vllm.entrypoints.openai.api_server
--host H --port P ...`` (every argument but ``--host``, ``--port`` and ``--served-model-name`` is ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REASON = ("This model's maximum context length is 16 tokens. However, you requested 19 tokens (3 in the messages, "
          "16 in the completion). Please reduce the length of the messages or completion.")


def handler(served_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict | str) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/health":
                self._send(200, "")
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": served_name, "object": "model"}]})
            else:
                self._send(404, {"detail": "Not Found"})

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
                self._send(200, "Success")
            elif self.path == "/v1/completions":
                self._send(400, {"object": "error", "message": REASON, "type": "BadRequestError", "param": None,
                                 "code": 400})
            else:
                self._send(404, {"detail": "Not Found"})

        def log_message(self, *args):
            pass

    return Handler


def start(served_name: str = "any") -> ThreadingHTTPServer:
    """A server on a free loopback port, in a daemon thread; ``shutdown()`` it when done."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(served_name))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name", default="any")
    args, _ = parser.parse_known_args(argv)
    ThreadingHTTPServer((args.host, args.port), handler(args.served_model_name)).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
