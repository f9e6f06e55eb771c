//! Each strategy moves exactly the parameters it promises; everything else stays bit-equal.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::*;
use kiln_model::Pooling;
use kiln_train::optim::{OptimizerKind, OptimizerSpec};
use kiln_train::{StrategyConfig, StrategyKind, TrainConfig, Trainer};

fn config(kind: StrategyKind, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        lr: 1e-2,
        warmup_ratio: 0.0,
        strategy: StrategyConfig {
            kind,
            top_k: 1,
            lora_rank: 2,
            lora_alpha: 4.0,
            ..StrategyConfig::default()
        },
        optimizer: OptimizerSpec {
            kind: OptimizerKind::AdamW,
            ..OptimizerSpec::default()
        },
        ..TrainConfig::default()
    }
}

/// Paths whose values changed, and paths that stayed bit-equal.
fn moved(kind: StrategyKind, epochs: usize, pooling: Pooling) -> (Vec<String>, Vec<String>) {
    let device = Device::flex();
    let model = tiny_model(0.1, pooling, &device);
    let before = values(&model);
    // No validation data: the returned model is the last one, not the best epoch's.
    let outcome = Trainer::new(config(kind, epochs).clone())
        .device(&device)
        .fit(model, &data(32, 0))
        .unwrap();
    let after: BTreeMap<String, Vec<f32>> = values(&outcome.model);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "same parameters after {kind:?}"
    );
    let (mut changed, mut same) = (Vec::new(), Vec::new());
    for (path, v) in &before {
        if after[path] == *v {
            same.push(path.clone());
        } else {
            changed.push(path.clone());
        }
    }
    (changed, same)
}

fn all_match(paths: &[String], pred: impl Fn(&str) -> bool) -> bool {
    paths.iter().all(|p| pred(p))
}

#[test]
fn full_moves_everything() {
    let _serial = serial();
    let (changed, same) = moved(StrategyKind::Full, 1, Pooling::Cls);
    assert!(same.is_empty(), "full left {same:?} untouched");
    assert!(!changed.is_empty());
}

#[test]
fn head_and_frozen_move_only_the_classifier() {
    let _serial = serial();
    for kind in [StrategyKind::Head, StrategyKind::Frozen] {
        let (changed, same) = moved(kind, 1, Pooling::Cls);
        assert_eq!(
            changed,
            vec![
                "classifier.bias".to_string(),
                "classifier.weight".to_string()
            ],
            "{kind:?}"
        );
        assert!(
            same.iter().any(|p| p.contains("pooler")),
            "{kind:?}: the pooler is frozen"
        );
    }
}

#[test]
fn top_k_moves_the_last_layers_pooler_and_head() {
    let _serial = serial();
    let (changed, same) = moved(StrategyKind::TopK, 1, Pooling::Cls);
    let top =
        |p: &str| p.contains("layer.2.") || p.contains("pooler") || p.starts_with("classifier");
    assert!(all_match(&changed, top), "{changed:?}");
    assert!(all_match(&same, |p| !top(p)), "{same:?}");
}

#[test]
fn gradual_unfreezes_one_layer_per_epoch_from_the_top() {
    let _serial = serial();
    let head = |p: &str| p.contains("pooler") || p.starts_with("classifier");
    let (changed, same) = moved(StrategyKind::Gradual, 1, Pooling::Cls);
    assert!(
        all_match(&changed, head) && all_match(&same, |p| !head(p)),
        "epoch 1: {changed:?}"
    );
    let (changed, same) = moved(StrategyKind::Gradual, 2, Pooling::Cls);
    let upto = |p: &str| head(p) || p.contains("layer.2.");
    assert!(
        all_match(&changed, upto) && all_match(&same, |p| !upto(p)),
        "epoch 2: {changed:?}"
    );
    assert!(changed.iter().any(|p| p.contains("layer.2.")));
}

#[test]
fn llrd_moves_everything_with_smaller_steps_below() {
    let _serial = serial();
    let (changed, same) = moved(StrategyKind::Llrd, 1, Pooling::Cls);
    assert!(same.is_empty(), "{same:?}");
    assert!(!changed.is_empty());
}

#[test]
fn llrd_plan_gives_geometric_rates() {
    let _serial = serial();
    let device = Device::flex().autodiff();
    let model = tiny_model(0.0, Pooling::Cls, &device);
    let cfg = StrategyConfig {
        kind: StrategyKind::Llrd,
        llrd_decay: 0.5,
        ..StrategyConfig::default()
    };
    let (strategy, model) = kiln_train::Strategy::prepare(cfg, model);
    let plan = strategy.plan(&model, 0, 1.0, 0.01);
    let mult = |needle: &str| {
        plan.params
            .iter()
            .find(|p| p.info.path.contains(needle))
            .unwrap()
            .lr_mult
    };
    // depth = 3 layers + 1: head 1, layer 2 → 0.5, layer 0 → 0.125, embeddings → 0.0625.
    assert_eq!(mult("classifier"), 1.0);
    assert_eq!(mult("layer.2."), 0.5);
    assert_eq!(mult("layer.0."), 0.125);
    assert_eq!(mult("embeddings"), 0.0625);
}

#[test]
fn lora_moves_adapted_matrices_pooler_and_head_only() {
    let _serial = serial();
    // After training, LoRA adapters are merged into the attention and feed-forward weights.
    let (changed, same) = moved(StrategyKind::Lora, 1, Pooling::Cls);
    let adapted = |p: &str| {
        (p.contains("layer.") && p.ends_with(".weight") && !p.contains("norm"))
            || p.contains("pooler")
            || p.starts_with("classifier")
    };
    assert!(all_match(&changed, adapted), "{changed:?}");
    assert!(all_match(&same, |p| !adapted(p)), "{same:?}");
    assert!(changed
        .iter()
        .any(|p| p.contains("attention.self_attention.query.weight")));
    assert!(same
        .iter()
        .any(|p| p.contains("attention.self_attention.query.bias")));
    assert!(same.iter().any(|p| p.contains("embeddings")));
}

#[test]
fn every_strategy_trains_a_token_classifier_and_moves_what_it_promises() {
    // The strategies find the encoder and the head by parameter path: a token head's paths
    // (`bert.encoder.layer.N.…`, `classifier.*`) are a sequence head's, without the pooler.
    let _serial = serial();
    let device = Device::flex();
    let layer = |p: &str, n: usize| p.starts_with(&format!("bert.encoder.layer.{n}."));
    for kind in [
        StrategyKind::Full,
        StrategyKind::Head,
        StrategyKind::Frozen,
        StrategyKind::TopK,
        StrategyKind::Gradual,
        StrategyKind::Llrd,
        StrategyKind::Lora,
    ] {
        let model = tiny_tagger(0.1, &device);
        let before = values(&model);
        let outcome = Trainer::new(config(kind, 1))
            .device(&device)
            .fit(model, &tagged_data(32, 8))
            .unwrap();
        let after = values(&outcome.model);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{kind:?}: same parameters (LoRA merged back)"
        );
        let changed: Vec<&String> = before.keys().filter(|p| after[*p] != before[*p]).collect();
        let head_moved = changed.iter().any(|p| p.starts_with("classifier."));
        let encoder_moved = changed.iter().any(|p| p.starts_with("bert."));
        let accuracy = outcome.epochs[0]
            .valid
            .as_ref()
            .unwrap()
            .token()
            .unwrap()
            .accuracy();
        assert!(accuracy.is_finite(), "{kind:?}");
        match kind {
            // Gradual unfreezes its first layer after the first epoch.
            StrategyKind::Head | StrategyKind::Frozen | StrategyKind::Gradual => {
                assert!(head_moved && !encoder_moved, "{kind:?} moved {changed:?}")
            }
            // The top layer (of 3) and the head; the lower layers stay.
            StrategyKind::TopK => assert!(
                head_moved
                    && changed.iter().any(|p| layer(p, 2))
                    && !changed.iter().any(|p| layer(p, 0)),
                "{kind:?} moved {changed:?}"
            ),
            // LoRA adapts the encoder's linear layers (merged back); the head trains as well.
            _ => assert!(head_moved && encoder_moved, "{kind:?} moved {changed:?}"),
        }
    }
}

#[test]
fn every_strategy_trains_each_familys_classifier_through_the_auto_type() {
    // A RoBERTa or ELECTRA model is a `SequenceClassifier` variant: its parameter paths carry
    // the variant (`Roberta.roberta.encoder.layer.N.…`, `Electra.electra.embeddings_project.…`,
    // `….classifier.{dense,out_proj}.…`), and the strategies find encoder and head through
    // them as for BERT (ELECTRA's projection belongs to the embeddings, not the head).
    let _serial = serial();
    let device = Device::flex();
    // The name is the encoder's field: ModernBERT's is `model`.
    let build: [(&str, ModelOf, u32); 5] = [
        ("roberta", tiny_roberta, 1),
        ("electra", tiny_electra, 0),
        ("distilbert", tiny_distilbert, 0),
        ("model", tiny_modernbert, 0),
        ("deberta", tiny_deberta, 0),
    ];
    for (family, model_of, pad_id) in build {
        let mut data = data(32, 8);
        data.pad_id = pad_id;
        let layer = |p: &str, n: usize| {
            p.contains(&format!("{family}.encoder.layer.{n}."))
                || p.contains(&format!("{family}.transformer.layer.{n}."))
                || p.contains(&format!("{family}.layers.{n}."))
        };
        for kind in [
            StrategyKind::Full,
            StrategyKind::Head,
            StrategyKind::Frozen,
            StrategyKind::TopK,
            StrategyKind::Gradual,
            StrategyKind::Llrd,
            StrategyKind::Lora,
        ] {
            let model = model_of(0.1, &device);
            let before = values(&model);
            let outcome = Trainer::new(config(kind, 1))
                .device(&device)
                .fit(model, &data)
                .unwrap();
            let after = values(&outcome.model);
            assert_eq!(
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>(),
                "{family} {kind:?}: same parameters (LoRA merged back)"
            );
            let changed: Vec<&String> = before.keys().filter(|p| after[*p] != before[*p]).collect();
            // The head: everything outside the encoder (`classifier.{dense,out_proj}`,
            // DistilBERT's `pre_classifier` + `classifier`), every tensor of it moved.
            let encoder_prefix = format!(".{family}.");
            let head_moved = before
                .keys()
                .filter(|p| !p.contains(&encoder_prefix))
                .all(|p| changed.contains(&p));
            let encoder_moved = changed.iter().any(|p| p.contains(&encoder_prefix));
            // ModernBERT's `final_norm` is the encoder's top, which gradual trains from the
            // first epoch as it does BERT's pooler.
            let below_top_moved = changed
                .iter()
                .any(|p| p.contains(&encoder_prefix) && !p.contains("final_norm."));
            let accuracy = outcome.epochs[0]
                .valid
                .as_ref()
                .unwrap()
                .classification()
                .unwrap()
                .accuracy;
            assert!(accuracy.is_finite(), "{family} {kind:?}");
            match kind {
                StrategyKind::Head | StrategyKind::Frozen => assert!(
                    head_moved && !encoder_moved,
                    "{family} {kind:?} moved {changed:?}"
                ),
                StrategyKind::Gradual => assert!(
                    head_moved && !below_top_moved,
                    "{family} {kind:?} moved {changed:?}"
                ),
                StrategyKind::TopK => assert!(
                    head_moved
                        && changed.iter().any(|p| layer(p, 2))
                        && !changed.iter().any(|p| layer(p, 0))
                        && !changed.iter().any(|p| p.contains("embeddings")),
                    "{family} {kind:?} moved {changed:?}"
                ),
                StrategyKind::Full | StrategyKind::Llrd => assert!(
                    head_moved && changed.iter().any(|p| p.contains("embeddings.")),
                    "{family} {kind:?} moved {changed:?}"
                ),
                _ => assert!(
                    head_moved && encoder_moved,
                    "{family} {kind:?} moved {changed:?}"
                ),
            }
        }
    }
}
