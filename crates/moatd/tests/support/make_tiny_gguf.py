#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF model for the llama.cpp end-to-end test.

Two layers, 64 wide, random weights from a fixed seed, and a SentencePiece-style vocabulary with byte
fallback: it answers nonsense, but through the real llama.cpp code paths (tokenizer, chat template,
sampling, streaming, usage counts) in well under a second on any CPU. About 500 KB.

Usage: make_tiny_gguf.py OUT.gguf
"""

import sys

import numpy as np
from gguf import GGUFWriter, TokenType

N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_CTX = 256
SEED = 5

# Word pieces in SentencePiece's notation ("\u2581" marks a preceding space). Generation is steered to
# these (see `output`), so every answer is visible text.
PIECES = [
    "\u2581the", "\u2581a", "\u2581moat", "\u2581hello", "\u2581world", "\u2581say", "\u2581is",
    "\u2581to", "\u2581and", "\u2581of", "\u2581local", "\u2581model", "\u2581gate", "\u2581way",
    "\u2581t", "\u2581h", "\u2581w", "\u2581s", "\u2581m", "he", "ll", "lo", "or", "ld", "at", "ay",
    "in", "on", "er", "es",
] + list("abcdefghijklmnopqrstuvwxyz") + ["\u2581"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def vocabulary():
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + PIECES
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    types += [TokenType.NORMAL] * len(PIECES)
    # SentencePiece merges the best-scoring pieces first; longer pieces score higher.
    scores = [0.0] * 259 + [-100.0 + len(p) for p in PIECES]
    return tokens, types, scores


def main(path):
    rng = np.random.default_rng(SEED)
    tokens, types, scores = vocabulary()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    w = GGUFWriter(path, "llama")
    w.add_name("moat-tiny")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    # numpy shapes are ggml's dimensions reversed: (rows = outputs, columns = inputs).
    w.add_tensor("token_embd.weight", rand(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_k.weight", rand(head_dim * N_HEAD_KV, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_v.weight", rand(head_dim * N_HEAD_KV, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_output.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_down.weight", rand(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    # Rows of zeros give control, byte and bare-space tokens a logit of 0 while the word pieces' random
    # rows almost surely reach above it: greedy decoding then never stops at once on `</s>` and
    # always produces visible text.
    output = rand(n_vocab, N_EMBD)
    output[:259] = 0.0
    output[n_vocab - 1] = 0.0
    w.add_tensor("output.weight", output)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_gguf.py OUT.gguf")
    main(sys.argv[1])
