#!/usr/bin/env python3
"""Generate the PyTorch reference values that kiln-loss's tests compare against.

Pure torch (no transformers, no network). Uses the reference venv described in
make_fixtures.py; run from the repository root:

    .venv-ref/bin/python scripts/reference/make_loss_fixtures.py

It writes tests/fixtures/losses.json, deterministically (seeded, float32, CPU):

  cross_entropy  F.cross_entropy(logits, targets, weight=w, label_smoothing=eps, reduction="mean")
                 for two logit sets (batch 5 x 3 classes, batch 4 x 7 classes),
                 eps in {0, 0.1}, w in {None, [0.2, 1.0, 3.0, ...]}, plus one case with
                 logits of magnitude 1e4 (stability)
  distillation   (1 - a) * CE + a * T^2 * F.kl_div(F.log_softmax(s / T), F.softmax(t / T),
                 reduction="batchmean") for (T, a) in {(1, .5), (2, .5), (4, .9), (2, 0), (2, 1)},
                 (3, .3) with label smoothing 0.1, (2, .5) with smoothing 0.1 and class weights,
                 plus one large-logit case
  mse            F.mse_loss(predictions, targets) for one [4, 3] case
  huber          F.huber_loss(predictions, targets, delta=d) for d in {1, 0.5} on [6, 1]
                 (errors on both sides of delta)
  bce            F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pw) on [5, 4]
                 0/1 targets, pw in {None, [1, 3, 0.5, 10]}, plus logits of magnitude 50
  token_ce       F.cross_entropy(logits, targets, ignore_index=-100) on [9, 5] (token
                 classification: padding, special tokens and later word pieces carry -100)

Each case stores its inputs, the loss value and d(loss)/d(logits) (student logits for
distillation, predictions for mse) from loss.backward(). Floats are written as
repr(float(x)) of float32 values, so they round-trip exactly.
"""

import json
import pathlib
import re

import torch
import torch.nn.functional as F

OUT = pathlib.Path("tests/fixtures/losses.json")
SEED = 20240611


def f32_list(t):
    """Nested lists of float32 values as Python floats (exact; json writes their repr)."""
    assert t.dtype == torch.float32
    return t.detach().tolist()


def run(fn, x, *rest):
    """Evaluates fn(x_leaf, *rest) and returns (loss value, grad w.r.t. x)."""
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x, *rest)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    return float(loss.detach()), f32_list(x.grad)


def ce(logits, targets, eps, weights):
    return F.cross_entropy(logits, targets, weight=weights, label_smoothing=eps, reduction="mean")


def ce_by_hand(logits, targets, eps, weights):
    """The formula kiln-loss implements; asserted equal to F.cross_entropy below.

    PyTorch's weighted mean divides BOTH the NLL term and the smoothing term by sum_i w[y_i],
    and the smoothing term weights each class's -log p by that class's weight.
    """
    logp = F.log_softmax(logits, dim=-1)
    n, c = logits.shape
    w = weights if weights is not None else torch.ones(c)
    wy = w[targets]
    nll = -(wy * logp[torch.arange(n), targets]).sum() / wy.sum()
    smooth = -(logp * w).sum() / wy.sum()
    return (1 - eps) * nll + eps / c * smooth


def kd(student, teacher, targets, temperature, alpha, eps, weights):
    # Teacher logits are plain data: no grad flows to them (they are not leaves requiring grad).
    hard = F.cross_entropy(student, targets, weight=weights, label_smoothing=eps, reduction="mean")
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1),
        F.softmax(teacher / temperature, dim=-1),
        reduction="batchmean",
    ) * (temperature * temperature)
    return (1.0 - alpha) * hard + alpha * soft


def main():
    torch.manual_seed(SEED)
    torch.set_default_dtype(torch.float32)

    # Two logit sets; targets chosen by hand so every class weight (including a zero weight)
    # is exercised. Logits ~ N(0, 2^2) so the softmaxes are neither flat nor one-hot.
    sets = {
        "b5c3": {
            "logits": torch.randn(5, 3) * 2.0,
            "teacher": torch.randn(5, 3) * 2.0,
            "targets": torch.tensor([0, 2, 1, 2, 0]),
            "weights": torch.tensor([0.2, 1.0, 3.0]),
        },
        "b4c7": {
            "logits": torch.randn(4, 7) * 2.0,
            "teacher": torch.randn(4, 7) * 2.0,
            "targets": torch.tensor([6, 4, 0, 2]),
            "weights": torch.tensor([0.2, 1.0, 3.0, 0.5, 0.0, 2.0, 1.5]),
        },
        # Stability: exp() of these overflows float32 unless the max is subtracted first.
        "large": {
            "logits": torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [0.0, 0.0, -1e4]]),
            "teacher": torch.tensor([[-1e4, 1e4, 0.0], [1e4, 1e4, -1e4], [0.0, -1e4, 0.0]]),
            "targets": torch.tensor([1, 0, 2]),
            "weights": torch.tensor([0.2, 1.0, 3.0]),
        },
    }

    cross_entropy = []
    for set_name in ("b5c3", "b4c7"):
        s = sets[set_name]
        for eps in (0.0, 0.1):
            for weighted in (False, True):
                w = s["weights"] if weighted else None
                loss, grad = run(ce, s["logits"], s["targets"], eps, w)
                by_hand = float(ce_by_hand(s["logits"], s["targets"], eps, w))
                assert abs(by_hand - loss) <= 1e-6 * max(1.0, abs(loss)), (by_hand, loss)
                cross_entropy.append({
                    "name": f"ce_{set_name}_eps{eps}_{'weighted' if weighted else 'unweighted'}",
                    "logits": f32_list(s["logits"]),
                    "targets": s["targets"].tolist(),
                    "label_smoothing": eps,
                    "class_weights": f32_list(w) if w is not None else None,
                    "loss": loss,
                    "grad": grad,
                })
    s = sets["large"]
    loss, grad = run(ce, s["logits"], s["targets"], 0.1, s["weights"])
    cross_entropy.append({
        "name": "ce_large_eps0.1_weighted",
        "logits": f32_list(s["logits"]),
        "targets": s["targets"].tolist(),
        "label_smoothing": 0.1,
        "class_weights": f32_list(s["weights"]),
        "loss": loss,
        "grad": grad,
    })

    # (set, T, alpha, eps, weighted)
    kd_cases = [
        ("b4c7", 1.0, 0.5, 0.0, False),
        ("b4c7", 2.0, 0.5, 0.0, False),
        ("b4c7", 4.0, 0.9, 0.0, False),
        ("b4c7", 2.0, 0.0, 0.0, False),
        ("b4c7", 2.0, 1.0, 0.0, False),
        ("b4c7", 3.0, 0.3, 0.1, False),
        ("b5c3", 2.0, 0.5, 0.1, True),
        ("large", 2.0, 0.5, 0.0, False),
    ]
    distillation = []
    for set_name, temperature, alpha, eps, weighted in kd_cases:
        s = sets[set_name]
        w = s["weights"] if weighted else None
        loss, grad = run(kd, s["logits"], s["teacher"], s["targets"], temperature, alpha, eps, w)
        distillation.append({
            "name": f"kd_{set_name}_T{temperature}_a{alpha}_eps{eps}"
            + ("_weighted" if weighted else ""),
            "student": f32_list(s["logits"]),
            "teacher": f32_list(s["teacher"]),
            "targets": s["targets"].tolist(),
            "temperature": temperature,
            "alpha": alpha,
            "label_smoothing": eps,
            "class_weights": f32_list(w) if w is not None else None,
            "loss": loss,
            "grad": grad,
        })

    predictions = torch.randn(4, 3)
    targets = torch.randn(4, 3)
    loss, grad = run(F.mse_loss, predictions, targets)
    mse = [{
        "name": "mse_b4x3",
        "predictions": f32_list(predictions),
        "targets": f32_list(targets),
        "loss": loss,
        "grad": grad,
    }]

    # Drawn after every earlier case, so the earlier cases keep their values.
    predictions = torch.randn(6, 1) * 2.0
    targets = torch.randn(6, 1)
    huber = []
    for delta in (1.0, 0.5):
        loss, grad = run(lambda p, t: F.huber_loss(p, t, delta=delta), predictions, targets)
        huber.append({
            "name": f"huber_b6_delta{delta}",
            "predictions": f32_list(predictions),
            "targets": f32_list(targets),
            "delta": delta,
            "loss": loss,
            "grad": grad,
        })

    bce = []
    logits = torch.randn(5, 4) * 2.0
    labels = (torch.rand(5, 4) < 0.4).float()
    large = torch.tensor([[50.0, -50.0, 30.0, -0.5], [-50.0, 50.0, -30.0, 0.5]])
    large_labels = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    pw = torch.tensor([1.0, 3.0, 0.5, 10.0])
    for set_name, x, y in (("b5x4", logits, labels), ("large", large, large_labels)):
        for weighted in (False, True):
            w = pw if weighted else None
            loss, grad = run(lambda a, t: F.binary_cross_entropy_with_logits(a, t, pos_weight=w), x, y)
            bce.append({
                "name": f"bce_{set_name}_{'pos_weight' if weighted else 'plain'}",
                "logits": f32_list(x),
                "targets": f32_list(y),
                "pos_weight": f32_list(w) if w is not None else None,
                "loss": loss,
                "grad": grad,
            })

    token_ce = []
    logits = torch.randn(9, 5) * 1.5
    targets = torch.tensor([-100, 3, -100, 0, 4, -100, 1, 1, -100])
    loss, grad = run(lambda a, t: F.cross_entropy(a, t, ignore_index=-100), logits, targets)
    token_ce.append({
        "name": "token_ce_9x5",
        "logits": f32_list(logits),
        "targets": targets.tolist(),
        "loss": loss,
        "grad": grad,
    })

    doc = {
        "generator": "scripts/reference/make_loss_fixtures.py",
        "torch": torch.__version__,
        "seed": SEED,
        "dtype": "float32",
        "cross_entropy": cross_entropy,
        "distillation": distillation,
        "mse": mse,
        "huber": huber,
        "bce": bce,
        "token_ce": token_ce,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1)
    # One matrix row / vector per line: collapse the innermost (number-only) lists.
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(cross_entropy)} cross-entropy, "
          f"{len(distillation)} distillation, {len(mse)} mse, {len(huber)} huber, {len(bce)} bce, "
          f"{len(token_ce)} token cross-entropy cases")


if __name__ == "__main__":
    main()
