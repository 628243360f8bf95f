"""Local fake upstreams on 127.0.0.1 that accept only the real credential and record every request."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REAL_OPENAI_KEY = "sk-real-openai-PLANTED-0001"
REAL_ANTHROPIC_KEY = "sk-ant-real-PLANTED-0002"
REAL_SERVICE_TOKEN = "ghp_real_PLANTED_0003"
OPENAI_REQUEST_ID = "req_fake_openai_0001"  # the venue's own request id, which the OpenAI SDK reports


class Fake:
    """A threaded HTTP server with a handler function; `requests` lists what it received."""

    def __init__(self, handler):
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                self.record = {"method": self.command, "path": self.path,
                               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                fake.requests.append(self.record)
                handler(self, body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def send_json(h, status, obj, headers=()):
    data = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    for name, value in headers:
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":  # as HTTP has it: a HEAD answer's head only
        h.wfile.write(data)


def start_sse(h):
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()


def send_chunk(h, text):
    data = text.encode()
    h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    h.wfile.flush()


def end_chunks(h):
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()


def openai_handler(gap=0.2):
    def handle(h, body):
        if h.headers.get("Authorization") != f"Bearer {REAL_OPENAI_KEY}":
            return send_json(h, 401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error", "code": "invalid_api_key"}})
        if h.path.startswith("/v1/hang") or b"hang-please" in (body or b""):
            time.sleep(30)
            return
        if h.path == "/v1/reset":
            start_sse(h)
            send_chunk(h, 'data: {"partial": true}\n\n')
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        req = json.loads(body or b"{}")
        # Completions use exactly max_tokens, so a call costs exactly its reservation.
        completion = req.get("max_tokens") or req.get("max_completion_tokens") or 20
        usage = {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion}
        if req.get("stream"):
            start_sse(h)
            words = ["Hello", " from", " the", " fake", " model"]
            for i, word in enumerate(words):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": req["model"],
                         "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                if (req.get("stream_options") or {}).get("include_usage"):
                    chunk["usage"] = None
                send_chunk(h, f"data: {json.dumps(chunk)}\n\n")
                time.sleep(gap)
            if (req.get("stream_options") or {}).get("include_usage"):
                send_chunk(h, "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                                     "model": req["model"], "choices": [], "usage": usage}) + "\n\n")
            send_chunk(h, "data: [DONE]\n\n")
            return end_chunks(h)
        send_json(h, 200, {"id": "c1", "object": "chat.completion", "created": 1, "model": req.get("model"),
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the fake model"},
                                        "finish_reason": "stop"}], "usage": usage},
                  headers=[("x-request-id", OPENAI_REQUEST_ID)])
    return handle


def anthropic_handler(gap=0.2):
    def handle(h, body):
        if h.headers.get("x-api-key") != REAL_ANTHROPIC_KEY or h.headers.get("Authorization"):
            return send_json(h, 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        req = json.loads(body or b"{}")
        out = req.get("max_tokens", 20)
        if req.get("stream"):
            start_sse(h)
            events = [
                ("message_start", {"type": "message_start", "message": {"id": "m1", "type": "message", "role": "assistant", "content": [],
                                   "model": req["model"], "stop_reason": None, "stop_sequence": None,
                                   "usage": {"input_tokens": 12, "output_tokens": 1}}}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ]
            for word in ["Hi", " there", " friend"]:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}))
            events += [
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": out}}),
                ("message_stop", {"type": "message_stop"}),
            ]
            for name, data in events:
                send_chunk(h, f"event: {name}\ndata: {json.dumps(data)}\n\n")
                time.sleep(gap)
            return end_chunks(h)
        send_json(h, 200, {"id": "m1", "type": "message", "role": "assistant", "model": req.get("model"),
                           "content": [{"type": "text", "text": "Hi there friend"}], "stop_reason": "end_turn",
                           "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": out}})
    return handle


def service_handler(h, body):
    if h.headers.get("X-Api-Token") != f"token {REAL_SERVICE_TOKEN}":
        return send_json(h, 401, {"message": "Bad credentials"})
    send_json(h, 200, {"method": h.command, "path": h.path})
