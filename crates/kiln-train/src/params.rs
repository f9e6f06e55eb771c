//! The model's parameters as the trainer sees them: id, module path, size, whether they train,
//! and which transformer layer they belong to (for layer-wise learning rates and unfreezing).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub id: ParamId,
    /// Module path, e.g. `bert.encoder.layer.3.attention.self_attention.query.weight`.
    pub path: String,
    pub numel: usize,
    /// Requires a gradient (always false on a device without autodiff).
    pub trainable: bool,
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    params: Vec<ParamInfo>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        self.params.push(ParamInfo {
            id: param.id,
            path: self.path.join("."),
            numel: tensor.shape().num_elements(),
            trainable: tensor.is_require_grad(),
        });
    }
}

/// Every float parameter of `module`, in visiting order.
pub fn collect_params<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut collector = Collector::default();
    module.visit(&mut collector);
    collector.params
}

// Strategies speak about a model through these path conventions, not its fields: an encoder
// (`embeddings.`, Hugging Face's `encoder.layer.N.`, `encoder.layers.N.`, DistilBERT's
// `transformer.layer.N.` or ModernBERT's `model.layers.N.`, `pooler.` / `final_norm.`) and,
// above it, the head — every parameter outside the encoder. A model of an app's own that names
// its encoder this way (or embeds kiln's `BertModel`) gets every strategy.

/// Whether a parameter belongs to the embeddings (ELECTRA's projection of them to the hidden
/// size included).
fn is_embeddings(path: &str) -> bool {
    path.contains("embeddings.")
        || path.contains("embeddings_project.")
        // DeBERTa's relative embeddings (`encoder.rel_embeddings`, matched above) and their
        // LayerNorm, shared by every layer.
        || path.contains("encoder.layer_norm.")
}

/// The encoder layer a parameter belongs to, if it belongs to one.
fn encoder_layer(path: &str) -> Option<usize> {
    let rest = path
        .split("encoder.layers.")
        .nth(1)
        .or_else(|| path.split("encoder.layer.").nth(1))
        // DistilBERT's layers, ModernBERT's.
        .or_else(|| path.split("transformer.layer.").nth(1))
        .or_else(|| path.split("model.layers.").nth(1))?;
    rest.split('.').next()?.parse().ok()
}

/// The number of encoder layers among `params` (one more than the highest layer index).
pub fn num_layers(params: &[ParamInfo]) -> usize {
    params
        .iter()
        .filter_map(|p| encoder_layer(&p.path))
        .max()
        .map_or(0, |top| top + 1)
}

/// Depth position of a parameter: 0 for the embeddings, `i + 1` for encoder layer `i`, and
/// `num_layers + 1` for everything above the encoder (pooler, head).
pub fn layer_of(path: &str, num_layers: usize) -> usize {
    if is_embeddings(path) {
        return 0;
    }
    match encoder_layer(path) {
        Some(i) => i + 1,
        None => num_layers + 1,
    }
}

/// Biases and LayerNorm parameters get no weight decay (HF Trainer's and BERT's convention).
pub fn is_no_decay(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or("");
    last == "bias" || last == "beta" || last == "gamma" || path.contains("norm.")
}

/// Whether a parameter belongs to the head: anything outside the encoder (embeddings, layers,
/// pooler) — `classifier.*` of a `BertClassifier`.
pub fn is_head(path: &str) -> bool {
    !(is_embeddings(path) || encoder_layer(path).is_some() || is_pooler(path))
}

/// Whether a parameter belongs to the encoder's pooler: a `pooler` inside the encoder's field
/// (`bert.pooler.…`). ModernBERT's `final_norm`, the encoder's top, counts as one: it trains
/// with the top layers, not as head. DeBERTa's `ContextPooler` sits beside the encoder
/// (`pooler.…` at the top, or after a model enum's variant) and is new at fine-tuning: head.
pub fn is_pooler(path: &str) -> bool {
    if path.contains("final_norm.") {
        return true;
    }
    let segments: Vec<&str> = path.split('.').collect();
    segments.iter().enumerate().any(|(i, s)| {
        *s == "pooler" && i > 0 && segments[i - 1].starts_with(|c: char| c.is_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_decay_groups() {
        assert_eq!(layer_of("bert.embeddings.word_embeddings.weight", 6), 0);
        assert_eq!(layer_of("electra.embeddings_project.weight", 6), 0);
        assert_eq!(
            layer_of(
                "DistilBert.distilbert.transformer.layer.4.ffn.lin1.weight",
                6
            ),
            5
        );
        assert!(is_head("DistilBert.pre_classifier.weight"));
        assert!(is_pooler("bert.pooler.dense.weight") && is_pooler("Bert.bert.pooler.dense.bias"));
        assert!(is_head("DebertaV2.pooler.dense.weight") && is_head("pooler.dense.weight"));
        assert_eq!(layer_of("DebertaV2.deberta.encoder.layer_norm.gamma", 3), 0);
        assert_eq!(
            layer_of("DebertaV2.deberta.encoder.rel_embeddings.weight", 3),
            0
        );
        assert_eq!(layer_of("ModernBert.model.layers.1.attn.Wqkv.weight", 3), 2);
        assert!(!is_head("ModernBert.model.final_norm.gamma"));
        assert!(is_head("ModernBert.head.dense.weight"));
        assert!(!is_head("Electra.electra.embeddings_project.weight"));
        assert!(is_head("Electra.classifier.dense.weight"));
        assert_eq!(
            layer_of(
                "bert.encoder.layer.0.attention.self_attention.query.weight",
                6
            ),
            1
        );
        assert_eq!(
            layer_of("bert.encoder.layer.5.output.layer_norm.gamma", 6),
            6
        );
        assert_eq!(layer_of("encoder.layers.2.ffn.weight", 6), 3);
        assert_eq!(layer_of("bert.pooler.dense.weight", 6), 7);
        assert_eq!(layer_of("classifier.weight", 6), 7);
        assert!(is_no_decay(
            "bert.encoder.layer.1.attention.self_attention.query.bias"
        ));
        assert!(is_no_decay("bert.embeddings.layer_norm.gamma"));
        assert!(is_no_decay(
            "bert.encoder.layer.1.attention.output.layer_norm.beta"
        ));
        assert!(!is_no_decay(
            "bert.encoder.layer.1.attention.output.dense.weight"
        ));
        assert!(is_head("classifier.bias") && !is_head("bert.pooler.dense.weight"));
        assert!(is_head("regressor.out.weight") && !is_head("encoder.layer.2.output.dense.bias"));
        assert_eq!(layer_of("encoder.layer.2.output.dense.bias", 6), 3);
    }
}
