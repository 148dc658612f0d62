"""ui.server: the web server's own process. Its frozen import-time heap, and the turns that keep
a class's script runs from queueing for the GIL in front of the event loop."""

import gc
import sys
import threading
import time
import types
import weakref

import pytest
from concurrency import Overlap
from streamlit.testing.v1 import AppTest

from ui import server


def test_freeze_imports_freezes_once_per_new_module_set():
    """After new imports the heap moves to the permanent generation (collected first, so
    garbage is not frozen); with no new module the call does nothing."""
    try:
        server.freeze_imports()
        before = gc.get_freeze_count()
        assert not server.freeze_imports()  # nothing imported since

        class Node:
            pass

        node = Node()
        node.me = node  # garbage in a cycle: the collection before the freeze must take it
        dead = weakref.ref(node)
        del node
        sys.modules["_freeze_probe"] = types.ModuleType("_freeze_probe")  # a module imported since
        assert server.freeze_imports()
        assert gc.get_freeze_count() > before
        assert dead() is None
        assert not server.freeze_imports()
    finally:
        sys.modules.pop("_freeze_probe", None)
        gc.unfreeze()


def test_turns_let_at_most_n_runs_execute_at_once():
    turns, overlap = server.Turns(2), Overlap()

    def run() -> None:
        assert turns.acquire(page=False, timeout=30)
        with overlap:
            time.sleep(0.05)
        turns.release()

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlap.peak == 2 and overlap.active == 0


def test_a_page_goes_before_the_fragments_waiting_with_it():
    turns = server.Turns(1)
    assert turns.acquire(page=False, timeout=0)  # a run holds the only turn
    order: list[str] = []

    def wait(name: str, page: bool) -> None:
        assert turns.acquire(page=page, timeout=30)
        order.append(name)
        turns.release()

    fragments = [threading.Thread(target=wait, args=(f"fragment {i}", False)) for i in range(3)]
    for t in fragments:
        t.start()
    time.sleep(0.1)  # the fragments wait first...
    page = threading.Thread(target=wait, args=("page", True))
    page.start()
    deadline = time.monotonic() + 30
    while turns._pages_waiting == 0 and time.monotonic() < deadline:  # ...then a page asks
        time.sleep(0.01)
    turns.release()
    for t in [*fragments, page]:
        t.join(30)
    assert order[0] == "page" and sorted(order[1:]) == ["fragment 0", "fragment 1", "fragment 2"]


def test_a_run_that_waits_too_long_goes_anyway(monkeypatch):
    monkeypatch.setattr(server, "_turns", server.Turns(1))
    monkeypatch.setattr(server, "TURN_WAIT_S", 0.2)
    assert server._turns.acquire(page=True, timeout=0)  # a slow run holds the only turn
    start = time.monotonic()
    with server.turn(page=False):
        waited = time.monotonic() - start
    assert 0.15 < waited < 5
    server._turns.release()
    assert server._turns.acquire(page=False, timeout=0)  # going anyway did not use up a turn


def test_a_fragment_drawn_in_its_pages_run_uses_the_pages_turn(monkeypatch):
    """One turn: a page run that draws a fragment must not wait for a second one (re-entrant)."""
    monkeypatch.setattr(server, "_turns", server.Turns(1))
    monkeypatch.setattr(server, "TURN_WAIT_S", 30)
    start = time.monotonic()
    with server.turn(page=True), server.turn(page=False):
        pass
    assert time.monotonic() - start < 1
    assert server._turns.acquire(page=False, timeout=0)  # and the turn was given back


def test_a_run_that_waits_aside_lends_its_turn(monkeypatch):
    """One turn: while the run in it waits aside, another runs; after, it takes a turn back."""
    monkeypatch.setattr(server, "_turns", server.Turns(1))
    monkeypatch.setattr(server, "TURN_WAIT_S", 30)
    with server.turn(page=True):
        with server.aside():
            assert server._turns.acquire(page=False, timeout=0)  # another run gets the turn...
            server._turns.release()
        assert not server._turns.acquire(page=False, timeout=0)  # ...and this one has it back
    assert server._turns.acquire(page=False, timeout=0)  # given back once at the end
    with server.aside():  # outside a turn: nothing to lend
        assert server._turns._free == 0


def test_waiting_for_another_sessions_bpe_takes_no_turn(monkeypatch):
    """Two sessions ask for the same new BPE: the second waits for the first's, aside, so a third
    run finds a turn free while the first trains; both get the one tokenizer."""
    from ui.tokenizer import trained_bpe

    class Turns(server.Turns):
        released = threading.Event()

        def release(self) -> None:
            super().release()
            self.released.set()

    turns = Turns(2)
    monkeypatch.setattr(server, "_turns", turns)
    monkeypatch.setattr(server, "TURN_WAIT_S", 30)
    text = f"{time.time_ns()} " + "the cat sat on the mat and the dog sat on the log " * 50
    training, go_on = threading.Event(), threading.Event()
    got: dict[str, object] = {}

    def first_progress(fraction: float, message: str) -> None:
        training.set()
        assert go_on.wait(30)

    def session(name: str, progress=None) -> None:
        with server.turn(page=True):
            got[name] = trained_bpe(text, 300, progress=progress)

    first = threading.Thread(target=session, args=("first", first_progress))
    first.start()
    assert training.wait(30)
    second = threading.Thread(target=session, args=("second",))
    second.start()
    assert turns.released.wait(30)  # the first is held in training: only the second, waiting, gives a turn back
    assert turns._free == 1 and "second" not in got
    go_on.set()
    first.join(30)
    second.join(30)
    assert got["first"] is got["second"]
    assert turns._free == 2


def fragment_page():
    import streamlit as st

    from ui import server

    @server.fragment()
    def counter() -> None:
        st.session_state.n = st.session_state.get("n", 0) + 1
        st.button("again", key="again")
        st.write(f"fragment runs: {st.session_state.n}")

    with server.turn(page=True):
        counter()


@pytest.mark.parametrize("turns", [1, 2])
def test_a_server_fragment_runs_in_a_turn_and_gives_it_back(turns, monkeypatch):
    monkeypatch.setattr(server, "_turns", server.Turns(turns))
    at = AppTest.from_function(fragment_page, default_timeout=30)
    at.run()
    at.button(key="again").click().run()
    assert not at.exception
    assert at.session_state.n == 2
    assert [server._turns.acquire(page=False, timeout=0) for _ in range(turns)] == [True] * turns


def test_share_the_gil_sets_a_short_switch_interval():
    before = sys.getswitchinterval()
    try:
        server.share_the_gil()
        assert sys.getswitchinterval() == pytest.approx(server.SWITCH_INTERVAL_S)
    finally:
        sys.setswitchinterval(before)


def test_slow_collections_are_logged(monkeypatch, caplog):
    monkeypatch.setattr(server, "SLOW_GC_S", 0.0)  # every collection is "slow"
    server.watch_collections()
    server.watch_collections()  # once is enough
    try:
        assert gc.callbacks.count(server._time_collections) == 1
        with caplog.at_level("INFO", logger="ui.server"):
            gc.collect()
        assert any("garbage collection of generation 2" in r.message for r in caplog.records)
    finally:
        gc.callbacks.remove(server._time_collections)
