//! `kiln embed` and `kiln predict` end to end on real-looking inputs.
//!
//! embed: a sentence-transformers checkpoint (the tiny fixture plus `modules.json`,
//! `1_Pooling/config.json`, `sentence_bert_config.json` written here) is embedded as its modules
//! say — pooling from the Pooling config, L2 normalisation from a Normalize module, truncation at
//! `max_seq_length` — flags override each, and broken files are one-line errors naming the file.
//! With the real all-MiniLM-L6-v2 in the cache, its output equals transformers' mean pooling
//! (tests/fixtures/minilm/expected.json) normalised, within 1e-4.
//!
//! predict: CSV/TSV/JSONL/JSON/text files and standard input, one output line per record with
//! its `index` (and `id`), `--top-k`, `--echo-text`, and errors naming file and line. The model
//! is the tiny fixture, a (randomly initialised) BertForSequenceClassification with 3 labels.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tiny() -> PathBuf {
    fixtures().join("tiny-bert")
}

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs kiln with `stdin` as its standard input.
fn kiln_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The stderr of a failed run: exactly one line, `error: …`, no panic.
fn one_line_error(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    err
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = norm(v);
    v.iter().map(|&x| (f64::from(x) / n) as f32).collect()
}

// ---------------------------------------------------------------------------------------------
// embed

const MODULES: &str = r#"[
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
  {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
]"#;
const MODULES_NO_NORMALIZE: &str = r#"[
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
]"#;

fn pooling_config(mode: &str) -> String {
    format!(
        r#"{{"word_embedding_dimension": 32, "pooling_mode_cls_token": {}, "pooling_mode_mean_tokens": {},
            "pooling_mode_max_tokens": {}, "pooling_mode_mean_sqrt_len_tokens": false}}"#,
        mode == "cls",
        mode == "mean",
        mode == "max"
    )
}

/// A copy of the tiny checkpoint in `root/name` with `extra` files (relative path, content).
fn checkpoint(root: &Path, name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
    ] {
        std::fs::copy(tiny().join(f), dir.join(f)).unwrap();
    }
    for (path, content) in extra {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

#[derive(serde::Deserialize)]
struct TinyExpected {
    examples: Vec<TinyExample>,
}
#[derive(serde::Deserialize)]
struct TinyExample {
    text: String,
    text_pair: Option<String>,
    mean_pooled: Vec<f32>,
    last_hidden_state: Vec<Vec<f32>>,
}

fn tiny_singles() -> Vec<TinyExample> {
    let e: TinyExpected =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("expected.json")).unwrap())
            .unwrap();
    e.examples
        .into_iter()
        .filter(|e| e.text_pair.is_none())
        .collect()
}

/// `kiln embed` output and stderr.
fn embed(model: &Path, input: &Path, flags: &[&str]) -> (Vec<Vec<f32>>, String) {
    let mut args = vec!["embed", "--model", p(model), "--input", p(input)];
    args.extend_from_slice(flags);
    let out = kiln(&args);
    let vectors = ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (vectors, String::from_utf8_lossy(&out.stderr).to_string())
}

fn lines_file(root: &Path, texts: &[&str]) -> PathBuf {
    let path = root.join("lines.txt");
    std::fs::write(&path, texts.join("\n") + "\n").unwrap();
    path
}

#[test]
fn embed_follows_modules_json_pooling_and_normalize() {
    let tmp = tempfile::tempdir().unwrap();
    let singles = tiny_singles();
    let texts: Vec<&str> = singles.iter().map(|e| e.text.as_str()).collect();
    let input = lines_file(tmp.path(), &texts);
    let plain = checkpoint(tmp.path(), "plain", &[]);

    // Without modules.json: as before (mean, not normalised), and said so.
    let (mean, err) = embed(&plain, &input, &[]);
    assert_eq!(
        err.trim(),
        "pooling mean, not normalized (kiln's default, no modules.json), max length 64 (the model's max_position_embeddings)"
    );
    let (cls, _) = embed(&plain, &input, &["--pooling", "cls"]);
    for (v, e) in mean.iter().zip(&singles) {
        assert!(max_abs_diff(v, &e.mean_pooled) <= 1e-4, "{:?}", e.text);
        assert!(
            norm(v) > 1.5,
            "the tiny model's mean vectors are not unit vectors already"
        );
    }

    // Mean + Normalize: unit vectors, equal to the plain vector over its norm (and to
    // transformers' mean pooling over its norm).
    let pooling_mean = pooling_config("mean");
    let st = checkpoint(
        tmp.path(),
        "st-mean",
        &[
            ("modules.json", MODULES),
            ("1_Pooling/config.json", &pooling_mean),
        ],
    );
    let (unit, err) = embed(&st, &input, &[]);
    assert_eq!(err.trim(), "pooling mean, normalized (from modules.json), max length 64 (the model's max_position_embeddings)");
    assert_eq!(unit.len(), singles.len());
    for ((u, v), e) in unit.iter().zip(&mean).zip(&singles) {
        assert!(
            (norm(u) - 1.0).abs() < 1e-5,
            "{:?}: norm {}",
            e.text,
            norm(u)
        );
        assert!(max_abs_diff(u, &normalized(v)) <= 1e-6, "{:?}", e.text);
        assert!(
            max_abs_diff(u, &normalized(&e.mean_pooled)) <= 1e-4,
            "{:?}",
            e.text
        );
    }

    // CLS from the pooling config, no Normalize module: the [CLS] vector as it is.
    let pooling_cls = pooling_config("cls");
    let st_cls = checkpoint(
        tmp.path(),
        "st-cls",
        &[
            ("modules.json", MODULES_NO_NORMALIZE),
            ("1_Pooling/config.json", &pooling_cls),
        ],
    );
    let (got, err) = embed(&st_cls, &input, &[]);
    assert!(
        err.contains("pooling cls, not normalized (from modules.json)"),
        "{err}"
    );
    assert_eq!(got, cls);
    for (v, e) in got.iter().zip(&singles) {
        assert!(
            max_abs_diff(v, &e.last_hidden_state[0]) <= 1e-4,
            "{:?}",
            e.text
        );
    }

    // Max pooling: the per-dimension maximum of transformers' last hidden state.
    let pooling_max = pooling_config("max");
    let st_max = checkpoint(
        tmp.path(),
        "st-max",
        &[
            ("modules.json", MODULES_NO_NORMALIZE),
            ("1_Pooling/config.json", &pooling_max),
        ],
    );
    let (got, _) = embed(&st_max, &input, &["--batch-size", "8"]);
    for (v, e) in got.iter().zip(&singles) {
        let want: Vec<f32> = (0..v.len())
            .map(|d| {
                e.last_hidden_state
                    .iter()
                    .map(|t| t[d])
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .collect();
        assert!(max_abs_diff(v, &want) <= 1e-4, "max {:?}", e.text);
    }

    // Flags win over modules.json.
    let (got, err) = embed(&st, &input, &["--pooling", "cls", "--normalize", "false"]);
    assert_eq!(got, cls);
    assert!(
        err.contains("pooling cls (from --pooling)")
            && err.contains("not normalized (from --normalize)"),
        "{err}"
    );
    let (got, _) = embed(&st, &input, &["--normalize", "false"]);
    assert_eq!(got, mean);
    let (got, _) = embed(&st_cls, &input, &["--normalize", "true"]);
    for (u, v) in got.iter().zip(&cls) {
        assert!(max_abs_diff(u, &normalized(v)) <= 1e-6);
    }
}

#[test]
fn embed_truncates_at_max_seq_length_unless_max_len_says_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "the quick brown fox jumps over the lazy dog and the cat watched, but nobody played with them.";
    let input = lines_file(tmp.path(), &[long, "the movie was great"]);
    let plain = checkpoint(tmp.path(), "plain", &[]);
    let pooling_mean = pooling_config("mean");
    let st = checkpoint(
        tmp.path(),
        "st",
        &[
            ("modules.json", MODULES),
            ("1_Pooling/config.json", &pooling_mean),
            (
                "sentence_bert_config.json",
                r#"{"max_seq_length": 8, "do_lower_case": false}"#,
            ),
        ],
    );
    let (full, _) = embed(&plain, &input, &["--normalize", "true"]);
    let (cut, _) = embed(&plain, &input, &["--normalize", "true", "--max-len", "8"]);
    assert!(
        max_abs_diff(&full[0], &cut[0]) > 1e-3,
        "truncation at 8 tokens changes the long line"
    );
    // A short line is not truncated (batched with a shorter neighbour: float rounding only).
    assert!(max_abs_diff(&full[1], &cut[1]) <= 1e-6);

    let (got, err) = embed(&st, &input, &[]);
    assert_eq!(got, cut);
    assert!(
        err.contains("pooling mean, normalized, max length 8 — from modules.json"),
        "{err}"
    );
    let (got, err) = embed(&st, &input, &["--max-len", "64"]);
    assert_eq!(got, full);
    assert!(err.contains("max length 64 (from --max-len)"), "{err}");
    // Beyond the model's positions: capped (and said), not a crash.
    let (got, err) = embed(&st, &input, &["--max-len", "4096"]);
    assert_eq!(got, full);
    assert!(err.contains("capped"), "{err}");
}

#[test]
fn embed_bad_sentence_transformers_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = lines_file(tmp.path(), &["the movie was great"]);
    let mean = pooling_config("mean");
    // (checkpoint directory name, files added to the tiny checkpoint, what the error says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "bad-modules",
            vec![("modules.json", "[{\"path\": \"\", ")],
            vec!["modules.json", "invalid JSON"],
        ),
        (
            "modules-object",
            vec![("modules.json", "{}")],
            vec!["modules.json", "array"],
        ),
        (
            "bad-pooling-json",
            vec![
                ("modules.json", MODULES),
                (
                    "1_Pooling/config.json",
                    "{\"pooling_mode_mean_tokens\": tru",
                ),
            ],
            vec!["1_Pooling/config.json", "invalid JSON"],
        ),
        (
            "weightedmean",
            vec![
                ("modules.json", MODULES),
                (
                    "1_Pooling/config.json",
                    r#"{"pooling_mode_mean_tokens": false, "pooling_mode_weightedmean_tokens": true}"#,
                ),
            ],
            vec![
                "1_Pooling/config.json",
                "pooling_mode_weightedmean_tokens",
                "--pooling",
            ],
        ),
        (
            "wrong-type",
            vec![
                ("modules.json", MODULES),
                (
                    "1_Pooling/config.json",
                    r#"{"pooling_mode_cls_token": "yes"}"#,
                ),
            ],
            vec!["1_Pooling/config.json", "pooling_mode_cls_token"],
        ),
        (
            "no-pooling-config",
            vec![("modules.json", MODULES)],
            vec!["1_Pooling/config.json"],
        ),
        (
            "bad-sbert",
            vec![
                ("modules.json", MODULES),
                ("1_Pooling/config.json", &mean),
                (
                    "sentence_bert_config.json",
                    "{\"max_seq_length\": \"long\"}",
                ),
            ],
            vec!["sentence_bert_config.json", "max_seq_length"],
        ),
        (
            "dense",
            vec![
                (
                    "modules.json",
                    r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
                        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                        {"name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#,
                ),
                ("1_Pooling/config.json", &mean),
            ],
            vec!["modules.json", "sentence_transformers.models.Dense"],
        ),
    ];
    for (name, files, needles) in cases {
        let dir = checkpoint(tmp.path(), name, &files);
        let err = one_line_error(&kiln(&["embed", "--model", p(&dir), "--input", p(&input)]));
        assert!(
            err.contains(name),
            "{name}: the message names the checkpoint's file: {err}"
        );
        for needle in needles {
            assert!(err.contains(needle), "{name}: `{needle}` in {err}");
        }
    }
    // --pooling stands in for an unsupported pooling config (the file is then not needed).
    let dir = tmp.path().join("weightedmean");
    let (v, err) = embed(&dir, &input, &["--pooling", "mean"]);
    assert_eq!(v.len(), 1);
    assert!(
        err.contains("pooling mean (from --pooling), normalized (from modules.json)"),
        "{err}"
    );
    let err = one_line_error(&kiln(&[
        "embed",
        "--model",
        p(&dir),
        "--input",
        p(&input),
        "--max-len",
        "1",
    ]));
    assert!(err.contains("--max-len"), "{err}");
}

#[derive(serde::Deserialize)]
struct MiniLmExpected {
    sentences: Vec<MiniLmSentence>,
}
#[derive(serde::Deserialize)]
struct MiniLmSentence {
    text: String,
    input_ids: Vec<u32>,
    mean_pooled: Vec<f32>,
}

#[test]
#[ignore = "needs fetched files: cargo xtask test fetches them and runs ignored tests"]
fn minilm_embed_equals_sentence_transformers() {
    let dir = common::fetched("minilm-l6");
    assert!(
        dir.join("modules.json").is_file(),
        "the fetched checkpoint ships modules.json"
    );
    let expected: MiniLmExpected = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("minilm/expected.json")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let texts: Vec<&str> = expected.sentences.iter().map(|s| s.text.as_str()).collect();
    assert!(texts.iter().all(|t| !t.contains('\n') && !t.is_empty()));
    let input = lines_file(tmp.path(), &texts);

    // all-MiniLM-L6-v2: mean pooling, Normalize, max_seq_length 256.
    let (got, err) = embed(&dir, &input, &[]);
    assert!(
        err.contains("pooling mean, normalized, max length 256 — from modules.json"),
        "{err}"
    );
    assert_eq!(got.len(), texts.len());
    let mut long = 0;
    for (v, s) in got.iter().zip(&expected.sentences) {
        assert!((norm(v) - 1.0).abs() < 1e-5, "{:?}", s.text);
        let d = max_abs_diff(v, &normalized(&s.mean_pooled));
        if s.input_ids.len() <= 256 {
            assert!(d <= 1e-4, "{:?}: max abs diff {d}", s.text);
        } else {
            // The fixture's vector is untruncated; sentence-transformers cuts at 256 tokens.
            long += 1;
            assert!(
                d > 1e-3,
                "{:?} ({} tokens) was truncated at 256: {d}",
                s.text,
                s.input_ids.len()
            );
        }
    }
    assert!(long >= 1, "the fixture has a sentence over 256 tokens");
    // Untruncated (--max-len 512), every sentence matches.
    let (got, _) = embed(&dir, &input, &["--max-len", "512"]);
    for (v, s) in got.iter().zip(&expected.sentences) {
        let d = max_abs_diff(v, &normalized(&s.mean_pooled));
        assert!(d <= 1e-4, "{:?}: max abs diff {d}", s.text);
    }
}

// ---------------------------------------------------------------------------------------------
// predict

const LABELS: [&str; 3] = ["negative", "neutral", "positive"];

fn rows(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn predict(args: &[&str]) -> Vec<serde_json::Value> {
    let model = tiny();
    let mut all = vec!["predict", "--model", p(&model)];
    all.extend_from_slice(args);
    rows(&ok(&kiln(&all)))
}

fn probabilities(row: &serde_json::Value) -> Vec<f64> {
    let map = row["probabilities"]
        .as_object()
        .unwrap_or_else(|| panic!("probabilities in {row}"));
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(keys, LABELS, "every label, in the model's order");
    map.values().map(|v| v.as_f64().unwrap()).collect()
}

const TEXTS: [&str; 4] = [
    "the movie was great",
    "this book was xyzzy boring",
    "is the food good?",
    "the film was terrible",
];

#[test]
fn predict_reads_files_and_stdin_and_keeps_the_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args: Vec<&str> = TEXTS.iter().flat_map(|t| ["--text", *t]).collect();
    let reference = predict(&args);
    assert_eq!(reference.len(), TEXTS.len());
    for (i, row) in reference.iter().enumerate() {
        assert_eq!(row["index"], i);
        assert!(
            row.get("text").is_none() && row.get("id").is_none() && row.get("top_k").is_none(),
            "{row}"
        );
        let p = probabilities(row);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
        assert_eq!(row["label"], LABELS[best]);
    }
    assert_ne!(
        reference[0]["probabilities"], reference[1]["probabilities"],
        "different texts, different outputs"
    );
    let same = |got: &[serde_json::Value], order: &[usize]| {
        assert_eq!(got.len(), order.len());
        for (row, &i) in got.iter().zip(order) {
            assert_eq!(row["probabilities"], reference[i]["probabilities"], "{row}");
            assert_eq!(row["label"], reference[i]["label"]);
        }
    };

    // CSV: another text column, ids, a blank row (not a record), a quoted field.
    let csv = dir.join("reviews.csv");
    std::fs::write(
        &csv,
        format!(
            "id,review,stars\nr1,{},5\n\nr2,{},1\nr3,\"{}\",3\n",
            TEXTS[2], TEXTS[0], TEXTS[3]
        ),
    )
    .unwrap();
    let got = predict(&[
        "--input",
        p(&csv),
        "--text-column",
        "review",
        "--id-column",
        "id",
    ]);
    same(&got, &[2, 0, 3]);
    let ids: Vec<(&str, u64)> = got
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["index"].as_u64().unwrap()))
        .collect();
    assert_eq!(ids, vec![("r1", 0), ("r2", 1), ("r3", 2)]);
    assert!(got.iter().all(|r| r.get("text").is_none()));

    // JSONL with numeric ids (printed as strings), --top-k 1.
    let jsonl = dir.join("in.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"id\": 17, \"text\": \"{}\"}}\n\n{{\"id\": 18, \"text\": \"{}\"}}\n",
            TEXTS[1], TEXTS[0]
        ),
    )
    .unwrap();
    let got = predict(&["--input", p(&jsonl), "--id-column", "id", "--top-k", "1"]);
    assert_eq!(got.len(), 2);
    for (row, (id, i)) in got.iter().zip([("17", 1), ("18", 0)]) {
        assert_eq!(row["id"], id);
        assert!(row.get("probabilities").is_none(), "{row}");
        let top = row["top_k"].as_array().unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0]["label"], row["label"]);
        assert_eq!(row["label"], reference[i]["label"]);
        let best = probabilities(&reference[i]).into_iter().fold(0.0, f64::max);
        assert!((top[0]["probability"].as_f64().unwrap() - best).abs() < 1e-7);
    }

    // A JSON array, --top-k above the label count: every label, most probable first.
    let json = dir.join("in.json");
    std::fs::write(
        &json,
        format!(
            "[{{\"text\": \"{}\"}}, {{\"text\": \"{}\"}}]",
            TEXTS[3], TEXTS[2]
        ),
    )
    .unwrap();
    let got = predict(&["--input", p(&json), "--top-k", "10"]);
    for (row, i) in got.iter().zip([3, 2]) {
        let top = row["top_k"].as_array().unwrap();
        let ps: Vec<f64> = top
            .iter()
            .map(|t| t["probability"].as_f64().unwrap())
            .collect();
        assert_eq!(top.len(), 3);
        assert!(ps.windows(2).all(|w| w[0] >= w[1]), "{row}");
        let want = probabilities(&reference[i]);
        for t in top {
            let l = LABELS.iter().position(|l| *l == t["label"]).unwrap();
            assert!((t["probability"].as_f64().unwrap() - want[l]).abs() < 1e-7);
        }
    }

    // TSV sentence pairs with --echo-text; a pair is not the single text.
    let tsv = dir.join("pairs.tsv");
    std::fs::write(
        &tsv,
        "premise\thypothesis\nis the food good?\tyes, very good.\n",
    )
    .unwrap();
    let got = predict(&[
        "--input",
        p(&tsv),
        "--text-column",
        "premise",
        "--text-pair-column",
        "hypothesis",
        "--echo-text",
    ]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["text"], "is the food good?");
    assert_eq!(got[0]["text_pair"], "yes, very good.");
    assert_ne!(got[0]["probabilities"], reference[2]["probabilities"]);

    // Plain text: blank and whitespace-only lines print nothing but count, so index + 1 is the line.
    let txt = dir.join("texts.txt");
    let body = format!("{}\r\n\n   \n{}\n\t\n{}\n", TEXTS[0], TEXTS[1], TEXTS[3]);
    std::fs::write(&txt, &body).unwrap();
    let got = predict(&["--input", p(&txt), "--echo-text"]);
    same(&got, &[0, 1, 3]);
    let at: Vec<(u64, &str)> = got
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["text"].as_str().unwrap()))
        .collect();
    assert_eq!(at, vec![(0, TEXTS[0]), (3, TEXTS[1]), (5, TEXTS[3])]);
    // A file of another extension is lines too, as before; so is --format lines.
    let other = dir.join("texts.dat");
    std::fs::write(&other, &body).unwrap();
    assert_eq!(predict(&["--input", p(&other), "--echo-text"]), got);
    assert_eq!(
        predict(&["--input", p(&txt), "--format", "lines", "--echo-text"]),
        got
    );

    // Standard input: lines by default, structured with --format.
    let model = tiny();
    let got = rows(&ok(&kiln_stdin(
        &[
            "predict",
            "--model",
            p(&model),
            "--input",
            "-",
            "--echo-text",
        ],
        body.as_bytes(),
    )));
    assert_eq!(got, predict(&["--input", p(&txt), "--echo-text"]));
    let csv_body = std::fs::read(&csv).unwrap();
    let got = rows(&ok(&kiln_stdin(
        &[
            "predict",
            "--model",
            p(&model),
            "--input",
            "-",
            "--format",
            "csv",
            "--text-column",
            "review",
            "--id-column",
            "id",
        ],
        &csv_body,
    )));
    assert_eq!(
        got,
        predict(&[
            "--input",
            p(&csv),
            "--text-column",
            "review",
            "--id-column",
            "id"
        ])
    );
}

#[test]
fn predict_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = tiny();
    let write = |name: &str, body: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_string()
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["--input".into(), write("cols.csv", b"id,review\n1,fine\n")],
            vec!["cols.csv", "no column `text`", "review"],
        ),
        (
            vec![
                "--input".into(),
                write("ids.csv", b"text\nfine\n"),
                "--id-column".into(),
                "id".into(),
            ],
            vec!["ids.csv", "`id`"],
        ),
        (
            vec![
                "--input".into(),
                write("ragged.csv", b"text,id\nfine,1\nbad,2,3\n"),
            ],
            vec!["ragged.csv:3", "3 fields"],
        ),
        (
            vec![
                "--input".into(),
                write("empty-cell.csv", b"text,id\nfine,1\n  ,2\n"),
            ],
            vec!["empty-cell.csv:3", "`text` is empty"],
        ),
        (
            vec![
                "--input".into(),
                write("quote.csv", b"text\n\"unclosed\nmore\n"),
            ],
            vec!["quote.csv:2", "never closed"],
        ),
        (
            vec![
                "--input".into(),
                write("bad.jsonl", b"{\"text\": \"ok\"}\n{\"text\": \n"),
            ],
            vec!["bad.jsonl:2", "invalid JSON"],
        ),
        (
            vec![
                "--input".into(),
                write("key.jsonl", b"{\"text\": \"ok\"}\n{\"review\": \"x\"}\n"),
            ],
            vec!["key.jsonl:2", "no key `text`"],
        ),
        (
            vec![
                "--input".into(),
                write("arr.json", b"[{\"text\": \"ok\"}, 3]"),
            ],
            vec!["arr.json:2", "element 2"],
        ),
        (
            vec!["--input".into(), write("utf8.txt", b"fine\n\xff\xfe bad\n")],
            vec!["utf8.txt:2", "invalid UTF-8"],
        ),
        (
            vec!["--input".into(), write("blank.txt", b"\n  \n")],
            vec!["blank.txt", "no text"],
        ),
        (
            vec!["--input".into(), write("header.csv", b"text,id\n")],
            vec!["header.csv", "no data rows"],
        ),
        (
            vec![
                "--input".into(),
                write("plain.txt", b"fine\n"),
                "--id-column".into(),
                "id".into(),
            ],
            vec!["--id-column", "plain.txt", "lines"],
        ),
        (
            vec![
                "--text".into(),
                "fine".into(),
                "--text-pair-column".into(),
                "b".into(),
            ],
            vec!["--text-pair-column"],
        ),
        (
            vec!["--text".into(), "fine".into(), "--top-k".into(), "0".into()],
            vec!["--top-k"],
        ),
        (
            vec![
                "--input".into(),
                dir.join("missing.csv").to_str().unwrap().to_string(),
            ],
            vec!["missing.csv"],
        ),
        (vec![], vec!["--input", "--text"]),
    ];
    for (args, needles) in cases {
        let mut all = vec!["predict".to_string(), "--model".into(), p(&model).into()];
        all.extend(args.iter().cloned());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let err = one_line_error(&kiln(&all));
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: `{needle}` in {err}");
        }
    }
    let err = one_line_error(&kiln_stdin(
        &[
            "predict",
            "--model",
            p(&model),
            "--input",
            "-",
            "--format",
            "jsonl",
        ],
        b"{\"text\": \"ok\"}\nnot json\n",
    ));
    assert!(err.contains("<stdin>:2"), "{err}");
}
