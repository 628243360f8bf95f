"""LLM fakes that bill like the real venues, for the invariant tests (test_invariants.py).

Unlike fakes.openai_handler (which answers with exactly the requested max_tokens), these read a request the way
the venue's API does and record, per request, the tokens the venue would bill, whatever usage they report and
whether or not the client reads the answer:

- output tokens per generated choice = min(the ceiling the venue honours, the model's natural generation length),
  the generation length a deterministic function of the request in [MIN_GENERATION, model maximum];
- the ceiling the venue honours: chat `max_completion_tokens`, else `max_tokens`; Responses `max_output_tokens`;
  legacy completions `max_tokens` (default 16); Anthropic `max_tokens` (required). An integer (or an integral JSON
  float), 1 ≤ ceiling ≤ the model's maximum, else 400 and nothing billed;
- generations: chat `n` (1..128), legacy completions `best_of` (≥ n, default n): each choice billed;
- input tokens: the prompt's JSON length / 4, rounded up (never more than the request's bytes);
- a field named twice counts by its last occurrence (Python's json, like the venues' parsers);
- a ceiling or multiplier field the endpoint does not know (chat `max_output_tokens` or `best_of`, Responses
  `max_tokens`, `n`, …, Anthropic anything but `max_tokens`) is refused with 400, as OpenAI and Anthropic refuse
  unrecognized arguments.

Each bill is {"tag", "venue", "path", "model", "input", "output"}; `tag` is the request's X-Fuzz-Tag header.
"""
import json
import threading
import zlib

from fakes import Fake, REAL_ANTHROPIC_KEY, REAL_OPENAI_KEY, end_chunks, send_chunk, send_json, start_sse

MIN_GENERATION = 20


class BillingFake(Fake):
    def __init__(self, handler_factory, model_max_output):
        self.bills = []
        self.bill_lock = threading.Lock()
        self.model_max_output = model_max_output
        super().__init__(handler_factory(self))

    def bill(self, h, **entry):
        entry["tag"] = h.headers.get("X-Fuzz-Tag")
        with self.bill_lock:
            self.bills.append(entry)
        h.record["bill"] = entry


def _integer(value):
    """The venue's reading of an integer field: an int or an integral float; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf") and value.is_integer():
        return int(value)
    return None


def _generation(body, index, maximum):
    return MIN_GENERATION + zlib.crc32(body + str(index).encode()) % (maximum - MIN_GENERATION + 1)


def _prompt_tokens(req, *fields):
    text = json.dumps([req.get(f) for f in fields])
    return -(-len(text) // 4)


class Invalid(Exception):
    pass


SIZE_FIELDS = {"max_tokens", "max_completion_tokens", "max_output_tokens", "n", "best_of"}
KNOWN_SIZE_FIELDS = {"/v1/chat/completions": {"max_tokens", "max_completion_tokens", "n"},
                     "/v1/completions": {"max_tokens", "n", "best_of"}, "/v1/responses": {"max_output_tokens"},
                     "/v1/messages": {"max_tokens"}}


def _refuse_unknown(req, path):
    unknown = (SIZE_FIELDS - KNOWN_SIZE_FIELDS[path]) & set(req)
    if unknown:
        raise Invalid(f"Unrecognized request argument supplied: {', '.join(sorted(unknown))}")


def _ceiling(req, fields, default, maximum):
    value = None
    for field in fields:  # the first field present wins
        if field in req and req[field] is not None:
            value = req[field]
            break
    if value is None:
        if default is None:
            raise Invalid("a ceiling is required")
        return default
    ceiling = _integer(value)
    if ceiling is None or not 1 <= ceiling <= maximum:
        raise Invalid(f"invalid output ceiling {value!r}")
    return ceiling


def _stream_flag(req):
    stream = req.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise Invalid("stream must be a boolean")
    return stream


def billing_openai(prices, model_max_output):
    """An OpenAI fake (chat completions, legacy completions, Responses) billing each request as described above.
    `prices`: the models it serves (others: 404)."""

    def factory(fake):
        def handle(h, body):
            if h.headers.get("Authorization") != f"Bearer {REAL_OPENAI_KEY}":
                return send_json(h, 401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}})
            path = h.path.split("?")[0]
            try:
                req = json.loads(body)
                if not isinstance(req, dict):
                    raise Invalid("body must be an object")
                model = req.get("model")
                if not isinstance(model, str) or model not in prices:
                    return send_json(h, 404, {"error": {"message": "model not found", "type": "invalid_request_error"}})
                maximum = fake.model_max_output
                if path in KNOWN_SIZE_FIELDS:
                    _refuse_unknown(req, path)
                if path == "/v1/chat/completions":
                    ceiling = _ceiling(req, ("max_completion_tokens", "max_tokens"), maximum, maximum)
                    n = _integer(req.get("n", 1) if req.get("n") is not None else 1)
                    if n is None or not 1 <= n <= 128:
                        raise Invalid("invalid n")
                    generations, returned = n, n
                    prompt = _prompt_tokens(req, "messages")
                elif path == "/v1/completions":
                    ceiling = _ceiling(req, ("max_tokens",), 16, maximum)
                    n = _integer(req.get("n") if req.get("n") is not None else 1)
                    best_of = _integer(req.get("best_of") if req.get("best_of") is not None else n)
                    if n is None or best_of is None or not 1 <= n <= 128 or not n <= best_of <= 20:
                        raise Invalid("invalid n or best_of")
                    generations, returned = best_of, n
                    prompt = _prompt_tokens(req, "prompt")
                elif path == "/v1/responses":
                    ceiling = _ceiling(req, ("max_output_tokens",), maximum, maximum)
                    generations, returned = 1, 1
                    prompt = _prompt_tokens(req, "input", "instructions")
                else:
                    return send_json(h, 404, {"error": {"message": "unknown path", "type": "invalid_request_error"}})
                stream = _stream_flag(req)
            except (ValueError, Invalid) as e:
                return send_json(h, 400, {"error": {"message": str(e), "type": "invalid_request_error"}})
            per_choice = [min(ceiling, _generation(body, i, maximum)) for i in range(generations)]
            output = sum(per_choice)
            fake.bill(h, venue="openai", path=path, model=model, input=prompt, output=output)
            usage = {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}
            if path == "/v1/responses":
                usage = {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output}
                answer = {"id": "resp_1", "object": "response", "created_at": 1, "model": model, "status": "completed",
                          "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                                      "content": [{"type": "output_text", "text": "fake", "annotations": []}]}],
                          "usage": usage}
                if not stream:
                    return send_json(h, 200, answer)
                start_sse(h)
                send_chunk(h, "event: response.created\ndata: " + json.dumps(
                    {"type": "response.created", "response": dict(answer, status="in_progress", usage=None)}) + "\n\n")
                send_chunk(h, "event: response.output_text.delta\ndata: " + json.dumps(
                    {"type": "response.output_text.delta", "delta": "fake"}) + "\n\n")
                send_chunk(h, "event: response.completed\ndata: " + json.dumps(
                    {"type": "response.completed", "response": answer}) + "\n\n")
                return end_chunks(h)
            if not stream:
                kind = "chat.completion" if path == "/v1/chat/completions" else "text_completion"
                choices = [{"index": i, "message": {"role": "assistant", "content": "fake"}, "text": "fake",
                            "finish_reason": "length"} for i in range(returned)]
                return send_json(h, 200, {"id": "c1", "object": kind, "created": 1, "model": model,
                                          "choices": choices, "usage": usage})
            start_sse(h)
            for i in range(returned):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                         "choices": [{"index": i, "delta": {"content": "fake"}, "text": "fake", "finish_reason": None}]}
                send_chunk(h, f"data: {json.dumps(chunk)}\n\n")
            options = req.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage") is True:
                send_chunk(h, "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                                     "model": model, "choices": [], "usage": usage}) + "\n\n")
            send_chunk(h, "data: [DONE]\n\n")
            end_chunks(h)
        return handle

    return BillingFake(factory, model_max_output)


def billing_anthropic(prices, model_max_output):
    """An Anthropic Messages fake: `max_tokens` is required; one generation per request."""

    def factory(fake):
        def handle(h, body):
            if h.headers.get("x-api-key") != REAL_ANTHROPIC_KEY:
                return send_json(h, 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
            if h.path.split("?")[0] != "/v1/messages":
                return send_json(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}})
            try:
                req = json.loads(body)
                if not isinstance(req, dict):
                    raise Invalid("body must be an object")
                model = req.get("model")
                if not isinstance(model, str) or model not in prices:
                    return send_json(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": "model"}})
                _refuse_unknown(req, "/v1/messages")
                ceiling = _ceiling(req, ("max_tokens",), None, fake.model_max_output)
                stream = _stream_flag(req)
            except (ValueError, Invalid) as e:
                return send_json(h, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(e)}})
            prompt = _prompt_tokens(req, "messages", "system")
            output = min(ceiling, _generation(body, 0, fake.model_max_output))
            fake.bill(h, venue="anthropic", path="/v1/messages", model=model, input=prompt, output=output)
            if not stream:
                return send_json(h, 200, {"id": "m1", "type": "message", "role": "assistant", "model": model,
                                          "content": [{"type": "text", "text": "fake"}], "stop_reason": "max_tokens",
                                          "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": output}})
            start_sse(h)
            events = [
                ("message_start", {"type": "message_start", "message": {
                    "id": "m1", "type": "message", "role": "assistant", "content": [], "model": model, "stop_reason": None,
                    "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "fake"}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                                   "usage": {"output_tokens": output}}),
                ("message_stop", {"type": "message_stop"}),
            ]
            for name, data in events:
                send_chunk(h, f"event: {name}\ndata: {json.dumps(data)}\n\n")
            end_chunks(h)
        return handle

    return BillingFake(factory, model_max_output)
