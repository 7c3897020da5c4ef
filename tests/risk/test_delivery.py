"""Alert delivery to a loopback webhook receiver and a loopback SMTP server, both started by the test."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import keyring
import keyring.backend
import keyring.errors
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from keyring.backends import fail

from spx_core.risk.alerts import Alert, Severity
from spx_core.risk.delivery import (
    NO_KEYCHAIN,
    SERVICE,
    SMTP_SECRET,
    WEBHOOK_SECRET,
    DeliverySettings,
    DeliverySettingsError,
    KeychainError,
    Notifier,
    delete_secret,
    keychain_problem,
    secret,
    store_secret,
)

PASSWORD = "s3cret-Pa55word!"


def alert(alert_id: int = 1, severity: Severity = Severity.WARNING, key: str = "limit_warning:max_delta") -> Alert:
    return Alert(id=alert_id, key=key, rule=key.partition(":")[0], severity=severity,
                 message="Portfolio delta 182 is 91% of the 200 limit (iron condor)", first_ns=1, last_ns=2)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps secrets in a dict (the test's OS keychain)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def keychain():
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


@pytest.fixture
def no_keychain():
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


# --- webhook receiver -----------------------------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1:<free port> that records POSTed JSON; the first ``fail_first`` get a 500."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.hits = 0
        self.fail_first, self.status = fail_first, status
        self.hold = threading.Event()
        self.hold.set()
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hits += 1
                receiver.auth.append(self.headers.get("Authorization"))
                receiver.got.set()
                receiver.hold.wait(10)
                if receiver.hits <= receiver.fail_first:
                    self.send_response(receiver.status)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]
    yield make
    for r in made:
        r.stop()


def test_an_alert_is_posted_as_json_to_the_webhook(receiver):
    hook = receiver()
    notifier = Notifier(DeliverySettings(webhook_url=hook.url), backoff_s=0.01)
    assert notifier.send(alert(7))
    assert notifier.flush(10)
    notifier.close()
    [body] = hook.bodies
    assert body["text"] == body["message"] == "Portfolio delta 182 is 91% of the 200 limit (iron condor)"
    assert (body["id"], body["key"], body["severity"], body["source"]) == (7, "limit_warning:max_delta", "warning",
                                                                            SERVICE)
    [result] = notifier.results
    assert (result.channel, result.ok, result.attempts) == ("webhook", True, 1)


def test_a_stored_webhook_token_is_sent_as_a_bearer_header_and_never_logged(receiver, keychain, caplog):
    caplog.set_level(logging.DEBUG)
    hook = receiver(fail_first=1)
    store_secret(WEBHOOK_SECRET, PASSWORD)
    notifier = Notifier(DeliverySettings(webhook_url=hook.url), backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    assert hook.auth == [f"Bearer {PASSWORD}"] * 2
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]


def test_without_a_keychain_the_webhook_goes_without_a_token(receiver, no_keychain):
    hook = receiver()
    notifier = Notifier(DeliverySettings(webhook_url=hook.url))
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    assert hook.auth == [None] and notifier.results[0].ok


def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(receiver, caplog):
    hook = receiver(fail_first=2)
    notifier = Notifier(DeliverySettings(webhook_url=hook.url), retries=3, backoff_s=0.05)
    start = time.monotonic()
    notifier.send(alert())
    assert notifier.flush(10)
    elapsed = time.monotonic() - start
    notifier.close()
    assert hook.hits == 3 and len(hook.bodies) == 1
    [result] = notifier.results
    assert (result.ok, result.attempts) == (True, 3)
    assert elapsed >= 0.05 + 0.10  # backed off 1x then 2x before the third try


def test_a_webhook_that_keeps_failing_gives_up_after_the_retries_with_one_line(receiver, caplog):
    hook = receiver(fail_first=99)
    notifier = Notifier(DeliverySettings(webhook_url=hook.url), retries=2, backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    [result] = notifier.results
    assert (result.ok, result.attempts, hook.hits) == (False, 3, 3)
    assert "HTTP Error 500" in result.error and "\n" not in result.error
    assert any("not delivered by webhook after 3 attempt(s)" in r.getMessage() for r in caplog.records)


def test_a_webhook_4xx_is_a_configuration_error_and_not_retried(receiver):
    hook = receiver(fail_first=99, status=404)
    notifier = Notifier(DeliverySettings(webhook_url=hook.url), retries=3, backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    [result] = notifier.results
    assert (result.ok, result.attempts, hook.hits) == (False, 1, 1)
    assert result.error == "webhook answered HTTP 404 Not Found: check the webhook URL"


def test_alerts_below_min_severity_are_not_sent(receiver):
    hook = receiver()
    notifier = Notifier(DeliverySettings(webhook_url=hook.url, min_severity="critical"))
    assert not notifier.send(alert(1, Severity.WARNING))
    assert notifier.send(alert(2, Severity.CRITICAL))
    assert notifier.flush(10)
    notifier.close()
    assert [b["id"] for b in hook.bodies] == [2]
    assert not Notifier(DeliverySettings()).send(alert(3, Severity.CRITICAL))  # no channel on


def test_send_never_waits_and_a_full_queue_drops_the_oldest_with_a_logged_line(receiver, caplog):
    hook = receiver()
    hook.hold.clear()  # the receiver hangs on the first request until released
    notifier = Notifier(DeliverySettings(webhook_url=hook.url, queue_size=2), backoff_s=0.01)
    notifier.send(alert(1))
    assert hook.got.wait(10)  # the worker is busy with alert 1
    start = time.monotonic()
    for k in (2, 3, 4):
        assert notifier.send(alert(k))
    assert time.monotonic() - start < 0.5  # the caller never waits on the network
    hook.hold.set()
    assert notifier.flush(10)
    notifier.close()
    assert [b["id"] for b in hook.bodies] == [1, 3, 4]
    assert any("queue full (2): dropped the oldest alert 2" in r.getMessage() for r in caplog.records)


def test_close_joins_the_worker_and_later_sends_are_refused(receiver, caplog):
    hook = receiver()
    notifier = Notifier(DeliverySettings(webhook_url=hook.url))
    notifier.send(alert(1))
    notifier.close()
    assert [b["id"] for b in hook.bodies] == [1]  # what was queued is delivered before the join
    assert not notifier._thread.is_alive()
    assert not notifier.send(alert(2))
    assert any("notifier is closed" in r.getMessage() for r in caplog.records)


def test_close_does_not_wait_out_the_backoff(receiver):
    hook = receiver(fail_first=99)
    notifier = Notifier(DeliverySettings(webhook_url=hook.url), retries=5, backoff_s=30.0)
    notifier.send(alert())
    assert hook.got.wait(10)
    start = time.monotonic()
    notifier.close()
    assert time.monotonic() - start < 5.0
    assert not notifier.results[0].ok


# --- e-mail ------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.logins: list[tuple[bytes, bool]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
        self.logins.append((auth_data.login, ok))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@pytest.fixture
def smtp_server():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port(), authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


def _mail_settings(box: Mailbox, **kw) -> DeliverySettings:
    base = {"smtp_host": "127.0.0.1", "smtp_port": box.port, "smtp_user": "trader", "smtp_from": "desk@example.com",
            "smtp_to": "me@example.com, risk@example.com", "smtp_tls": False}
    return DeliverySettings(**{**base, **kw})


def test_an_alert_is_mailed_with_the_keychain_password_which_never_reaches_the_log(smtp_server, keychain, caplog):
    caplog.set_level(logging.DEBUG)
    store_secret(SMTP_SECRET, PASSWORD)
    assert keychain.secrets == {(SERVICE, SMTP_SECRET): PASSWORD}
    notifier = Notifier(_mail_settings(smtp_server), backoff_s=0.01)
    notifier.send(alert(5, Severity.CRITICAL))
    assert notifier.flush(10)
    notifier.close()
    [(sender, rcpts, message)] = smtp_server.messages
    assert sender == "desk@example.com" and rcpts == ["me@example.com", "risk@example.com"]
    assert message["Subject"].startswith("[SPX Terminal] CRITICAL: Portfolio delta 182")
    assert smtp_server.logins == [(b"trader", True)]
    assert notifier.results[0].ok
    assert caplog.records  # the delivery was logged ...
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]  # ... never with the password


def test_a_refused_login_is_one_line_without_the_password_and_not_retried(smtp_server, keychain, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-" + PASSWORD
    store_secret(SMTP_SECRET, wrong)
    notifier = Notifier(_mail_settings(smtp_server), retries=3, backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    [result] = notifier.results
    assert (result.ok, result.attempts) == (False, 1)
    assert result.error == "SMTP login as trader refused (535): store the right password in Settings"
    assert not [r for r in caplog.records if wrong in r.getMessage() or PASSWORD in r.getMessage()]
    assert smtp_server.messages == []


def test_without_a_keychain_mail_with_a_login_fails_in_one_line_and_nothing_is_written(smtp_server, no_keychain,
                                                                                       tmp_path):
    assert keychain_problem() == NO_KEYCHAIN
    with pytest.raises(KeychainError, match="^no OS keychain available: install/enable one"):
        store_secret(SMTP_SECRET, PASSWORD)
    with pytest.raises(KeychainError, match="no OS keychain"):
        secret(SMTP_SECRET)
    notifier = Notifier(_mail_settings(smtp_server), retries=3, backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    [result] = notifier.results
    assert (result.ok, result.attempts, result.error) == (False, 1, NO_KEYCHAIN)
    assert smtp_server.messages == []


def test_no_stored_password_says_where_to_enter_it(smtp_server, keychain):
    notifier = Notifier(_mail_settings(smtp_server), backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    assert notifier.results[0].error == ("no SMTP password stored for trader: enter it in Settings (it is kept in "
                                         "the OS keychain)")


def test_mail_without_a_login_needs_no_keychain(smtp_server, no_keychain):
    notifier = Notifier(_mail_settings(smtp_server, smtp_user=""))
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    assert notifier.results[0].ok and len(smtp_server.messages) == 1


def test_tls_required_against_a_server_without_starttls_is_a_one_line_error(smtp_server, keychain):
    store_secret(SMTP_SECRET, PASSWORD)
    notifier = Notifier(_mail_settings(smtp_server, smtp_tls=True), retries=3, backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    [result] = notifier.results
    assert (result.ok, result.attempts) == (False, 1)
    assert result.error.startswith(f"SMTP server 127.0.0.1:{smtp_server.port} does not offer STARTTLS")
    assert smtp_server.logins == []  # the password never went over plain text


def test_webhook_and_mail_are_independent_channels(smtp_server, keychain, receiver):
    hook = receiver(fail_first=99)
    store_secret(SMTP_SECRET, PASSWORD)
    notifier = Notifier(_mail_settings(smtp_server, webhook_url=hook.url), retries=1, backoff_s=0.01)
    notifier.send(alert())
    assert notifier.flush(10)
    notifier.close()
    assert [(r.channel, r.ok) for r in notifier.results] == [("webhook", False), ("email", True)]
    assert len(smtp_server.messages) == 1


def test_secrets_round_trip_and_delete_through_the_keychain(keychain):
    assert secret("webhook_token") is None
    store_secret("webhook_token", "abc")
    assert secret("webhook_token") == "abc"
    delete_secret("webhook_token")
    delete_secret("webhook_token")  # nothing stored: no error
    assert secret("webhook_token") is None


@pytest.mark.parametrize("kw, words", [
    ({"webhook_url": "ftp://x"}, "must start with https://"),
    ({"smtp_port": 0}, "SMTP port 0 must be 1-65535"),
    ({"smtp_host": "mail", "smtp_user": "u"}, "at least one recipient"),
    ({"smtp_host": "mail", "smtp_to": "a@b"}, "sender address"),
    ({"timeout_s": 0}, "timeout_s 0 must be above 0"),
    ({"queue_size": 0}, "queue_size 0 must be at least 1"),
])
def test_delivery_settings_out_of_range_say_which(kw, words):
    with pytest.raises(DeliverySettingsError, match=words):
        DeliverySettings(**kw)
