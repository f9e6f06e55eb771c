"""Check that a classifier kiln exported (a run's `model/` dir) loads in `transformers` unchanged
and predicts what `kiln predict` predicts: same label for every text, class probabilities within
1e-4.

Run by hand from the repo root (venv as in requirements.txt; needs target/release/kiln built):

    .venv-ref/bin/python scripts/reference/check_predict.py RUN_DIR/model [--texts FILE] [--max-len 512]

MODEL_DIR is loaded with `AutoModelForSequenceClassification.from_pretrained` (eager attention,
eval mode) and `AutoTokenizer.from_pretrained`, nothing patched; each text is run on its own (no
padding), truncated at --max-len, which is also passed to `kiln predict` (default: kiln predict's
own default, 512). Without --texts, ~20 built-in sentences are used (unicode, long, one-word).

Every `problem_type` kiln exports is compared: single-label classifiers by label and softmax
probabilities; regression models (`problem_type: "regression"`) by value — transformers' raw
output mapped to the data's units with config.json's `kiln_value_scale`, the tolerance applying
to the raw (standardised) output; multi-label models by each label's sigmoid probability and the
predicted set (labels past their `kiln_thresholds`, 0.5 when absent). transformers must load the
model with the same `problem_type`.

A token classifier (`architectures: ["BertForTokenClassification"]`, a `--task token` run) is
loaded with `AutoModelForTokenClassification`: kiln predict's words of each text are fed as
pre-split words (`is_split_into_words=True`), a text longer than --max-len pieces in windows of
whole words as kiln makes them, and each word's tag (argmax at its first piece) and that tag's
probability must agree.

A model trained with `--pooling mean` stores `"kiln_pooling": "mean"` in config.json: its head
(mean over tokens -> linear) is not what BertForSequenceClassification (or RoBERTa's, ELECTRA's,
DistilBERT's head) computes, so there is nothing to compare; the script says so and exits 2.
ModernBERT is the exception: its config's `classifier_pooling` (which kiln writes) makes
transformers pool by mean too, so it is compared.

Exit status: 0 when everything agrees, 1 with a diff table otherwise, 2 when the model cannot be
compared.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

LONG = (
    "I went in expecting very little from this sprawling , three-hour family saga , and for the first act "
    "my expectations were met : the dialogue is stilted , the score swells at every opportunity , and the "
    "lead seems to be reading his lines off a card held just to the left of the camera . but somewhere around "
    "the midpoint , when the two sisters finally sit down at the kitchen table and say the things they have "
    "been avoiding for forty years , the film becomes something else entirely -- patient , generous , funny "
    "in the way real families are funny , and devastating without ever raising its voice . the last twenty "
    "minutes are as good as anything i have seen this year , which makes the clumsy opening all the more "
    "frustrating ; a braver editor would have cut forty minutes and made a masterpiece ."
)

TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "Brilliant.",
    "awful",
    "meh",
    "It's not bad, but it's not good either.",
    "i laughed , i cried , i wanted my money back .",
    "an utterly charming and hilarious film that reminded me of my childhood .",
    "DULL, LIFELESS AND FAR TOO LONG!!!",
    "Café society never looked this glamorous — a triumph of style over substance?",
    "Ein wunderschöner Film über Freundschaft und Verlust.",
    "这部电影非常好看，强烈推荐！",
    "映画は素晴らしかった",
    "Loved it 😍🍿 would watch again 👍",
    "naïve , jejune , and oddly endearing",
    "the performances are strong but the script lets everyone down .",
    "13 going on 30 : 2 hours i won't get back .",
    "\t tabs   and    odd   spacing\tin here ",
    LONG,
    " ".join([LONG] * 4),  # past 512 tokens: exercises truncation
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="a kiln-exported model dir (e.g. RUN_DIR/model)")
    p.add_argument("--texts", default=None, help="text file, one text per non-empty line (default: built-in)")
    p.add_argument("--max-len", type=int, default=512, help="truncation length for both sides (kiln predict default 512)")
    p.add_argument("--kiln", default=os.path.join(REPO, "target", "release", "kiln"), help="kiln binary")
    p.add_argument("--tol", type=float, default=1e-4, help="max allowed |p_kiln - p_transformers|")
    a = p.parse_args()

    with open(os.path.join(a.model_dir, "config.json")) as f:
        config = json.load(f)
    pooling = config.get("kiln_pooling", "cls")
    # ModernBERT's head pools as its config's classifier_pooling says, which kiln writes.
    if pooling != "cls" and config.get("model_type") != "modernbert":
        print(
            f"{a.model_dir}: kiln_pooling = {pooling!r}; transformers' head of this family only "
            "reads the first token (kiln_pooling 'cls'), so its predictions cannot match. Not compared."
        )
        return 2

    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if a.texts:
        with open(a.texts, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        lines = TEXTS
    texts = [t for t in lines if t.strip()]
    if not texts:
        print("no texts")
        return 2

    with tempfile.TemporaryDirectory(prefix="check_predict_") as tmp:
        path = os.path.join(tmp, "texts.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        proc = subprocess.run(
            [a.kiln, "predict", "--model", a.model_dir, "--input", path, "--max-len", str(a.max_len), "--echo-text"],
            capture_output=True, text=True, encoding="utf-8",
        )
    if proc.returncode != 0:
        print(f"kiln predict failed (exit {proc.returncode}):\n{proc.stderr}")
        return 1
    kiln = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    if len(kiln) != len(texts):
        print(f"kiln predict returned {len(kiln)} rows for {len(texts)} texts")
        return 1

    if any(arch.endswith("ForTokenClassification") for arch in config.get("architectures") or []):
        return check_tokens(a, texts, kiln)

    model = AutoModelForSequenceClassification.from_pretrained(a.model_dir, attn_implementation="eager")
    model.eval()
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    problem = config.get("problem_type", "single_label_classification")
    if (model.config.problem_type or "single_label_classification") != problem:
        print(f"transformers loaded problem_type {model.config.problem_type!r}, config.json says {problem!r}")
        return 1
    scale = config.get("kiln_value_scale") or {"mean": 0.0, "std": 1.0}
    thresholds = config.get("kiln_thresholds") or [0.5] * len(id2label)
    print(f"transformers {transformers.__version__} / torch {torch.__version__}: {type(model).__name__}, "
          f"{type(tok).__name__}, labels {[id2label[i] for i in sorted(id2label)]}")

    rows, worst, failures = [], 0.0, 0
    for text, k in zip(texts, kiln):
        enc = tok(text, truncation=True, max_length=a.max_len, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0].double()
        if problem == "regression":
            # Compared as the raw output: kiln's value back to standardised units.
            raw = logits[0].item()
            hf = {"value": scale["mean"] + scale["std"] * raw}
            kp = {"value": k.get("value", float("nan"))}
            diff = abs((kp["value"] - scale["mean"]) / scale["std"] - raw)
            hf_label = kiln_label = "-"
        else:
            if problem == "multi_label_classification":
                probs = torch.sigmoid(logits).tolist()
                hf_label = ";".join(id2label[i] for i, p in enumerate(probs) if p > thresholds[i])
                kiln_label = ";".join(k.get("labels", []))
            else:
                probs = torch.softmax(logits, dim=-1).tolist()
                hf_label = id2label[max(range(len(probs)), key=probs.__getitem__)]
                kiln_label = k.get("label")
            hf = {id2label[i]: p for i, p in enumerate(probs)}
            kp = k.get("probabilities", {})
            diff = float("inf") if set(kp) != set(hf) else max(abs(kp[l] - hf[l]) for l in hf)
        worst = max(worst, diff)
        ok = kiln_label == hf_label and diff <= a.tol and k.get("text") == text
        failures += not ok
        rows.append((ok, text, enc["input_ids"].shape[1], kiln_label, hf_label, kp, hf, diff, k.get("text") == text))

    labels = [id2label[i] for i in sorted(id2label)]
    # One class's probability (the other is 1 - it for 2 classes), or the value.
    show = "value" if problem == "regression" else labels[-1]
    print(f"\n{'':2}{'text':<42}{'tok':>5}  {'kiln':<10}{'transformers':<13}{'p_kiln(' + show + ')':>18}"
          f"{'p_hf(' + show + ')':>16}{'max |diff|':>12}")
    for ok, text, n_tok, kl, hl, kp, hf, diff, same_text in rows:
        t = text.replace("\t", " ").replace("\n", " ")
        t = t if len(t) <= 40 else t[:37] + "..."
        mark = "  " if ok else "✗ "
        print(f"{mark}{t:<42}{n_tok:>5}  {str(kl):<10}{hl:<13}{kp.get(show, float('nan')):>18.6f}"
              f"{hf[show]:>16.6f}{diff:>12.2e}" + ("" if same_text else "  (kiln echoed a different text)"))
    print(f"\n{len(rows)} texts, {failures} disagreeing; max prob difference {worst:.2e} (tolerance {a.tol:g})")
    return 0 if failures == 0 else 1


def check_tokens(a, texts, kiln) -> int:
    """Each word's tag and probability: kiln predict vs AutoModelForTokenClassification."""
    import torch
    import transformers
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(a.model_dir, attn_implementation="eager")
    model.eval()
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    print(f"transformers {transformers.__version__} / torch {torch.__version__}: {type(model).__name__}, "
          f"{type(tok).__name__}, {len(id2label)} tags")
    budget = a.max_len - 2
    worst, failures, words_total = 0.0, 0, 0
    for text, k in zip(texts, kiln):
        words = [w["word"] for w in k["words"]]
        if not words:
            continue
        pieces = [0] * len(words)
        for w in tok(words, is_split_into_words=True, add_special_tokens=False).word_ids():
            if w is not None:
                pieces[w] += 1
        # Windows of whole words, each as long as fits, as kiln makes them.
        windows, start = [], 0
        while start < len(words):
            end, used = start, 0
            while end < len(words) and used + pieces[end] <= budget:
                used, end = used + pieces[end], end + 1
            windows.append((start, end))
            start = end
        hf_tags, hf_probs = [None] * len(words), [0.0] * len(words)
        for start, end in windows:
            enc = tok(words[start:end], is_split_into_words=True, return_tensors="pt")
            with torch.no_grad():
                probs = torch.softmax(model(**enc).logits[0].double(), dim=-1)
            seen = set()
            for i, w in enumerate(enc.word_ids()):
                if w is None or w in seen:
                    continue
                seen.add(w)
                best = int(probs[i].argmax())
                hf_tags[start + w], hf_probs[start + w] = id2label[best], float(probs[i, best])
        bad = []
        for w, (kw, tag, p) in enumerate(zip(k["words"], hf_tags, hf_probs)):
            diff = abs(kw["score"] - p)
            worst = max(worst, diff)
            if kw["tag"] != tag or diff > a.tol:
                bad.append(f"{kw['word']}: kiln {kw['tag']} {kw['score']:.6f}, transformers {tag} {p:.6f}")
        words_total += len(words)
        failures += bool(bad)
        t = text if len(text) <= 40 else text[:37] + "..."
        print(("  " if not bad else "✗ ") + f"{t:<42}{len(words):>5} words {len(windows)} window(s)")
        for b in bad[:5]:
            print(f"      {b}")
    print(f"\n{len(texts)} texts, {words_total} words, {failures} texts disagreeing; max prob difference "
          f"{worst:.2e} (tolerance {a.tol:g})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
