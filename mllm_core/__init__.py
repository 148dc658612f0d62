"""LLM Playground's engine: corpora, tokenizers, models, sampling and the background trainer.

Importing the package is cheap: submodules are imported on use (`from mllm_core import ngram`).
Nothing here imports streamlit, so every part works in a notebook or a script.
"""

__version__ = "0.1.0"
