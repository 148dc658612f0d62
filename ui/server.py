"""The web server's own process: keep its garbage collector from stalling every session.

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
"""

import gc
import sys
import threading

_lock = threading.Lock()
_frozen_modules = 0  # len(sys.modules) at the last freeze


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
