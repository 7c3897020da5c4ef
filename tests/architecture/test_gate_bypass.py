"""No order reaches a broker without the pre-trade gate: by construction, proven here (issue 9 §4).

1. Runtime: an ApprovedOrder cannot be constructed; ``mint`` refuses any key but the gate's; the gate took
   the one registration at import, so a second is refused (and a module that grabbed the key first would make
   the gate itself fail to import); a broker's ``submit`` / ``modify`` refuse a bare request, a used approval
   and an expired one, and the broker sees nothing; no Broker subclass overrides the final methods.
2. Static (ast scan of spx_core/ and app/): only gate.py mints or registers, nothing else touches the gate's
   minter, nobody outside spx_core/execution calls a broker's underscored methods, and only the order service
   calls a broker's ``submit`` / ``modify`` / ``adopt`` (adopt takes restored states, not approvals: the
   restart path is the service's ``restore()`` over the store's working orders, which the gate approved when
   they were placed). The scanner is itself tested on offending snippets.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from spx_core.execution import approval, gate
from spx_core.execution.approval import APPROVAL_TTL_NS, ApprovedOrder, GateBypassError
from spx_core.execution.gate import PreTradeGate
from spx_core.execution.paper import PaperBroker
from tests.execution.gate_market import RecordingBroker, StaticMarket, put_credit_spread

REPO = Path(__file__).resolve().parents[2]
GATE = "spx_core/execution/gate.py"
SERVICE = "spx_core/execution/service.py"


# --- runtime -------------------------------------------------------------------------------------------
def test_an_approval_cannot_be_constructed():
    with pytest.raises(GateBypassError, match="issued only by PreTradeGate.check"):
        ApprovedOrder()
    with pytest.raises(GateBypassError):
        ApprovedOrder(put_credit_spread(), ("structure",), 0)


def test_mint_needs_the_gates_key():
    for key in (object(), None, gate):
        with pytest.raises(GateBypassError, match="only the pre-trade gate issues approvals"):
            approval.mint(key, put_credit_spread(), ("all",), 0)


def test_the_gate_holds_the_only_registration():
    with pytest.raises(GateBypassError, match="already registered"):
        approval.register_minter(object())


def test_a_key_grabbed_before_the_gate_leaves_no_gate_at_all():
    probe = ("from spx_core.execution import approval\n"
             "approval.register_minter(object())\n"
             "import spx_core.execution.gate\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode != 0
    assert "GateBypassError: the pre-trade gate is already registered" in result.stderr


@pytest.fixture
def approved():
    market = StaticMarket()
    verdict = PreTradeGate().check(put_credit_spread(), market, RecordingBroker())
    assert verdict.ok, verdict.message
    return verdict.approved, market


@pytest.mark.parametrize("method", ["submit", "modify"])
def test_a_bare_request_never_reaches_the_broker(method):
    broker = RecordingBroker()
    with pytest.raises(GateBypassError, match="only orders approved by the pre-trade gate"):
        getattr(broker, method)(put_credit_spread())
    assert broker.submitted == broker.modified == []


@pytest.mark.parametrize("method", ["submit", "modify"])
def test_the_paper_broker_takes_no_bare_request(method):
    market = StaticMarket()
    broker, events = PaperBroker(market), []
    broker.bind(events.append)
    request = put_credit_spread(limit=4.00)  # marketable: it would fill at once
    with pytest.raises(GateBypassError):
        getattr(broker, method)(request, market.now_ns())
    with pytest.raises(GateBypassError):
        getattr(broker, method)(SimpleNamespace(request=request, consume=lambda now=None: request), market.now_ns())
    assert events == [] and broker.working_refs() == ()


@pytest.mark.parametrize("method", ["submit", "modify"])
def test_an_approval_is_single_use(approved, method):
    approval_, market = approved
    broker = RecordingBroker()
    getattr(broker, method)(approval_, market.now_ns())
    with pytest.raises(GateBypassError, match="already used"):
        getattr(broker, method)(approval_, market.now_ns())
    assert len(broker.submitted + broker.modified) == 1


def test_an_expired_approval_is_refused(approved):
    approval_, market = approved
    broker = RecordingBroker()
    with pytest.raises(GateBypassError, match="s old; ask the gate again"):
        broker.submit(approval_, market.now_ns() + APPROVAL_TTL_NS + 1)
    assert broker.submitted == []


OVERRIDE_PROBE = r"""
import importlib, pkgutil
import spx_core
from spx_core.execution.broker import Broker
for info in pkgutil.walk_packages(spx_core.__path__, "spx_core."):
    importlib.import_module(info.name)
brokers, todo = [], list(Broker.__subclasses__())
while todo:
    cls = todo.pop()
    brokers.append(cls)
    todo += cls.__subclasses__()
print(sorted(c.__qualname__ for c in brokers))
bad = [c.__qualname__ for c in brokers if c.submit is not Broker.submit or c.modify is not Broker.modify]
assert not bad, f"{bad} override Broker.submit/modify"
"""


def test_no_broker_overrides_the_final_methods():
    # a subprocess: every spx_core module imported, as the layering test does, without pytest's warning filters
    result = subprocess.run([sys.executable, "-c", OVERRIDE_PROBE], capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PaperBroker" in result.stdout


# --- static --------------------------------------------------------------------------------------------
MINT_NAMES = {"mint", "register_minter"}
#: adopt() takes stored states, not approvals: only the service's restore() may hand orders over that way
SEND_NAMES = {"submit", "modify", "adopt"}
PRIVATE_SEND = {"_submit", "_modify", "_cancel"}


def _receiver(node: ast.expr) -> str:
    return ast.unparse(node).lower()


def violations(source: str, path: str) -> list[str]:
    """Every way ``source`` (at repo-relative ``path``) could reach a broker or mint around the gate."""
    out = []
    in_execution = path.startswith("spx_core/execution/")
    for node in ast.walk(ast.parse(source)):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Name) and node.id == "_mint" and path != GATE:
            out.append(f"{where} touches the gate's minter")
        if isinstance(node, ast.Attribute) and node.attr == "_mint" and path != GATE:
            out.append(f"{where} touches the gate's minter")
        if isinstance(node, ast.ImportFrom) and node.module == "spx_core.execution.approval" and path != GATE:
            names = {a.name for a in node.names} & MINT_NAMES
            if names:
                out.append(f"{where} imports {sorted(names)}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in MINT_NAMES and path != GATE:
            out.append(f"{where} calls {name}")
        if not isinstance(func, ast.Attribute):
            continue
        receiver = _receiver(func.value)
        if name in PRIVATE_SEND and not (in_execution and receiver in ("self", "super()")):
            out.append(f"{where} calls {receiver}.{name} (a broker's own method)")
        if name in SEND_NAMES and path != SERVICE:
            args = " ".join(_receiver(a) for a in node.args)
            if "broker" in receiver or "approv" in args or "verdict" in args:
                out.append(f"{where} calls {receiver}.{name}: only the order service sends to a broker")
    return out


def _sources():
    for top in ("spx_core", "app"):
        for file in sorted((REPO / top).rglob("*.py")):
            yield file.relative_to(REPO).as_posix(), file.read_text(encoding="utf-8")


def test_only_the_gate_mints_and_only_the_service_sends():
    found = [v for path, src in _sources() for v in violations(src, path)]
    assert found == []


def test_the_service_sends_only_what_its_gate_just_approved():
    tree = ast.parse((REPO / SERVICE).read_text(encoding="utf-8"))
    sends = 0
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                 and c.func.attr in ("submit", "modify") and ast.unparse(c.func.value) == "self.broker"]
        if not calls:
            continue
        verdicts = [a for a in ast.walk(fn) if isinstance(a, ast.Assign) and ast.unparse(a.targets[0]) == "verdict"]
        assert verdicts and all(ast.unparse(a.value).startswith("self.gate.check(") for a in verdicts), fn.name
        assert all(ast.unparse(c.args[0]) == "verdict.approved" for c in calls), fn.name
        sends += len(calls)
    assert sends == 2  # place and modify


def test_the_service_does_send_and_the_gate_does_mint():
    # the rule is not vacuous: the two allowed places are where the scanner would otherwise fire
    service = (REPO / SERVICE).read_text(encoding="utf-8")
    assert violations(service, "app/trading.py")
    assert violations((REPO / GATE).read_text(encoding="utf-8"), "spx_core/execution/other.py")


@pytest.mark.parametrize("snippet", [
    "from spx_core.execution.approval import mint\n",
    "approval.mint(key, request, (), 0)\n",
    "approval.register_minter(object())\n",
    "from spx_core.execution.gate import _mint\n_mint(r, (), 0)\n",
    "gate._mint(r, (), 0)\n",
    "self.broker.submit(approved)\n",
    "session.broker.modify(x)\n",
    "paper.submit(verdict.approved)\n",
    "self.trading.broker.adopt([OrderState(request, status=OrderStatus.SUBMITTED)])\n",
    "broker._submit(request)\n",
    "self._broker._modify(request)\n",
])
def test_the_scanner_catches_bypasses(snippet):
    assert violations(snippet, "app/panels/ticket_panel.py")


@pytest.mark.parametrize(("snippet", "path"), [
    ("self._executor.submit(fn, *args)\n", "app/widgets/job_runner.py"),  # a thread pool, not a broker
    ("self._submit(self._consume(approved, now_ns))\n", "spx_core/execution/broker.py"),
    ("self._cancel(ref)\n", "spx_core/execution/paper.py"),
])
def test_the_scanner_leaves_ordinary_code_alone(snippet, path):
    assert violations(snippet, path) == []


def test_an_approval_for_one_broker_cannot_be_spent_at_another(approved):
    """An approval judged for the paper broker is refused by any other broker (e.g. a live IB one)."""
    approval_, market = approved
    other = RecordingBroker()
    other.name = "ib"
    with pytest.raises(GateBypassError, match="approved for the paper broker, not ib"):
        other.submit(approval_, market.now_ns())
    assert other.submitted == [] and not approval_.used
