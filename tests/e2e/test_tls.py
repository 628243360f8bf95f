"""Serving across hosts: TLS in `warden serve` (client certificates for the gateway, SIGHUP reload, modern
ciphers only), `public_hosts`, and a proxy in `trusted_proxies` naming the client (nginx from Debian, with
its own client certificate towards Warden)."""
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import httpx
import openai
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import fakes
from conftest import BINARY, Server, clean_env, free_port, warden

MODEL = "gpt-test"


class PKI:
    """A throwaway CA and the certificates the tests need, written as PEM files under `folder`."""

    def __init__(self, folder, name="Warden Test CA"):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_path = self.write("ca.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    def write(self, name, data):
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def issue(self, name, common_name, server=False, rsa_key=False):
        """A certificate and key signed by this CA; returns (cert path, key path, DER bytes)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Desk")]))
                   .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return (self.write(f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)), self.write(f"{name}.key", key_pem),
                cert.public_bytes(serialization.Encoding.DER))


class TLSServer(Server):
    """`warden serve` with TLS on its listen address."""

    def __init__(self, data_dir, env, args, ca):
        super().__init__(data_dir, env, args)
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = self.verify = ca


@pytest.fixture
def tls_world(tmp_path, master_key):
    pki = PKI(tmp_path / "pki")
    server_cert, server_key, _ = pki.issue("server", "warden.test", server=True)
    servers, fakes_started = [], []

    def boot(extra_server="", proxies=(), public_hosts=()):
        upstream = fakes.Fake(fakes.openai_handler())
        fakes_started.append(upstream)
        config = tmp_path / f"warden-{len(servers)}.toml"
        config.write_text(f"""
[server]
tls_cert = "{server_cert}"
tls_key = "{server_key}"
tls_client_ca = "{pki.ca_path}"
trusted_proxies = {json.dumps(list(proxies))}
public_hosts = {json.dumps(list(public_hosts))}
{extra_server}

[venues.openai]
base_url = "{upstream.url}"

[prices.openai]
"{MODEL}" = {{ input = 0, output = 1 }}
""")
        data = tmp_path / f"data-{len(servers)}"
        env = {"WARDEN_MASTER_KEY": master_key}
        # An administrator: the rows of calls refused before any key was read have no owner but theirs to see.
        assert warden("user", "create", "tls-owner@example.com", "owner-password-1", "--no-reset", "--admin",
                      "--data-dir", str(data), "--config", str(config), env=env).returncode == 0
        server = TLSServer(data, env, ("--config", str(config)), pki.ca_path)
        servers.append(server)
        server.wait_ready()
        api = server.url + "/api/v1"
        token = requests.post(api + "/auth/login", verify=pki.ca_path,
                              json={"email": "tls-owner@example.com", "password": "owner-password-1"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = requests.post(api + "/credentials", headers=auth, verify=pki.ca_path,
                          json={"venue": "openai", "label": "openai", "secret": {"api_key": fakes.REAL_OPENAI_KEY}})
        assert r.status_code == 201, r.text
        r = requests.post(api + "/agent-keys", headers=auth, verify=pki.ca_path,
                          json={"name": "k", "credential_ids": [r.json()["id"]], "access": "trade"})
        assert r.status_code == 201, r.text
        return {"server": server, "api": api, "auth": auth, "agent": r.json()["key"], "upstream": upstream, "data": data,
                "env": env}

    yield pki, boot, server_cert, server_key
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    for fake in fakes_started:
        fake.stop()


def audit_rows(world, action):
    entries = requests.get(world["api"] + "/audit?limit=200", headers=world["auth"], verify=world["server"].ca).json()["entries"]
    return [json.loads(e["detail"] or "{}") for e in entries if e["action"] == action]


def llm(base_url, agent, ca, cert=None, key=None):
    return chat(base_url, agent, httpx.Client(verify=tls_context(ca, cert, key)))


def test_the_gateway_over_tls_requires_a_client_certificate_from_its_ca(tls_world):
    pki, boot, _, _ = tls_world
    world = boot()
    url, ca = world["server"].url, pki.ca_path
    agent_cert, agent_key, agent_der = pki.issue("agent", "agent-7")

    answer = llm(url, world["agent"], ca, agent_cert, agent_key)
    assert answer.choices[0].message.content
    assert world["upstream"].requests[-1]["headers"]["authorization"] == f"Bearer {fakes.REAL_OPENAI_KEY}"
    row = audit_rows(world, "gateway.result")[0]
    assert row["client_cert"] == hashlib.sha256(agent_der).hexdigest()
    assert "CN=agent-7" in row["client_cert_subject"] and row["client"] == "127.0.0.1"

    # No certificate: the dashboard and API are reached, the gateway is not, nor told which venues there are.
    forwarded = len(world["upstream"].requests)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        llm(url, world["agent"], ca)
    assert "client certificate" in str(refused.value)
    unknown = requests.get(url + "/proxy/nosuch/x", verify=ca)
    assert unknown.status_code == 403 and "openai" not in unknown.text and "client certificate" in unknown.text
    # An absolute-form target names the authority, whatever Host says (RFC 9112 §3.2.2).
    with socket.create_connection(("127.0.0.1", world["server"].port)) as raw_socket:
        with tls_context(ca, agent_cert, agent_key).wrap_socket(raw_socket, server_hostname="localhost") as tls:
            tls.sendall(f"GET https://rebound.example/proxy/openai/v1/models HTTP/1.1\r\nHost: 127.0.0.1:{world['server'].port}\r\n"
                        f"Authorization: Bearer {world['agent']}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    login = requests.get(url + "/login", verify=ca)
    assert login.status_code == 200
    cookies = login.raw.headers.getlist("Set-Cookie")
    assert cookies and all("; Secure" in c for c in cookies)
    # A certificate from another CA ends the handshake.
    stranger = PKI(pki.folder / "other", name="Other CA")
    other_cert, other_key, _ = stranger.issue("agent", "agent-7")
    with pytest.raises(openai.APIConnectionError):
        llm(url, world["agent"], ca, other_cert, other_key)
    # Nothing refused went upstream; every refusal is audited without a certificate.
    assert len(world["upstream"].requests) == forwarded
    refusals = audit_rows(world, "gateway.refuse")
    assert any("client certificate" in r["reason"] and "client_cert" not in r for r in refusals), refusals


def handshake(port, ca, *, maximum=None, ciphers=None):
    context = ssl.create_default_context(cafile=ca)
    if maximum:
        context.maximum_version = maximum
    if ciphers:
        context.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version(), tls.cipher()[0]


def test_only_tls_1_2_and_later_with_forward_secret_aead_suites(tls_world):
    pki, boot, _, _ = tls_world
    port = boot()["server"].port
    version, _ = handshake(port, pki.ca_path)
    assert version == "TLSv1.3"
    version, cipher = handshake(port, pki.ca_path, maximum=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and cipher.startswith("ECDHE-")
    for weak in ("AES128-GCM-SHA256", "AES256-SHA", "ECDHE-ECDSA-AES128-SHA"):
        with pytest.raises(ssl.SSLError):
            handshake(port, pki.ca_path, maximum=ssl.TLSVersion.TLSv1_2, ciphers=weak)
    # Plain HTTP on the TLS port is never answered as HTTP.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3)


def peer_certificate(port, ca):
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca), timeout=5)
    connection.request("GET", "/healthz")
    assert connection.getresponse().read()
    return connection, connection.sock.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_and_keeps_open_connections(tls_world):
    pki, boot, server_cert, server_key = tls_world
    world = boot()
    server = world["server"]
    kept, first = peer_certificate(server.port, pki.ca_path)
    renewed_cert, renewed_key, renewed_der = pki.issue("renewed", "warden.test", server=True)
    shutil.copyfile(renewed_cert, server_cert)
    shutil.copyfile(renewed_key, server_key)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while True:
        connection, served = peer_certificate(server.port, pki.ca_path)
        connection.close()
        if served == renewed_der or time.time() > deadline:
            break
        time.sleep(0.1)
    assert served == renewed_der and served != first
    # The connection opened before the reload goes on, with the certificate it began with.
    kept.request("GET", "/healthz")
    assert kept.getresponse().status == 200 and kept.sock.getpeercert(binary_form=True) == first
    kept.close()
    # A file that cannot be read is logged; the renewed certificate stays in use and the server runs on. A
    # FIFO (which a read would wait on for ever) is refused without being opened.
    for broken in ("garbage", "fifo"):
        pathlib.Path(server_cert).unlink()
        if broken == "fifo":
            os.mkfifo(server_cert)
        else:
            pathlib.Path(server_cert).write_text("not a certificate")
        logged = server.output().count("TLS certificate not reloaded")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while server.output().count("TLS certificate not reloaded") == logged and time.time() < deadline:
            time.sleep(0.1)
        assert server.output().count("TLS certificate not reloaded") == logged + 1, broken
        connection, served = peer_certificate(server.port, pki.ca_path)
        connection.close()
        assert served == renewed_der and server.proc.poll() is None


NGINX_CONF = """
daemon off;
master_process off;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass https://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_ssl_certificate {cert};
            proxy_ssl_certificate_key {key};
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(binary), "nginx is installed by scripts/bootstrap"
    procs = []

    def _start(port, upstream_port, cert, key, ca):
        folder = tmp_path / "nginx"
        folder.mkdir(exist_ok=True)
        (folder / "nginx.conf").write_text(NGINX_CONF.format(
            dir=folder, port=port, upstream=upstream_port, cert=cert, key=key, ca=ca,
            user="user root;" if os.geteuid() == 0 else ""))
        proc = subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}"
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        raise AssertionError("nginx did not start")

    yield _start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def tls_context(ca, cert=None, key=None):
    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    return context


def chat(base_url, agent, client, headers=None):
    return openai.OpenAI(base_url=base_url + "/proxy/openai/v1", api_key=agent, max_retries=0, default_headers=headers,
                         http_client=client).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)


def test_a_trusted_proxy_names_the_client_and_no_one_else_can(tls_world, nginx):
    pki, boot, _, _ = tls_world
    proxy_port = free_port()
    # nginx passes on the Host the agent used (the proxy's address): the gateway takes it as a public host.
    world = boot(proxies=["127.0.0.1/32"], public_hosts=[f"127.0.0.1:{proxy_port}"])
    edge_cert, edge_key, edge_der = pki.issue("edge", "edge-proxy")
    ca = pki.ca_path
    proxy = nginx(proxy_port, world["server"].port, edge_cert, edge_key, ca)
    from_agent = httpx.HTTPTransport(local_address="127.0.0.9")

    # The agent, at 127.0.0.9, through the proxy (which presents its own certificate to Warden): audited
    # with the agent's address and the proxy's certificate.
    assert chat(proxy, world["agent"], httpx.Client(transport=from_agent)).choices[0].message.content
    row = audit_rows(world, "gateway.result")[0]
    assert row["client"] == "127.0.0.9"
    assert row["client_cert"] == hashlib.sha256(edge_der).hexdigest() and "CN=edge-proxy" in row["client_cert_subject"]

    # A Forwarded field written by the client passes nginx untouched: it is not the field the proxy writes
    # (forwarded_header, x-forwarded-for by default), so it is never read.
    forged = {"Forwarded": "for=10.9.9.9;proto=https"}
    assert chat(proxy, world["agent"], httpx.Client(transport=from_agent), headers=forged).choices[0].message.content
    assert audit_rows(world, "gateway.result")[0]["client"] == "127.0.0.9"

    # A failed login through the proxy is counted and audited against the client's address; a forged
    # X-Forwarded-For written by the client is the far end of the chain, not believed.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9")) as browser:
        login = browser.post(proxy + "/api/v1/auth/login", headers={"X-Forwarded-For": "10.9.9.9"},
                             json={"email": "tls-owner@example.com", "password": "wrong-password-1"})
        assert login.status_code == 401
        page = browser.get(proxy + "/login")
    failed = [r for r in audit_rows(world, "auth.login") if "address" in r]
    assert failed[0]["address"] == "127.0.0.9"
    # The proxy said the client came over plain HTTP: the cookie is not Secure there; directly over TLS it is.
    assert page.status_code == 200 and "; Secure" not in page.headers["set-cookie"]
    direct_page = requests.get(world["server"].url + "/login", verify=ca)
    cookies = direct_page.raw.headers.getlist("Set-Cookie")
    assert cookies and all("; Secure" in c for c in cookies)

    # A client that is not a trusted proxy cannot name itself: its forwarded fields are ignored.
    agent_cert, agent_key, _ = pki.issue("agent", "agent-7")
    direct = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.5", verify=tls_context(ca, agent_cert, agent_key)))
    chat(world["server"].url, world["agent"], direct, headers={"X-Forwarded-For": "10.9.9.9", "Forwarded": "for=10.9.9.9;proto=https"})
    row = audit_rows(world, "gateway.result")[0]
    assert row["client"] == "127.0.0.5" and "CN=agent-7" in row["client_cert_subject"]

    # A Host that is neither the listen address nor a public host is refused (a DNS-rebound page).
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat(proxy, world["agent"], httpx.Client(), headers={"Host": "rebound.example:8472"})
    assert "public_hosts" in str(refused.value)


@pytest.mark.parametrize("server_section, setting", [
    ('tls_cert = "{cert}"', "server.tls_cert"),
    ('tls_cert = "{missing}"\ntls_key = "{key}"', "server.tls_cert"),
    ('tls_cert = "{cert}"\ntls_key = "{missing}"', "server.tls_key"),
    ('tls_cert = "{cert}"\ntls_key = "{other_key}"', "server.tls_key"),
    ('tls_cert = "{cert}"\ntls_key = "{key}"\ntls_client_ca = "{missing}"', "server.tls_client_ca"),
    ('trusted_proxies = ["10.0.0.0/33"]', "server.trusted_proxies"),
    ('public_hosts = ["https://warden.example"]', "server.public_hosts[0]"),
])
def test_unusable_serving_settings_are_named_before_the_port_opens(tmp_path, master_key, server_section, setting):
    pki = PKI(tmp_path / "pki")
    cert, key, _ = pki.issue("server", "warden.test", server=True)
    _, other_key, _ = pki.issue("other", "other.test", server=True)
    config = tmp_path / "warden.toml"
    config.write_text("[server]\n" + server_section.format(cert=cert, key=key, other_key=other_key,
                                                          missing=tmp_path / "missing.pem") + "\n")
    port = free_port()
    result = subprocess.run(
        [str(BINARY), "serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}", "--config", str(config)],
        env=clean_env({"WARDEN_MASTER_KEY": master_key}), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert setting in result.stderr, result.stderr


def test_sighup_without_tls_leaves_the_server_running(start, master_key):
    # Also one that comes while the server is still starting (systemctl reload right after start).
    server = start({"WARDEN_MASTER_KEY": master_key}, ready=False)
    # As soon as the process says it ignores SIGHUP (from its first line on), before it is ready.
    status = pathlib.Path(f"/proc/{server.proc.pid}/status")
    deadline = time.time() + 10
    while not int(re.search(r"SigIgn:\s+([0-9a-f]+)", status.read_text()).group(1), 16) & 1:
        assert time.time() < deadline and server.proc.poll() is None
        time.sleep(0.001)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_ready()
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "nothing to reload" not in server.output() and time.time() < deadline:
        time.sleep(0.1)
    assert "nothing to reload" in server.output()
    assert server.proc.poll() is None and requests.get(server.url + "/healthz").status_code == 200


def test_the_cli_logs_in_over_tls_with_a_private_ca(tls_world, tmp_path):
    pki, boot, _, _ = tls_world
    world = boot()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    login = ["login", "tls-owner@example.com", "--url", world["server"].url, "--password-stdin"]
    untrusted = warden(*login, env=env, input="owner-password-1\n")
    assert untrusted.returncode != 0 and "cannot reach Warden" in untrusted.stderr
    trusted = warden(*login, env={**env, "WARDEN_CA_FILE": pki.ca_path}, input="owner-password-1\n")
    assert trusted.returncode == 0, trusted.stderr
    saved = json.loads((tmp_path / "config" / "warden" / "session.json").read_text())
    assert saved["url"] == world["server"].url
    me = requests.get(world["api"] + "/me", headers={"Authorization": f"Bearer {saved['token']}"}, verify=pki.ca_path)
    assert me.status_code == 200 and me.json()["email"] == "tls-owner@example.com"
