#!/usr/bin/env python3
"""A PyTorch workload for traces/recorder/gpu-check.sh, run under `memtrack record`.

Loads and unloads several embedding models of different sizes, built from configuration with
random weights (nothing is downloaded), runs batches through each and frees it. Writes what
PyTorch itself reports after every step (torch.cuda.memory_allocated / memory_reserved and their
maxima, cudaMemGetInfo) as JSON, and PyTorch's own memory snapshot of the same run.

    torch_workload.py --report REPORT.json --snapshot SNAPSHOT.pickle
"""
import argparse
import json
import sys


def build_models(torch):
    """(name, model) pairs: BERT-like encoders from transformers when it is installed, else
    an embedding table and a torch.nn.TransformerEncoder of the same shapes."""
    shapes = [  # name, hidden, layers, heads, vocab
        ("mini-embed-256", 256, 4, 4, 30522),
        ("small-embed-384", 384, 6, 6, 30522),
        ("base-embed-768", 768, 12, 12, 30522),
        ("large-embed-1024", 1024, 24, 16, 50265),
    ]
    try:
        from transformers import BertConfig, BertModel  # noqa: F401

        def make(hidden, layers, heads, vocab):
            config = BertConfig(hidden_size=hidden, num_hidden_layers=layers,
                                num_attention_heads=heads, intermediate_size=4 * hidden,
                                vocab_size=vocab, max_position_embeddings=512)
            return BertModel(config, add_pooling_layer=False)
        kind = "transformers.BertModel"
    except Exception:  # transformers missing or incompatible: plain torch
        class Encoder(torch.nn.Module):
            def __init__(self, hidden, layers, heads, vocab):
                super().__init__()
                self.embed = torch.nn.Embedding(vocab, hidden)
                layer = torch.nn.TransformerEncoderLayer(hidden, heads, 4 * hidden,
                                                         batch_first=True)
                self.encoder = torch.nn.TransformerEncoder(layer, layers)

            def forward(self, input_ids):
                return self.encoder(self.embed(input_ids))

        def make(hidden, layers, heads, vocab):
            return Encoder(hidden, layers, heads, vocab)
        kind = "torch.nn.TransformerEncoder"
    for name, hidden, layers, heads, vocab in shapes:
        yield name, kind, vocab, (lambda h=hidden, l=layers, n=heads, v=vocab: make(h, l, n, v))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args()

    import torch
    if not torch.cuda.is_available():
        print("torch_workload: no CUDA device", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    torch.cuda.init()
    torch.cuda.memory._record_memory_history(max_entries=1_000_000)
    steps = []

    def record(name):
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
        steps.append({
            "name": name,
            "allocated": torch.cuda.memory_allocated(),
            "reserved": torch.cuda.memory_reserved(),
            "max_allocated": torch.cuda.max_memory_allocated(),
            "max_reserved": torch.cuda.max_memory_reserved(),
            "free": free,
            "total": total,
        })

    record("start")
    kind = None
    for name, kind, vocab, make in build_models(torch):
        model = make().to(device="cuda", dtype=torch.float16).eval()
        record(f"{name}: loaded")
        with torch.inference_mode():
            for batch in range(args.batches):
                ids = torch.randint(0, vocab, (16 + 8 * batch, 128), device="cuda")
                out = model(ids)
                hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out
                embedding = hidden.mean(dim=1)
                del ids, out, hidden, embedding
        record(f"{name}: {args.batches} batches")
        del model
        torch.cuda.empty_cache()
        record(f"{name}: unloaded")

    torch.cuda.memory._dump_snapshot(args.snapshot)
    torch.cuda.memory._record_memory_history(enabled=None)
    report = {
        "workload": "torch",
        "torch": torch.__version__,
        "models": kind,
        "max_memory_allocated": torch.cuda.max_memory_allocated(),
        "max_memory_reserved": torch.cuda.max_memory_reserved(),
        "steps": steps,
    }
    with open(args.report, "w") as file:
        json.dump(report, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
