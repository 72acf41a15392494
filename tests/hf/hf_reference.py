"""Hugging Face transformers' side of the parity tests (tests/hf/hf_parity_test.cc).

Runs under the pinned virtualenv (scripts/python-requirements.txt) with no hub access: every model is
either a distill export in a local directory or a tiny random model this script makes. Each command reads
a JSON request file and prints one JSON object on stdout.

  export   --dir DIR --request FILE   open a distill export with from_pretrained; logits, loss, greedy tokens
  make     --dir DIR --request FILE   write a tiny random T5 with save_pretrained; its logits
  tokenize --spiece FILE --request FILE   transformers' T5 tokenizer's ids for each text
"""

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402


def batch_tensors(request):
    input_ids = torch.tensor(request["input_ids"], dtype=torch.long)
    attention_mask = torch.tensor(request["attention_mask"], dtype=torch.long)
    labels = torch.tensor(request["labels"], dtype=torch.long)
    return input_ids, attention_mask, labels


def forward(model, request):
    """Teacher-forced logits and the mean cross entropy over labels != -100, in float64 for the output."""
    input_ids, attention_mask, labels = batch_tensors(request)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    return {
        "logits_shape": list(out.logits.shape),
        "logits": out.logits.double().flatten().tolist(),
        "loss": float(out.loss),
    }


def greedy(model, request):
    input_ids, attention_mask, _ = batch_tensors(request)
    n = int(request["max_new_tokens"])
    with torch.no_grad():
        sequences = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=n,
            do_sample=False,
            num_beams=1,
            use_cache=True,
        )
    eos = model.config.eos_token_id
    rows = []
    for row in sequences.tolist():
        row = row[1:]  # the decoder start token
        if eos in row:
            row = row[: row.index(eos) + 1]
        rows.append(row)
    return rows


def cmd_export(args, request):
    model, info = transformers.T5ForConditionalGeneration.from_pretrained(
        args.dir, output_loading_info=True, torch_dtype=torch.float32
    )
    model.eval()
    result = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "missing_keys": sorted(info["missing_keys"]),
        "unexpected_keys": sorted(info["unexpected_keys"]),
        "mismatched_keys": [list(map(str, k)) for k in info.get("mismatched_keys", [])],
    }
    result.update(forward(model, request))
    result["greedy"] = greedy(model, request)
    return result


def cmd_make(args, request):
    torch.manual_seed(int(request.get("seed", 0)))
    config = transformers.T5Config(**request["config"])
    model = transformers.T5ForConditionalGeneration(config)
    # Random init as transformers does it is far from trained weights; a wider spread makes logits that
    # tell layers apart.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model.eval()
    model.save_pretrained(args.dir, safe_serialization=True)
    result = forward(model, request)
    result["greedy"] = greedy(model, request)
    return result


def cmd_tokenize(args, request):
    # The slow tokenizer reads spiece.model itself (the SentencePiece library), as distill does; the fast
    # one converts it to a tokenizers model first. Both are checked. The conversion needs
    # add_prefix_space=True to split as SentencePiece does: without it, a word whose "▁word" piece is not
    # in the vocabulary loses its standalone "▁" (measured with transformers 4.57.6).
    extra_ids = int(request.get("extra_ids", 0))
    slow = transformers.T5Tokenizer(vocab_file=args.spiece, extra_ids=extra_ids, legacy=False)
    fast = transformers.T5TokenizerFast(vocab_file=args.spiece, extra_ids=extra_ids, legacy=False,
                                        from_slow=True, add_prefix_space=True)
    return {
        "slow": [slow(text)["input_ids"] for text in request["texts"]],
        "fast": [fast(text)["input_ids"] for text in request["texts"]],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["export", "make", "tokenize"])
    parser.add_argument("--dir")
    parser.add_argument("--spiece")
    parser.add_argument("--request", required=True)
    args = parser.parse_args()
    with open(args.request, encoding="utf-8") as f:
        request = json.load(f)
    torch.set_num_threads(1)
    result = {"export": cmd_export, "make": cmd_make, "tokenize": cmd_tokenize}[args.command](args, request)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
