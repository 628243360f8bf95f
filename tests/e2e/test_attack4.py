"""Attacks on this session's changes (attack4): a limit an agent holding only a `wdn_` key can get past.
The oracle is always what reached the fake venue, read as the venue (or the framework behind a service) reads it."""
from urllib.parse import parse_qsl

import fakes  # noqa: F401
from test_gateway import raw, world  # noqa: F401  (the fixture)


def rack_method(record):
    """The method a Rack app (Rails; Laravel, Symfony and Express's method-override read the same way) runs:
    a POST whose body is a form (no Content-Type, or a form type) with `_method` runs as that method."""
    if record["method"] != "POST":
        return record["method"]
    content_type = (record["headers"].get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ("", "application/x-www-form-urlencoded"):
        return "POST"
    form = dict(parse_qsl(record["body"].decode("latin-1"), keep_blank_values=True))
    override = (form.get("_method") or "").upper()
    return override if override in ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "LINK", "UNLINK") else "POST"


def test_connection_naming_content_type_cannot_turn_a_json_body_into_a_method_override(world):
    """Warden checks a body for `_method` by the request's Content-Type (a JSON body is read as JSON), then strips
    every field the request's `Connection` names, Content-Type included: the service gets the same body with no
    type, which Rack and the other method-override frameworks read as a form. `{"t": "&_method=DELETE&"}` is a
    harmless JSON object to Warden and `DELETE` to the service, on a path `blocked_endpoints` closes to DELETE."""
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    assert raw(world, "DELETE", "/proxy/fake/repos/acme", agent)[0] == 403  # the limit attacked
    before = len(fake.requests)
    bodies = [b'{"t": "&_method=DELETE&"}', b'{"a":"x","b":"&_method=delete&"}', b'["&_method=DELETE&"]']
    for connection in ["content-type", "Content-Type", "close, content-type", "keep-alive,Content-Type"]:
        for body in bodies:
            raw(world, "POST", "/proxy/fake/repos/acme", agent,
                {"Content-Type": "application/json", "Connection": connection}, body=body)
    ran = [(rack_method(r), r["path"]) for r in fake.requests[before:]]
    # `DELETE /repos/*` is blocked: no call may run as one at the service.
    assert not any(method == "DELETE" and path.startswith("/repos/") and path.count("/") == 2 for method, path in ran), ran
