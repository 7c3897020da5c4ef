"""Alert delivery off the caller's thread: a webhook (HTTP POST of JSON) and e-mail (SMTP), with retries.

    notifier = Notifier(DeliverySettings(webhook_url="https://hooks.example/...", min_severity="warning"))
    notifier.send(alert)        # queued; returns at once (the GUI thread never waits on the network)
    notifier.close()            # delivers what is queued (one try each), then joins the worker

Policy, and why:
    - One worker thread per notifier, fed by a bounded queue: an unreachable server must not grow memory
      without end, so when the queue is full the *oldest* alert is dropped with a logged line (the newest
      says the most about now).
    - Each channel is tried ``1 + retries`` times with exponential backoff (``backoff_s``, 2x, 4x ...); a
      transient failure (connection refused, timeout, HTTP 5xx/408/429) is retried, a configuration error
      (no keychain, no password stored, HTTP 4xx, STARTTLS missing) is not: retrying cannot fix it.
      Channels are independent: a webhook that worked is not re-sent because the e-mail failed.
    - Credentials live only in the OS keychain through ``keyring`` (service ``"spx-terminal"``); never in the
      settings file, never in a log line (the password is scrubbed from any error text before it is logged).
      Without a keychain backend (headless Linux: ``keyring.backends.fail``) nothing falls back to a file: the
      e-mail fails with one line saying how to get a keychain.
    - E-mail uses STARTTLS when ``smtp_tls`` (port 587 style); implicit-TLS port 465 is not supported.

Events: none; ``results`` lists what each delivery did (tests, the self-test and the alerts panel read it).
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import keyring
import keyring.errors
from keyring.backends import fail

from spx_core.risk.alerts import Alert, Severity

__all__ = [
    "NO_KEYCHAIN",
    "SERVICE",
    "SMTP_SECRET",
    "WEBHOOK_SECRET",
    "DeliveryResult",
    "DeliverySettings",
    "DeliverySettingsError",
    "KeychainError",
    "Notifier",
    "delete_secret",
    "keychain_problem",
    "secret",
    "store_secret",
]

log = logging.getLogger(__name__)

#: keyring service name every secret of the terminal is stored under
SERVICE = "spx-terminal"
#: keyring user name of the SMTP password
SMTP_SECRET = "smtp_password"
#: keyring user name of an optional webhook bearer token (sent as ``Authorization: Bearer ...`` when stored)
WEBHOOK_SECRET = "webhook_token"
NO_KEYCHAIN = ("no OS keychain available: install/enable one (e.g. gnome-keyring, KWallet) to send e-mail "
               "with a password")


class KeychainError(RuntimeError):
    """The OS keychain cannot store or give a secret (the message says how to fix it)."""


def keychain_problem() -> str:
    """"" when a keychain backend is available, else :data:`NO_KEYCHAIN` (one line)."""
    return NO_KEYCHAIN if isinstance(keyring.get_keyring(), fail.Keyring) else ""


def _keychain_call(what: str, call: Callable[[], object]) -> object:
    if keychain_problem():
        raise KeychainError(NO_KEYCHAIN)
    try:
        return call()
    except keyring.errors.NoKeyringError:
        raise KeychainError(NO_KEYCHAIN) from None
    except keyring.errors.KeyringError as e:  # locked, refused: say so without the value
        raise KeychainError(f"the OS keychain refused to {what} ({type(e).__name__}); unlock it and try again") \
            from None


def store_secret(name: str, value: str) -> None:
    """Store ``value`` in the OS keychain as ``name`` (service :data:`SERVICE`). Raises :class:`KeychainError`."""
    _keychain_call(f"store {name}", lambda: keyring.set_password(SERVICE, name, value))


def secret(name: str) -> str | None:
    """The secret stored as ``name`` (None when none is). Raises :class:`KeychainError` without a keychain."""
    value = _keychain_call(f"read {name}", lambda: keyring.get_password(SERVICE, name))
    return None if value is None else str(value)


def delete_secret(name: str) -> None:
    """Forget the secret ``name`` (nothing happens when none is stored)."""
    def delete() -> None:
        try:
            keyring.delete_password(SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing stored: already forgotten
    _keychain_call(f"delete {name}", delete)


class DeliverySettingsError(ValueError):
    """A delivery setting is invalid (the message names it and what to enter)."""


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Where alerts go. An empty ``webhook_url`` / ``smtp_host`` turns that channel off.

    Attributes:
        webhook_url: http(s) URL that receives a JSON POST per alert ("text" holds the message line).
        smtp_host, smtp_port: the SMTP server (STARTTLS port 587 by default).
        smtp_user: login name ("" = no login); its password is the keychain secret :data:`SMTP_SECRET`.
        smtp_from: sender address ("" = ``smtp_user``).
        smtp_to: recipient addresses (a comma-separated string is split).
        smtp_tls: upgrade with STARTTLS before login (certificate verified).
        min_severity: alerts below it are not delivered.
        timeout_s: seconds a connection or request may take (> 0).
        queue_size: alerts waiting at most; more drop the oldest (> 0).
    """

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_from: str = ""
    smtp_to: tuple[str, ...] = ()
    smtp_tls: bool = True
    min_severity: Severity = Severity.WARNING
    timeout_s: float = 10.0
    queue_size: int = 100

    def __post_init__(self) -> None:
        to = self.smtp_to.split(",") if isinstance(self.smtp_to, str) else self.smtp_to
        object.__setattr__(self, "smtp_to", tuple(a.strip() for a in to if a.strip()))
        object.__setattr__(self, "min_severity", Severity(self.min_severity))
        if self.webhook_url and urllib.parse.urlsplit(self.webhook_url).scheme not in ("http", "https"):
            raise DeliverySettingsError(f"webhook URL {self.webhook_url!r} must start with https:// (or http://)")
        if not 0 < self.smtp_port < 65536:
            raise DeliverySettingsError(f"SMTP port {self.smtp_port} must be 1-65535 (587 for STARTTLS)")
        if self.smtp_host and not self.smtp_to:
            raise DeliverySettingsError("e-mail alerts need at least one recipient address (smtp_to)")
        if self.smtp_host and not (self.smtp_from or self.smtp_user):
            raise DeliverySettingsError("e-mail alerts need a sender address (smtp_from) or a login (smtp_user)")
        if not self.timeout_s > 0:
            raise DeliverySettingsError(f"timeout_s {self.timeout_s} must be above 0 seconds")
        if self.queue_size < 1:
            raise DeliverySettingsError(f"queue_size {self.queue_size} must be at least 1")

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels turned on: "webhook", "email"."""
        return tuple(name for name, on in (("webhook", self.webhook_url), ("email", self.smtp_host)) if on)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one channel did with one alert: ok after ``attempts`` tries, or the last error (one line)."""

    alert_id: int
    key: str
    channel: str
    ok: bool
    attempts: int
    error: str = ""


class _Permanent(Exception):
    """A failure retrying cannot fix (configuration): the delivery stops at once."""


class Notifier:
    """Delivers alerts on a worker thread (see the module docstring for the policy)."""

    def __init__(self, settings: DeliverySettings, *, secrets: Callable[[str], str | None] = secret,
                 retries: int = 3, backoff_s: float = 1.0) -> None:
        if retries < 0 or backoff_s < 0:
            raise ValueError(f"retries {retries} and backoff_s {backoff_s} must be >= 0")
        self.settings = settings
        self._secrets = secrets
        self._retries = retries
        self._backoff_s = backoff_s
        self._queue: deque[Alert] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._results: deque[DeliveryResult] = deque(maxlen=1000)
        self._secret_values: set[str] = set()  # scrubbed from every error text we log or keep

    @property
    def results(self) -> list[DeliveryResult]:
        """The latest delivery results (at most 1,000), oldest first."""
        with self._cond:
            return list(self._results)

    def send(self, alert: Alert) -> bool:
        """Queue ``alert`` for every channel; returns at once. False when filtered, no channel is on, or closed."""
        if alert.severity.rank < self.settings.min_severity.rank or not self.settings.channels:
            return False
        with self._cond:
            if self._closing.is_set():
                log.warning("alert %s not delivered: the notifier is closed", alert.id)
                return False
            if len(self._queue) >= self.settings.queue_size:
                dropped = self._queue.popleft()
                log.warning("alert delivery queue full (%d): dropped the oldest alert %s (%s)",
                            self.settings.queue_size, dropped.id, dropped.key)
            self._queue.append(alert)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert is delivered or given up; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop: queued alerts get one more try each (no backoff waits), then the worker is joined."""
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("alert delivery still busy after %.0f s at close: %d alerts not delivered",
                            timeout, len(self._queue))

    # --- worker ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing.is_set())
                if not self._queue:
                    return  # closing and drained
                alert = self._queue.popleft()
                self._busy = True
            try:
                for channel in self.settings.channels:
                    result = self._deliver(alert, channel)
                    with self._cond:
                        self._results.append(result)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, alert: Alert, channel: str) -> DeliveryResult:
        send = self._post_webhook if channel == "webhook" else self._send_email
        error = ""
        attempt = 0
        for attempt in range(1, self._retries + 2):
            try:
                send(alert)
            except _Permanent as e:
                error = self._scrub(str(e))
                break
            except Exception as e:  # noqa: BLE001 - any network failure is retried, then reported in one line
                error = self._scrub(f"{type(e).__name__}: {e}")
                if attempt <= self._retries and not self._closing.is_set():
                    log.info("alert %s %s attempt %d failed (%s); retrying", alert.id, channel, attempt, error)
                    self._closing.wait(self._backoff_s * 2 ** (attempt - 1))
                    continue
                break
            else:
                log.info("alert %s delivered by %s (attempt %d)", alert.id, channel, attempt)
                return DeliveryResult(alert.id, alert.key, channel, True, attempt)
        log.warning("alert %s not delivered by %s after %d attempt(s): %s", alert.id, channel, attempt, error)
        return DeliveryResult(alert.id, alert.key, channel, False, attempt, error)

    def _scrub(self, text: str) -> str:
        for value in self._secret_values:
            text = text.replace(value, "***")
        return " ".join(text.split())  # one line

    def _post_webhook(self, alert: Alert) -> None:
        body = json.dumps(_payload(alert)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "spx-terminal-alerts"}
        token = self._optional_secret(WEBHOOK_SECRET)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.settings.webhook_url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code not in (408, 429):
                what = "URL and token" if e.code in (401, 403) else "URL"
                raise _Permanent(f"webhook answered HTTP {e.code} {e.reason}: check the webhook {what}") from None
            raise

    def _send_email(self, alert: Alert) -> None:
        s = self.settings
        password = self._password() if s.smtp_user else None
        message = EmailMessage()
        message["Subject"] = f"[SPX Terminal] {alert.severity.value.upper()}: {alert.message[:120]}"
        message["From"] = s.smtp_from or s.smtp_user
        message["To"] = ", ".join(s.smtp_to)
        message.set_content(f"{alert.message}\n\nrule: {alert.rule}\nkey: {alert.key}\ncount: {alert.count}\n")
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout_s) as smtp:
            smtp.ehlo()
            if s.smtp_tls:
                if not smtp.has_extn("starttls"):
                    raise _Permanent(f"SMTP server {s.smtp_host}:{s.smtp_port} does not offer STARTTLS: use its "
                                     f"STARTTLS port (587) or turn TLS off for a trusted local relay")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if password is not None:
                try:
                    smtp.login(s.smtp_user, password)
                except smtplib.SMTPAuthenticationError as e:
                    raise _Permanent(f"SMTP login as {s.smtp_user} refused ({e.smtp_code}): store the right "
                                     f"password in Settings") from None
            smtp.send_message(message)

    def _optional_secret(self, name: str) -> str | None:
        """A secret that may be absent (no keychain: none); remembered so it is scrubbed from error texts."""
        try:
            value = self._secrets(name)
        except KeychainError:
            return None
        if value:
            self._secret_values.add(value)
        return value or None

    def _password(self) -> str:
        try:
            password = self._secrets(SMTP_SECRET)
        except KeychainError as e:
            raise _Permanent(str(e)) from None
        if not password:
            raise _Permanent(f"no SMTP password stored for {self.settings.smtp_user}: enter it in Settings "
                             f"(it is kept in the OS keychain)")
        self._secret_values.add(password)
        return password


def _payload(alert: Alert) -> dict[str, object]:
    return {"text": alert.message, "id": alert.id, "key": alert.key, "rule": alert.rule,
            "severity": alert.severity.value, "message": alert.message, "first_ns": alert.first_ns,
            "last_ns": alert.last_ns, "count": alert.count, "source": SERVICE}
