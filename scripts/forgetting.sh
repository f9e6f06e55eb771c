#!/usr/bin/env bash
# Sequential fine-tuning with and without the forgetting guards (README: Fine-tuning without
# forgetting). A = rotten-tomatoes (default recipe); B = reuters-r52, one epoch from A's model,
# plain, with --l2-sp 0.1 and 1, and WiSE-FT between A and the plain B. A's accuracy after B is
# A's head on B's encoder. Usage: scripts/forgetting.sh [OUT]  (KILN = the kiln binary; about
# 45 minutes on 2 cores).
set -euo pipefail
K=${KILN:-target/release/kiln}
K=$(realpath "$K")
OUT=${1:-runs/forgetting}
mkdir -p "$OUT" && cd "$OUT"
$K data --data rotten-tomatoes --seed 42 --write-splits rt-splits > /dev/null
$K data --data reuters-r52 --seed 42 --write-splits r52-splits > /dev/null
$K train --data rotten-tomatoes --out A 2> A.err
$K eval --model A/model --test rt-splits/test.csv > A-on-A.json
for L in 0 0.1 1; do
  $K train --model A/model --data reuters-r52 --epochs 1 --l2-sp "$L" --out "B-l2sp-$L" 2> "B-$L.err"
  $K interpolate --pretrained "B-l2sp-$L/model" --finetuned A/model --alpha 0 --out "A-head-on-B-$L"
  $K eval --model "A-head-on-B-$L" --test rt-splits/test.csv > "A-on-B-$L.json"
done
$K interpolate --pretrained A/model --finetuned B-l2sp-0/model --alpha 0.5 --out B-wise-0.5
$K interpolate --pretrained B-wise-0.5 --finetuned A/model --alpha 0 --out A-head-on-wise-0.5
$K eval --model A-head-on-wise-0.5 --test rt-splits/test.csv > A-on-wise-0.5.json
$K eval --model B-wise-0.5 --test r52-splits/test.csv > B-wise-0.5-on-B.json
python3 - <<'PY'
import json
def acc(path): return json.load(open(path))["accuracy"]
print("A on A", acc("A-on-A.json"))
for L in ["0", "0.1", "1"]:
    b = json.load(open(f"B-l2sp-{L}/metrics.json"))
    last = [d for d in b["drift"] if d["part"] == "layer 5"][0]
    print(f"l2-sp {L}: A {acc(f'A-on-B-{L}.json'):.4f}  B {b['test']['accuracy']:.4f}  "
          f"layer 5 change {last['relative_change']:.4f} cka {last['cka']:.3f}")
print(f"wise 0.5: A {acc('A-on-wise-0.5.json'):.4f}  B {acc('B-wise-0.5-on-B.json'):.4f}")
PY
