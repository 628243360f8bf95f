"""Alarms by email: a local SMTP server (aiosmtpd) with STARTTLS under a throwaway CA and a login. Warden must
switch to TLS before it logs in, check the server's certificate against the channel's CA file, log in with the
sealed password, and send one plain message per alarm; a server that offers no STARTTLS gets no login at all."""
import datetime
import ipaddress
import ssl
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import free_port
from test_alarms import DELIVERY, QUIET, OWNER, wait_until, world  # noqa: F401 (world is a fixture)

SMTP_USER, SMTP_PASSWORD = "alerts@example.com", "smtp-PLANTED-password-0042"


def certificate_chain(tmp_path):
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost; returns (ca file, cert file, key file)."""
    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("warden test CA")).issuer_name(name("warden test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


class Mailbox:
    """Records each message and each login attempt (and whether it came over TLS)."""

    def __init__(self):
        self.messages, self.logins = [], []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos, "content": envelope.content.decode(),
                              "tls": session.ssl is not None})
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        self.logins.append({"ok": ok, "tls": session.ssl is not None, "password": auth_data.password.decode()})
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def smtp(tmp_path):
    servers = []

    def make(starttls=True):
        ca, cert, key = certificate_chain(tmp_path)
        box, port = Mailbox(), free_port()
        context = None
        if starttls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=starttls,
                                authenticator=box.authenticate, auth_require_tls=starttls, auth_exclude_mechanism=["LOGIN"])
        controller.start()
        servers.append(controller)
        box.port, box.ca = port, ca
        return box

    yield make
    for controller in servers:
        controller.stop()


def email_channel(box, name="mail", events='["kill_switch", "honey_token_used"]'):
    return f"""
        [notify.{name}]
        kind = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {box.port}
        username = "{SMTP_USER}"
        from = "warden@example.com"
        to = ["ops@example.com", "desk@example.com"]
        ca_file = "{box.ca}"
        events = {events}
        """


def test_an_alarm_is_mailed_over_starttls_with_the_sealed_login(world, smtp):
    box = smtp()
    w = world(notify=email_channel(box), sealed={"mail": SMTP_PASSWORD})
    assert SMTP_PASSWORD not in w.config.read_text()
    w.cli("freeze", "--user", OWNER, "--reason", "drill")
    wait_until(lambda: box.messages, DELIVERY, "no email arrived")
    message = box.messages[0]
    assert message["tls"] and message["from"] == "warden@example.com", message
    assert sorted(message["to"]) == ["desk@example.com", "ops@example.com"], message
    content = message["content"]
    assert "Subject: [Warden critical] Kill switch on" in content and OWNER in content, content
    assert "event: kill_switch" in content and "reason: drill" in content, content
    assert box.logins and all(login["tls"] and login["ok"] for login in box.logins), box.logins
    assert SMTP_PASSWORD not in content and w.key not in content
    [alarm] = [a for a in w.alarms() if a["event"] == "kill_switch"]
    assert alarm["deliveries"] == [{**alarm["deliveries"][0], "channel": "mail", "state": "delivered", "attempts": 1}], alarm
    time.sleep(QUIET)
    assert len(box.messages) == 1, "the alarm was mailed twice"
    assert SMTP_PASSWORD not in w.server.output()


def test_a_wrong_password_is_retried_and_a_server_without_starttls_never_sees_the_login(world, smtp):
    plain = smtp(starttls=False)
    good = smtp()
    w = world(notify=email_channel(plain, "plain") + email_channel(good, "wrong"),
              sealed={"plain": SMTP_PASSWORD, "wrong": "not-the-password"})
    w.cli("freeze", "--user", OWNER)

    def settled():
        alarm = next((a for a in w.alarms() if a["event"] == "kill_switch"), None)
        return alarm if alarm and all(d["attempts"] >= 1 and d["last_error"] for d in alarm["deliveries"]) else None

    alarm = wait_until(settled, DELIVERY, lambda: f"no failed attempts recorded: {w.alarms()}")
    by_channel = {d["channel"]: d for d in alarm["deliveries"]}
    assert by_channel["plain"]["state"] == "pending" and "STARTTLS" in by_channel["plain"]["last_error"], by_channel
    assert by_channel["wrong"]["state"] == "pending" and "535" in by_channel["wrong"]["last_error"], by_channel
    assert not plain.logins and not plain.messages, "a server without TLS was given the login or the message"
    assert good.logins and not good.logins[0]["ok"] and good.logins[0]["tls"] and not good.messages
    assert SMTP_PASSWORD not in str(alarm) and "not-the-password" not in str(alarm)
