"""The alert repository: raise (de-duplicated), acknowledge, list.

    repo = AlertRepository(store)
    alert, new = repo.raise_alert(draft, now_ns)   # new: deliver it; False: a repeat folded into an open alert
    repo.acknowledge(alert.id, now_ns)
    repo.open_alerts(); repo.recent(200)

De-duplication is by key among *unacknowledged* alerts: a repeat bumps ``count`` and ``last_ns`` (and takes the
repeat's message and severity, the latest figures) without a new row, and is not delivered again. Once
acknowledged, the same key raised again makes a new row. Each call is one ``BEGIN IMMEDIATE`` transaction that
re-reads the key inside the lock, so two processes raising one key never make two open rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from spx_core.risk.alerts import Alert, AlertDraft
from spx_core.storage import schema as t

__all__ = ["AlertRepository", "UnknownAlertError"]


class UnknownAlertError(KeyError):
    """No stored alert has that id."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"no stored alert with id {alert_id}; pick one listed by AlertRepository.recent()")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _alert(row: Any) -> Alert:
    return Alert(id=row.id, key=row.key, rule=row.rule, severity=row.severity, message=row.message,
                 first_ns=row.first_ns, last_ns=row.last_ns, count=row.count, acknowledged_ns=row.acknowledged_ns)


def _open_row(conn: Connection, key: str) -> Any:
    return conn.execute(select(t.alerts).where(t.alerts.c.key == key, t.alerts.c.acknowledged_ns.is_(None))
                        .order_by(t.alerts.c.id.desc()).limit(1)).first()


class AlertRepository:
    """Alerts in a :class:`~spx_core.storage.store.Store`'s database (thread-safe like the store)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def raise_alert(self, draft: AlertDraft, now_ns: int) -> tuple[Alert, bool]:
        """Store ``draft`` raised at ``now_ns``; ``(alert, new)`` where ``new`` means "deliver it".

        An open (unacknowledged) alert with the same key is bumped instead: count + 1, last_ns = now_ns,
        message and severity of this repeat; ``new`` is then False.
        """
        with self._store._write() as conn:
            row = _open_row(conn, draft.key)
            if row is not None:
                conn.execute(update(t.alerts).where(t.alerts.c.id == row.id).values(
                    count=t.alerts.c.count + 1, last_ns=func.max(t.alerts.c.last_ns, now_ns),
                    message=draft.message, severity=draft.severity.value, rule=draft.rule))
                return _alert(conn.execute(select(t.alerts).where(t.alerts.c.id == row.id)).one()), False
            values = {"key": draft.key, "rule": draft.rule, "severity": draft.severity.value,
                      "message": draft.message, "first_ns": now_ns, "last_ns": now_ns, "count": 1,
                      "acknowledged_ns": None}
            alert_id = int(conn.execute(t.alerts.insert(), values).inserted_primary_key[0])
            return _alert(conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).one()), True

    def acknowledge(self, alert_id: int, now_ns: int) -> Alert:
        """Mark alert ``alert_id`` acknowledged at ``now_ns`` (an acknowledged one keeps its first time).

        Raises:
            UnknownAlertError: no alert with that id.
        """
        with self._store._write() as conn:
            conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id, t.alerts.c.acknowledged_ns.is_(None))
                         .values(acknowledged_ns=now_ns))
            row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).first()
            if row is None:
                raise UnknownAlertError(alert_id)
            return _alert(row)

    def acknowledge_all(self, now_ns: int) -> int:
        """Acknowledge every open alert at ``now_ns``; how many were open."""
        with self._store._write() as conn:
            return int(conn.execute(update(t.alerts).where(t.alerts.c.acknowledged_ns.is_(None))
                                    .values(acknowledged_ns=now_ns)).rowcount)

    def open_alerts(self) -> list[Alert]:
        """Unacknowledged alerts, most recently raised first."""
        with self._store._read() as conn:
            rows = conn.execute(select(t.alerts).where(t.alerts.c.acknowledged_ns.is_(None))
                                .order_by(t.alerts.c.last_ns.desc(), t.alerts.c.id.desc())).all()
        return [_alert(r) for r in rows]

    def recent(self, limit: int = 200) -> list[Alert]:
        """The latest ``limit`` alerts, open or acknowledged, newest first (by row id)."""
        if limit <= 0:
            raise ValueError(f"limit {limit} must be positive")
        with self._store._read() as conn:
            rows = conn.execute(select(t.alerts).order_by(t.alerts.c.id.desc()).limit(limit)).all()
        return [_alert(r) for r in rows]
