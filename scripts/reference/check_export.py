"""Check that a model kiln saved in Hugging Face layout loads in `transformers` unchanged and
computes the same logits.

Run by hand from the repo root (venv as in make_fixtures.py):

    .venv-ref/bin/python scripts/reference/check_export.py [MODEL_DIR]

It runs `cargo run --release --example export_hf` on MODEL_DIR (default: the tiny fixture),
which attaches a new 2-class head, saves to a temp dir and prints kiln's logits; then loads that
dir with BertForSequenceClassification and compares (max abs diff <= 1e-4).
"""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

TEXTS = ["the movie was great", "a boring , bad plot !", "Café loved it"]


def main() -> int:
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/tiny-bert"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "exported")
        proc = subprocess.run(
            ["cargo", "run", "--release", "--quiet", "--example", "export_hf", "--", model_dir, out, *TEXTS],
            check=True, capture_output=True, text=True,
        )
        kiln = [json.loads(line) for line in proc.stdout.splitlines()]
        model = BertForSequenceClassification.from_pretrained(out, attn_implementation="eager")
        model.eval()
        tok = AutoTokenizer.from_pretrained(out)
        worst = 0.0
        for row in kiln:
            enc = tok(row["text"], return_tensors="pt")
            with torch.no_grad():
                logits = model(**enc).logits[0].tolist()
            diff = max(abs(a - b) for a, b in zip(logits, row["logits"]))
            worst = max(worst, diff)
            print(f"{row['text']!r}: transformers {logits} kiln {row['logits']} max abs diff {diff:.2e}")
        print(f"labels: {model.config.id2label}")
        print(f"worst max abs diff {worst:.2e}")
        return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
