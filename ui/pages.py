"""The lab pages, in the order of the journey (app.py and the home page both read this list), and
the home page's presets: links that open a lab set up for a classic result."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    path: str  # the page file, relative to the repository root
    title: str
    icon: str  # a Material icon (bundled with Streamlit, so it renders without emoji fonts)
    step: str  # the idea this lab teaches, as the home page's journey names it
    blurb: str


LABS = [
    Lab(
        "pages/tokenizer.py",
        "Tokenizer",
        ":material/content_cut:",
        "Tokens",
        "Turn text into ids: words, characters and byte-level BPE, merge by merge.",
    ),
    Lab(
        "pages/ngram.py",
        "N-gram sampler",
        ":material/casino:",
        "Counting",
        "Language modelling as counting: conditional probabilities, sampling, smoothing, perplexity.",
    ),
    Lab(
        "pages/neural.py",
        "Neural net",
        ":material/hub:",
        "Networks",
        "From counting to a network: the HELLO toy, the loss, gradient descent you can watch, an MLP language model.",
    ),
    Lab(
        "pages/embeddings.py",
        "Embeddings",
        ":material/scatter_plot:",
        "Embeddings",
        "Train word2vec live on real text; explore neighbours, analogies and a PCA map.",
    ),
    Lab(
        "pages/rnn.py",
        "RNN",
        ":material/autorenew:",
        "Recurrence",
        "Watch an RNN learn to count, see what it remembers, and train a character LSTM.",
    ),
    Lab(
        "pages/attention.py",
        "Attention",
        ":material/grid_on:",
        "Attention",
        "Train a tiny GPT and look inside: attention heatmaps by layer and head.",
    ),
    Lab(
        "pages/scaling.py",
        "Scaling",
        ":material/trending_down:",
        "Scaling",
        "Loss falls on a power law as models grow, and a 2-layer transformer learns from its context (induction heads).",
    ),
    Lab(
        "pages/generation.py",
        "Generation",
        ":material/edit_note:",
        "Generation",
        "One sampler for every model, token by token, and a leaderboard across families.",
    ),
    Lab(
        "pages/finetune.py",
        "Fine-tuning",
        ":material/tune:",
        "Fine-tuning",
        "From base model to assistant: supervised fine-tuning on prompt/answer pairs, then preference tuning (DPO).",
    ),
]


@dataclass(frozen=True)
class Preset:
    """A link that opens a lab already set up for one of the classic results."""

    path: str  # the lab's page file, as in LABS
    label: str  # the result, as the link names it
    query: dict[str, str]  # widget key -> value, read by the page's widgets bound to the URL (tabs by label)


PRESETS = [
    Preset(
        "pages/ngram.py",
        "The fox table: p(quick | The) = 0.5, by counting",
        {"ng_corpus": "fox", "ng_tab": "The fox example"},
    ),
    Preset("pages/neural.py", "A network learns HELLO: “HE” → L, “HELL” → O", {"nn_tab": "HELLO toy", "nn_k": "2"}),
    Preset(
        "pages/neural.py",
        "A 1-letter window cannot learn HELLO: its loss floor is ln 2 / 2",
        {"nn_tab": "HELLO toy", "nn_k": "1", "nn_ask": "HEL"},
    ),
    Preset(
        "pages/neural.py",
        "Gradient descent diverges when the learning rate is too large",
        {"nn_tab": "Gradient descent", "nn_lr": "300.0"},
    ),
    Preset("pages/rnn.py", "An RNN that counts: 7 8 9 10 → 11", {"rnn_seq": "7 8 9 10"}),
    Preset("pages/rnn.py", "RNN vs LSTM: counting accuracy by training length", {"rnn_tab": "Length experiment"}),
    Preset(
        "pages/attention.py",
        "Self-attention, step by step, on “your cat is a lovely cat”",
        {"att_tab": "Step by step", "att_toy": "your cat is a lovely cat"},
    ),
]
