"""Attacks on this session's changes (attack5): a limit an agent holding only a `wdn_` key can get past.
The oracle is what reached the fake service, read as a framework behind it would read it."""
import gzip
import zlib

import fakes  # noqa: F401
from test_attack4 import rack_method
from test_gateway import raw, world  # noqa: F401  (the fixture)


def framework_method(record):
    """The method a framework that inflates a compressed body (Express's body-parser does by default) and parses a
    form in its declared charset (Tomcat, under Spring's hidden-method filter) runs for a recorded request."""
    headers, body = record["headers"], record["body"]
    encoding = (headers.get("content-encoding") or "").lower()
    try:
        body = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body) if encoding == "deflate" else body
    except (OSError, zlib.error):
        return record["method"]
    content_type = headers.get("content-type") or ""
    charset = content_type.lower().partition("charset=")[2].split(";")[0].strip().strip('"') or "utf-8"
    try:
        text = body.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return record["method"]
    return rack_method({**record, "body": text.encode("utf-8"), "headers": {**headers, "content-type": content_type.split(";")[0]}})


def test_a_compressed_or_otherwise_encoded_body_cannot_carry_a_method_override(world):
    """Warden looks for `_method` in a body's bytes as they are; a framework that first inflates it (gzip, deflate)
    or decodes it in another charset (UTF-16, EBCDIC) finds `_method=DELETE` where Warden saw none. Such bodies are
    refused; a plain or identity-encoded UTF-8 form still goes through."""
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    form = "application/x-www-form-urlencoded"
    assert raw(world, "DELETE", "/proxy/fake/repos/acme", agent)[0] == 403  # the limit attacked
    override = b"_method=DELETE"
    attempts = [
        ({"Content-Type": form, "Content-Encoding": "gzip"}, gzip.compress(override)),
        ({"Content-Type": form, "Content-Encoding": "deflate"}, zlib.compress(override)),
        ({"Content-Type": form, "Content-Encoding": "GZIP"}, gzip.compress(override)),
        ({"Content-Type": form, "Content-Encoding": "identity, gzip"}, gzip.compress(override)),
        ({"Content-Type": form + "; charset=UTF-16LE"}, "_method=DELETE".encode("utf-16-le")),
        ({"Content-Type": form + '; charset="utf-16"'}, "_method=DELETE".encode("utf-16")),
        ({"Content-Type": form + "; charset=cp500"}, "_method=DELETE".encode("cp500")),
        ({"Content-Type": "application/json; charset=utf-32"}, '{"_method": "DELETE"}'.encode("utf-32")),
    ]
    before = len(fake.requests)
    for headers, body in attempts:
        status, answer = raw(world, "POST", "/proxy/fake/repos/acme", agent, headers, body=body)
        assert status == 400 and b"cannot be checked" in answer, (headers, status, answer)
    ran = [framework_method(r) for r in fake.requests[before:]]
    assert not ran, ran  # nothing reached the service
    # What SDKs send still goes through.
    for headers in ({"Content-Type": form}, {"Content-Type": form + "; charset=UTF-8"}, {"Content-Type": form, "Content-Encoding": "identity"}):
        assert raw(world, "POST", "/proxy/fake/repos/acme", agent, headers, body=b"name=widget")[0] == 200, headers
    assert all(framework_method(r) == "POST" for r in fake.requests[before:])
