"""The engine is usable without the UI: importing every mllm_core module never imports streamlit."""

import pkgutil
import subprocess
import sys

import mllm_core


def engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(mllm_core.__path__, "mllm_core."))


def test_every_engine_module_imports_without_streamlit(root):
    modules = engine_modules()
    assert {"mllm_core.training", "mllm_core.corpora", "mllm_core.sampling", "mllm_core.tokenizers.char"} <= set(
        modules
    )
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
