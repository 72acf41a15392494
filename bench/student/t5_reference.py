#!/usr/bin/env python3
"""The Python baselines of distill-bench-student: Hugging Face transformers' T5, and a plain-PyTorch T5.

Two implementations of the same model, picked with --impl:
  transformers  transformers.T5ForConditionalGeneration loaded with from_pretrained from the directory of
                --config (config.json and model.safetensors, as the C++ side writes them), offline: what
                a user would otherwise run. Generation is its generate() with its own KV cache.
  reference     a plain-PyTorch T5 written for this benchmark (the default). It follows the math of
                T5ForConditionalGeneration (original T5 with relu feed-forward and tied embeddings, and
                the v1.1 / flan layout with gated-gelu and an untied lm_head): RMS layer norm in float32
                without bias, no biases anywhere, unscaled attention scores plus a relative position bias
                (log-spaced buckets, bidirectional in the encoder, causal in the decoder) owned by block 0
                of each stack, softmax in float32, dropout in training mode only. Parameter names are
                Hugging Face's, so a model.safetensors written by the C++ side
                (common/student/model/t5_weights.h) loads name for name.

Measured, each printed as one JSON object on stdout:
  train       tokens/s of AdamW training steps (forward, cross entropy, backward, step; dropout on) on
              random ids;
  generate    greedy tokens/s with a KV cache and, for the reference model, without one (the decoder
              re-runs over the whole prefix every step; only the last position goes through lm_head).
              Every sequence generates exactly --gen-tokens tokens: there is no EOS stop;
  parity      given the C++ side's --parity file: max |logits difference| on its batch, and the greedy
              tokens (cached and uncached) for its generation inputs.

Run by distill-bench-student under the project's virtualenv python (scripts/venv-path.sh prints the
virtualenv; scripts/install-deps.sh creates it with the pinned torch, transformers and safetensors), the
same torch whose libtorch the C++ side links. Usable alone:
  "$(scripts/venv-path.sh)/bin/python" bench/student/t5_reference.py --impl transformers \
      --config DIR/config.json --weights DIR/model.safetensors
"""

import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------------------------------------------
# safetensors: [u64 little-endian header length][JSON header][raw little-endian tensor data]

_TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
                 "I32": torch.int32}


def read_safetensors(path):
    """Every tensor of the file at `path` as a torch tensor (BF16 and F16 widened to float32), by name."""
    # torch.frombuffer reads native byte order, and safetensors is little-endian.
    if sys.byteorder != "little":
        raise RuntimeError("reading safetensors needs a little-endian machine")
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data_start = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _TORCH_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: {name}: unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        count = (end - begin) // dtype.itemsize
        if count == 0:  # torch.frombuffer refuses empty ranges
            flat = torch.empty(0, dtype=dtype)
        else:
            flat = torch.frombuffer(blob, dtype=dtype, count=count, offset=data_start + begin)
        tensor = flat.reshape(entry["shape"]).clone()
        tensors[name] = tensor.float() if dtype in (torch.float16, torch.bfloat16) else tensor
    return tensors


# ---------------------------------------------------------------------------------------------------
# Configuration: the fields of a Hugging Face T5 config.json this model uses, with transformers' defaults.

class Config:
    def __init__(self, raw):
        self.vocab_size = raw.get("vocab_size", 32128)
        self.d_model = raw.get("d_model", 512)
        self.d_kv = raw.get("d_kv", 64)
        self.d_ff = raw.get("d_ff", 2048)
        self.num_layers = raw.get("num_layers", 6)
        self.num_decoder_layers = raw.get("num_decoder_layers") or self.num_layers
        self.num_heads = raw.get("num_heads", 8)
        self.num_buckets = raw.get("relative_attention_num_buckets", 32)
        self.max_distance = raw.get("relative_attention_max_distance", 128)
        self.dropout = raw.get("dropout_rate", 0.1)
        self.eps = raw.get("layer_norm_epsilon", 1e-6)
        self.gated = raw.get("feed_forward_proj", "relu") == "gated-gelu"
        self.tied = raw.get("tie_word_embeddings", True)
        self.decoder_start = raw.get("decoder_start_token_id", 0)
        if raw.get("feed_forward_proj", "relu") not in ("relu", "gated-gelu"):
            raise ValueError(f"feed_forward_proj {raw['feed_forward_proj']!r} is not relu or gated-gelu")


# ---------------------------------------------------------------------------------------------------
# The model.

def relative_bucket(offset, bidirectional, num_buckets, max_distance):
    """T5's bucket of each relative offset (key position minus query position), int64 in [0, num_buckets).

    Small distances get a bucket each; from half the range on, buckets grow logarithmically up to
    max_distance, past which they all share the last one. Bidirectional attention gives each direction
    half the buckets (the upper half for keys after the query); causal attention maps every future key to
    bucket 0 (the mask hides it anyway). The log term is float32 and truncated toward zero, as in the
    reference, so bucket edges agree exactly.
    """
    if bidirectional:
        num_buckets //= 2
        side = (offset > 0).to(torch.int64) * num_buckets
        distance = offset.abs()
    else:
        side = torch.zeros_like(offset)
        distance = (-offset).clamp(min=0)
    exact = num_buckets // 2
    spread = torch.log(distance.to(torch.float32) / exact) / math.log(max_distance / exact)
    far = (exact + (spread * (num_buckets - exact)).to(torch.int64)).clamp(max=num_buckets - 1)
    return side + torch.where(distance < exact, distance, far)


def additive_mask(keep):
    """[B, S] keep-mask (nonzero attends) -> [B, 1, 1, S] float32: 0 or the lowest float."""
    blocked = (keep == 0)[:, None, None, :]
    return torch.zeros(blocked.shape).masked_fill(blocked, torch.finfo(torch.float32).min)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        x32 = x.to(torch.float32)
        inv_rms = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * (x32 * inv_rms).to(self.weight.dtype)


class Attention(nn.Module):
    def __init__(self, cfg, owns_bias, bidirectional):
        super().__init__()
        inner = cfg.num_heads * cfg.d_kv
        self.heads, self.d_kv, self.p = cfg.num_heads, cfg.d_kv, cfg.dropout
        self.bidirectional, self.num_buckets, self.max_distance = bidirectional, cfg.num_buckets, cfg.max_distance
        self.q = nn.Linear(cfg.d_model, inner, bias=False)
        self.k = nn.Linear(cfg.d_model, inner, bias=False)
        self.v = nn.Linear(cfg.d_model, inner, bias=False)
        self.o = nn.Linear(inner, cfg.d_model, bias=False)
        if owns_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, cfg.num_heads)

    def position_bias(self, queries, keys, first_query=0):
        """[1, H, queries, keys] for query positions first_query.. against key positions 0..keys-1."""
        query_pos = torch.arange(first_query, first_query + queries)[:, None]
        key_pos = torch.arange(keys)[None, :]
        buckets = relative_bucket(key_pos - query_pos, self.bidirectional, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]

    def split_heads(self, x):
        return x.view(x.shape[0], -1, self.heads, self.d_kv).transpose(1, 2)

    def attend(self, x, key, value, bias):
        """x [B, T, D] against projected key/value [B, H, S, d_kv]; bias broadcasts to [B, H, T, S]."""
        query = self.split_heads(self.q(x))
        scores = torch.matmul(query, key.transpose(2, 3)) + bias  # T5 does not scale by 1/sqrt(d_kv)
        weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        weights = F.dropout(weights, self.p, self.training)
        context = torch.matmul(weights, value).transpose(1, 2).reshape(x.shape[0], -1, self.heads * self.d_kv)
        return self.o(context)

    def forward(self, x, memory, bias):
        return self.attend(x, self.split_heads(self.k(memory)), self.split_heads(self.v(memory)), bias)


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gated, self.p = cfg.gated, cfg.dropout
        if self.gated:
            self.wi_0 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
            self.wi_1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        else:
            self.wi = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wo = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x):
        if self.gated:
            h = F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x)  # gelu_new
        else:
            h = F.relu(self.wi(x))
        return self.wo(F.dropout(h, self.p, self.training))


class SubLayer(nn.Module):
    """Pre-norm residual wrapper; the inner module is registered under Hugging Face's name for it."""

    def __init__(self, cfg, name, inner):
        super().__init__()
        self.add_module(name, inner)
        self.inner = [inner]  # a plain list, so the module is registered once, under `name`
        self.layer_norm = RMSNorm(cfg.d_model, cfg.eps)
        self.p = cfg.dropout

    def residual(self, x, branch):
        return x + F.dropout(branch, self.p, self.training)


class Block(nn.Module):
    def __init__(self, cfg, decoder, owns_bias):
        super().__init__()
        self.decoder = decoder
        parts = [SubLayer(cfg, "SelfAttention", Attention(cfg, owns_bias, bidirectional=not decoder))]
        if decoder:
            parts.append(SubLayer(cfg, "EncDecAttention", Attention(cfg, False, bidirectional=True)))
        parts.append(SubLayer(cfg, "DenseReluDense", FeedForward(cfg)))
        self.layer = nn.ModuleList(parts)

    def forward(self, x, self_bias, memory, cross_bias):
        sa = self.layer[0]
        normed = sa.layer_norm(x)
        x = sa.residual(x, sa.inner[0](normed, normed, self_bias))
        if self.decoder:
            ca = self.layer[1]
            x = ca.residual(x, ca.inner[0](ca.layer_norm(x), memory, cross_bias))
        ff = self.layer[-1]
        return ff.residual(x, ff.inner[0](ff.layer_norm(x)))

    def step(self, x, self_bias, cache, index):
        """One decoder position x [B, 1, D]; appends its self-attention key/value to cache[index]."""
        sa = self.layer[0]
        attention = sa.inner[0]
        normed = sa.layer_norm(x)
        key = attention.split_heads(attention.k(normed))
        value = attention.split_heads(attention.v(normed))
        if cache["self_key"][index] is not None:
            key = torch.cat([cache["self_key"][index], key], dim=2)
            value = torch.cat([cache["self_value"][index], value], dim=2)
        cache["self_key"][index], cache["self_value"][index] = key, value
        x = sa.residual(x, attention.attend(normed, key, value, self_bias))
        ca = self.layer[1]
        x = ca.residual(x, ca.inner[0].attend(ca.layer_norm(x), cache["cross_key"][index],
                                              cache["cross_value"][index], cache["cross_bias"]))
        ff = self.layer[-1]
        return ff.residual(x, ff.inner[0](ff.layer_norm(x)))


class Stack(nn.Module):
    """Encoder or decoder stack. Takes embedded tokens: the embedding belongs to the model ("shared")."""

    def __init__(self, cfg, decoder):
        super().__init__()
        self.decoder, self.p = decoder, cfg.dropout
        layers = cfg.num_decoder_layers if decoder else cfg.num_layers
        self.block = nn.ModuleList(Block(cfg, decoder, owns_bias=(i == 0)) for i in range(layers))
        self.final_layer_norm = RMSNorm(cfg.d_model, cfg.eps)

    def bias_module(self):
        return self.block[0].layer[0].inner[0]

    def forward(self, embedded, mask=None, memory=None, memory_mask=None):
        x = F.dropout(embedded, self.p, self.training)
        length = x.shape[1]
        self_bias = self.bias_module().position_bias(length, length)
        cross_bias = None
        if self.decoder:
            future = torch.ones(length, length, dtype=torch.bool).triu(1)
            self_bias = self_bias.masked_fill(future, torch.finfo(torch.float32).min)
            cross_bias = additive_mask(memory_mask)
        else:
            self_bias = self_bias + additive_mask(mask)
        for block in self.block:
            x = block(x, self_bias, memory, cross_bias)
        return F.dropout(self.final_layer_norm(x), self.p, self.training)

    def init_cache(self, memory, memory_mask):
        cache = {"self_key": [None] * len(self.block), "self_value": [None] * len(self.block),
                 "cross_key": [], "cross_value": [], "cross_bias": additive_mask(memory_mask)}
        for block in self.block:
            cross = block.layer[1].inner[0]
            cache["cross_key"].append(cross.split_heads(cross.k(memory)))
            cache["cross_value"].append(cross.split_heads(cross.v(memory)))
        return cache

    def step(self, embedded, cache, position):
        x = F.dropout(embedded, self.p, self.training)
        # Every cached key is at or before `position`: no causal mask needed.
        bias = self.bias_module().position_bias(1, position + 1, first_query=position)
        for index, block in enumerate(self.block):
            x = block.step(x, bias, cache, index)
        return F.dropout(self.final_layer_norm(x), self.p, self.training)


class T5(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.shared = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = Stack(cfg, decoder=False)
        self.decoder = Stack(cfg, decoder=True)
        if not cfg.tied:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def project(self, hidden):
        if self.cfg.tied:
            return F.linear(hidden * self.cfg.d_model ** -0.5, self.shared.weight)
        return self.lm_head(hidden)

    def encode(self, ids, mask):
        return self.encoder(self.shared(ids), mask=mask)

    def forward(self, ids, mask, decoder_ids):
        memory = self.encode(ids, mask)
        return self.project(self.decoder(self.shared(decoder_ids), memory=memory, memory_mask=mask))


def loss_fn(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


@torch.inference_mode()
def generate_cached(model, ids, mask, new_tokens):
    memory = model.encode(ids, mask)
    cache = model.decoder.init_cache(memory, mask)
    token = torch.full((ids.shape[0], 1), model.cfg.decoder_start, dtype=torch.int64)
    out = []
    for position in range(new_tokens):
        logits = model.project(model.decoder.step(model.shared(token), cache, position))[:, -1]
        token = logits.argmax(dim=-1, keepdim=True)
        out.append(token)
    return torch.cat(out, dim=1)


@torch.inference_mode()
def generate_uncached(model, ids, mask, new_tokens):
    memory = model.encode(ids, mask)
    prefix = torch.full((ids.shape[0], 1), model.cfg.decoder_start, dtype=torch.int64)
    for _ in range(new_tokens):
        hidden = model.decoder(model.shared(prefix), memory=memory, memory_mask=mask)
        token = model.project(hidden[:, -1]).argmax(dim=-1, keepdim=True)
        prefix = torch.cat([prefix, token], dim=1)
    return prefix[:, 1:]


# ---------------------------------------------------------------------------------------------------
# The two implementations behind one interface: what the measurements below call.

class ReferenceImpl:
    """The plain-PyTorch T5 above."""

    name = "reference"

    def __init__(self, cfg, weights):
        self.model = T5(cfg)
        if weights:
            self.model.load_state_dict(read_safetensors(weights), strict=True)
        self.vocab_size, self.decoder_start = cfg.vocab_size, cfg.decoder_start

    def loss(self, ids, mask, decoder_ids, labels):
        return loss_fn(self.model(ids, mask, decoder_ids), labels)

    def logits(self, ids, mask, decoder_ids):
        return self.model(ids, mask, decoder_ids)

    def generate(self, ids, mask, new_tokens, cached):
        return (generate_cached if cached else generate_uncached)(self.model, ids, mask, new_tokens)


class TransformersImpl:
    """transformers.T5ForConditionalGeneration from the directory of config.json, with its generate()."""

    name = "transformers"

    def __init__(self, config_path, weights):
        # Everything is local: never ask the Hugging Face hub for anything.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import transformers  # pylint: disable=import-outside-toplevel
        transformers.logging.set_verbosity_error()
        directory = os.path.dirname(os.path.abspath(config_path))
        if weights is None or os.path.abspath(weights) != os.path.join(directory, "model.safetensors"):
            raise ValueError(f"--impl transformers loads model.safetensors beside --config: pass --weights "
                             f"{os.path.join(directory, 'model.safetensors')}")
        self.model, info = transformers.T5ForConditionalGeneration.from_pretrained(
            directory, dtype=torch.float32, local_files_only=True, use_safetensors=True, output_loading_info=True)
        # The embeddings of the two stacks (and a tied lm_head) are the shared one, so the file need not
        # hold them; anything else missing would be a freshly initialised weight.
        tied = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}
        missing = [k for k in info["missing_keys"] if k not in tied or
                   (k == "lm_head.weight" and not self.model.config.tie_word_embeddings)]
        unexpected = info["unexpected_keys"]
        if missing or unexpected or info["mismatched_keys"]:
            raise ValueError(f"{directory}: weights do not match T5ForConditionalGeneration: missing {missing}, "
                             f"unexpected {unexpected}, mismatched {info['mismatched_keys']}")
        self.transformers_version = transformers.__version__
        self.vocab_size = self.model.config.vocab_size
        self.decoder_start = self.model.config.decoder_start_token_id
        # The C++ side never stops a row at EOS. Without an EOS id generate() neither stops a row nor
        # masks EOS's logit (min_new_tokens would), so every row gets exactly the tokens asked for and
        # they stay comparable with the C++ ones.
        self.model.generation_config.eos_token_id = None
        self.model.config.eos_token_id = None

    def loss(self, ids, mask, decoder_ids, labels):
        del decoder_ids  # T5ForConditionalGeneration shifts labels right itself, to the same ids
        return self.model(input_ids=ids, attention_mask=mask, labels=labels).loss

    def logits(self, ids, mask, decoder_ids):
        return self.model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits

    @torch.inference_mode()
    def generate(self, ids, mask, new_tokens, cached):
        out = self.model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                  do_sample=False, num_beams=1, use_cache=cached)
        # generate() returns the decoder start token first.
        return out[:, 1:]


# ---------------------------------------------------------------------------------------------------
# Measurements.

def random_ids(generator, vocab, *shape):
    return torch.randint(2, vocab, shape, generator=generator, dtype=torch.int64)


def measure_sgemm(n, reps):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def measure_training(impl, args):
    gen = torch.Generator().manual_seed(1)
    ids = random_ids(gen, impl.vocab_size, args.batch, args.src_len)
    mask = torch.ones_like(ids)
    labels = random_ids(gen, impl.vocab_size, args.batch, args.tgt_len)
    decoder_ids = torch.cat([torch.full((args.batch, 1), impl.decoder_start, dtype=torch.int64), labels[:, :-1]], 1)
    optimizer = torch.optim.AdamW(impl.model.parameters(), lr=args.lr)
    impl.model.train()
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    times = []
    cpu_start = 0.0
    for step in range(args.train_warmup + args.train_steps):
        if step == args.train_warmup:
            cpu_start = time.process_time()
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = impl.loss(ids, mask, decoder_ids, labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if step >= args.train_warmup:
            times.append(t3 - t0)
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += t3 - t2
    cpu_seconds = time.process_time() - cpu_start
    total = sum(times)
    tokens = args.batch * (args.src_len + args.tgt_len) * len(times)
    return {"steps": len(times), "seconds": total, "cpu_seconds": cpu_seconds, "tokens_per_second": tokens / total,
            "step_seconds_median": sorted(times)[len(times) // 2], "final_loss": float(loss.detach()),
            "phase_seconds": phases, "optimizer": "AdamW", "lr": args.lr,
            "foreach": optimizer.defaults.get("foreach")}


def measure_generation(impl, args, batch, cached):
    gen = torch.Generator().manual_seed(2)
    ids = random_ids(gen, impl.vocab_size, batch, args.src_len)
    mask = torch.ones_like(ids)
    impl.model.eval()
    impl.generate(ids, mask, min(4, args.gen_tokens), cached)  # warm-up
    best = math.inf
    for _ in range(args.gen_reps):
        start = time.perf_counter()
        out = impl.generate(ids, mask, args.gen_tokens, cached)
        best = min(best, time.perf_counter() - start)
    if tuple(out.shape) != (batch, args.gen_tokens):
        raise RuntimeError(f"{impl.name}: generated {tuple(out.shape)} tokens, expected {(batch, args.gen_tokens)}")
    return {"batch": batch, "new_tokens": args.gen_tokens, "kv_cache": cached, "seconds": best,
            "tokens_per_second": batch * args.gen_tokens / best}


def check_parity(impl, path):
    data = read_safetensors(path)
    impl.model.eval()
    with torch.inference_mode():
        logits = impl.logits(data["input_ids"], data["attention_mask"], data["decoder_input_ids"])
    reference = data["logits"]
    diff = (logits - reference).abs()
    result = {"logits_shape": list(logits.shape), "logits_max_abs_diff": float(diff.max()),
              "logits_max_abs": float(reference.abs().max()),
              "argmax_agreement": float((logits.argmax(-1) == reference.argmax(-1)).float().mean())}
    ids, mask = data["gen_input_ids"], data["gen_attention_mask"]
    new_tokens = int(data["gen_new_tokens"].reshape(-1)[0])
    result["greedy_cached"] = impl.generate(ids, mask, new_tokens, cached=True).tolist()
    result["greedy_uncached"] = impl.generate(ids, mask, new_tokens, cached=False).tolist()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("reference", "transformers"), default="reference",
                        help="the plain-PyTorch T5 here, or transformers' T5ForConditionalGeneration")
    parser.add_argument("--config", required=True, help="Hugging Face config.json")
    parser.add_argument("--weights", help="model.safetensors to load (reference: default a fresh random init; "
                                          "transformers: required, beside --config)")
    parser.add_argument("--parity", help="parity.safetensors written by distill-bench-student")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op (OpenMP) threads")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--src-len", type=int, default=64)
    parser.add_argument("--tgt-len", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train-warmup", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--gen-batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--gen-tokens", type=int, default=32, help="new tokens per sequence")
    parser.add_argument("--gen-reps", type=int, default=3, help="timed repetitions (the best counts)")
    parser.add_argument("--no-uncached", action="store_true",
                        help="skip generation without a KV cache (for transformers: use_cache=False)")
    parser.add_argument("--sgemm-n", type=int, default=0, help="also measure an n^3 sgemm (0: skip)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)

    if args.impl == "transformers":
        impl = TransformersImpl(args.config, args.weights)
    else:
        with open(args.config) as f:
            impl = ReferenceImpl(Config(json.load(f)), args.weights)
    result = {"impl": impl.name, "torch_version": torch.__version__, "python": sys.version.split()[0],
              "torch_threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in impl.model.parameters())}
    if args.impl == "transformers":
        result["transformers_version"] = impl.transformers_version
    if args.sgemm_n > 0:
        result["sgemm_gflops"] = measure_sgemm(args.sgemm_n, 5)
    if args.parity:
        result["parity"] = check_parity(impl, args.parity)
    generation = []
    for batch in (int(b) for b in args.gen_batches.split(",") if b):
        for cached in ([True] if args.no_uncached else [True, False]):
            generation.append(measure_generation(impl, args, batch, cached))
    result["generate"] = generation
    # Training last: it changes the weights.
    if args.train_steps > 0:
        result["train"] = measure_training(impl, args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
