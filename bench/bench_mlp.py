"""Neural-net lab benchmark: the MLP language model through the shared trainer.

- `mlp_trainer`: tokens/s of `TrainingJob(mlp_target(...))` (per-step `ctx.check` and `report`, a
  validation loss every `eval_every` steps, a sample and a model snapshot every `sample_every`)
  against a plain torch loop doing the same steps on the same model and batches, both in a worker
  thread and timed from their 3rd step (`bench_transformer`'s harness).
"""

from __future__ import annotations

from bench.bench_transformer import trainer_vs_plain_loop
from bench.registry import Result, benchmark
from mllm_core import corpora, training
from mllm_core.lm_train import encode_split
from mllm_core.mlp import MLP, MLPConfig, MLPTrainConfig, build_tokenizer, mlp_target


@benchmark("mlp_trainer")
def mlp_trainer(quick: bool, device: str = "cpu") -> Result:
    device = training.resolve_device(device)
    train = MLPTrainConfig(steps=50 if quick else 1000, max_chars=200_000 if quick else 1_000_000)
    config = MLPConfig()  # the zoo's default: k = 3, 10-dim embeddings, 200 hidden units
    text = corpora.load(corpora.DEFAULT).text[: train.max_chars]
    tokenizer = build_tokenizer(text, train)
    train_ids = encode_split(text, tokenizer, train.val_fraction, config.block_size).train
    notes = (
        f"window {config.window}, {config.n_embd}-dim embeddings, {config.hidden} hidden, char tokens "
        f"(V={tokenizer.vocab_size}), a {train.sample_len}-char sample every {train.sample_every} steps"
    )
    return trainer_vs_plain_loop(
        lambda: MLP(config, tokenizer.vocab_size), mlp_target(text, config, train), train_ids, config.block_size,
        train, device, quick, notes,
    )  # fmt: skip
