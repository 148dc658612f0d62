"""The web server's own process: keep its event loop answering while a class trains.

Its garbage collector, its script threads and its GIL, in that order below.

Every page run and fragment rerun of every session runs in this one process, under one GIL,
beside the event loop that answers `/_stcore/health` and sends each tab its updates. Python's
full ("generation 2") collection walks every tracked object while holding the GIL. Here nearly
all of them come from imports: torch, plotly, pandas and Streamlit leave about 290,000 functions,
dicts and tuples that live as long as the process. Measured on the classroom bench (2-core VM,
server pinned to one core), a full collection took 180 ms on an idle server and 2.1 s while
25 students trained, and the class's steady churn set one off every 10-30 s: the event loop stood
still for as long each time.

`gc.freeze()` moves the objects alive now to a permanent generation that collections skip. Called
after a page run has imported new modules (the first visit of each lab imports its own), it keeps
the collections' work to what sessions allocate. It collects first, so no garbage is frozen; what
is frozen is never collected, which is right for modules and their caches and, for the few
session objects alive at that moment, a bounded cost (at most once per newly imported module set).

Turns. The event loop needs the GIL back after each socket call, and CPython hands it over only
when the holder's switch interval ends (5 ms) and then to any waiting thread: with 25 script
threads runnable (a class pressing Train in the same second) each hand-back waited for a long
line, and `/_stcore/health` took 3.4 s. `turn()` lets `TURNS` script runs execute at once and parks
the others on a lock, where they do not ask for the GIL; a whole page (a navigation, a newcomer)
goes before a fragment rerun (a click in the Train tab, a live view's poll), so the class's clicks
queue behind a page switch rather than ahead of it. A run that waits for work done elsewhere (a
background job, another session training the same thing) steps `aside()` and hands its turn on.
`share_the_gil()` also shortens the switch interval to 1 ms for the threads that do run.
"""

import contextlib
import functools
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator

import streamlit as st

log = logging.getLogger(__name__)
_lock = threading.Lock()
_frozen_modules = 0  # len(sys.modules) at the last freeze


SLOW_GC_S = 0.1  # a garbage collection that held the GIL longer than this is logged (at INFO)
_gc_start = [0.0]


def _time_collections(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    elif (took := time.perf_counter() - _gc_start[0]) > SLOW_GC_S:
        log.info("garbage collection of generation %d held the GIL %.2f s", info["generation"], took)


def watch_collections() -> None:
    """Log every garbage collection slower than `SLOW_GC_S`: each stalls every session and the event loop."""
    if _time_collections not in gc.callbacks:
        gc.callbacks.append(_time_collections)


def freeze_imports() -> bool:
    """Freeze the heap if modules were imported since the last call that froze; True if it did."""
    global _frozen_modules
    if len(sys.modules) == _frozen_modules:  # the common case: nothing new, nothing to do
        return False
    with _lock:
        if len(sys.modules) == _frozen_modules:
            return False
        _frozen_modules = len(sys.modules)
        gc.collect()
        gc.freeze()
        return True


# ---------------------------------------------------------------------------------------------
# Turns: at most TURNS script runs at once

TURNS = 2  # script runs executing at once; the others wait on a lock, not for the GIL
TURN_WAIT_S = 10.0  # a run that waited this long goes anyway: a slow run holds up others, never hangs them
SWITCH_INTERVAL_S = 0.001  # the GIL's switch interval in the server (CPython's default: 5 ms)
SLOW_TURN_S = 1.0  # a run that waited or held its turn longer than this is logged (at INFO)


class Turns:
    """A counting gate where whole-page runs go before fragment reruns.

    >>> turns = Turns(1)
    >>> turns.acquire(page=True, timeout=0), turns.acquire(page=False, timeout=0)
    (True, False)
    >>> turns.release(); turns.acquire(page=False, timeout=0)
    True
    """

    def __init__(self, n: int):
        self._cond = threading.Condition()
        self._free = n
        self._pages_waiting = 0

    def acquire(self, page: bool, timeout: float) -> bool:
        """Wait for a turn; False if none came within `timeout` seconds (the caller goes anyway)."""
        with self._cond:
            self._pages_waiting += page
            try:
                got = self._cond.wait_for(lambda: self._free > 0 and (page or not self._pages_waiting), timeout)
            finally:
                self._pages_waiting -= page
            self._free -= got
            if page and not self._pages_waiting:
                self._cond.notify_all()  # the fragments this page held back may go, if a turn is free
            return got

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()


_turns = Turns(TURNS)
_held = threading.local()  # a fragment drawn inside its page's run is already in that run's turn


def _take_turn(page: bool, what: str) -> bool:
    """Wait for one of the turns; False (logged) if none came within `TURN_WAIT_S` and the run goes anyway."""
    got = _turns.acquire(page, TURN_WAIT_S)
    if not got:
        log.warning("%s waited %.0f s for a turn and runs without one", what or "a run", TURN_WAIT_S)
    return got


@contextlib.contextmanager
def turn(page: bool, what: str = "") -> Iterator[None]:
    """Run the body in one of the server's `TURNS` (see the module's docstring); re-entrant.
    `what` names the run in the log (a page's title, a fragment's function)."""
    if getattr(_held, "turn", False):
        yield
        return
    asked = time.monotonic()
    got = _take_turn(page, what)
    start = time.monotonic()
    _held.turn, _held.page, _held.got = True, page, got
    try:
        yield
    finally:
        _held.turn = False
        if _held.got:
            _turns.release()
        held = time.monotonic() - start
        if max(held, start - asked) > SLOW_TURN_S:
            log.info("%s: waited %.1f s for a turn, ran %.1f s", what or "a run", start - asked, held)


@contextlib.contextmanager
def aside() -> Iterator[None]:
    """Hand this run's turn to another while the body waits for work done elsewhere (a background
    job, another session's training of the same thing), and take one back after. Outside a turn,
    nothing: the body just runs. Waiting in a turn would keep a class's runs from a turn that this
    one does not use."""
    if not getattr(_held, "turn", False):
        yield
        return
    if _held.got:
        _turns.release()
    try:
        yield
    finally:
        _held.got = _take_turn(_held.page, "a run back from waiting aside")


def fragment(run_every: float | None = None) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """`st.fragment` whose reruns take a turn: use it for every fragment of the app."""

    def decorate(draw: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(draw)
        def in_turn() -> None:
            with turn(page=False, what=draw.__qualname__):
                draw()

        return st.fragment(in_turn, run_every=run_every)

    return decorate


def share_the_gil() -> None:
    """Hand the GIL over every `SWITCH_INTERVAL_S` (the event loop waits less for it)."""
    if sys.getswitchinterval() != SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
