//! Student initialisation for knowledge distillation: a K-layer student copied from an
//! L-layer teacher, as DistilBERT initialises its student ("taking one layer out of two").
//!
//! The student keeps the teacher's width (hidden size, heads, intermediate size, vocabulary), so
//! every tensor it has is a tensor the teacher has: embeddings, K of the L encoder layers, the
//! pooler and the classification head. [`StudentInit`] says which layers; [`student_from_teacher`]
//! builds the student.

use burn::module::{Flag, Module, ModuleMapper, Param, ParamId};
use burn::prelude::*;

use crate::bert::{BertClassifier, BertEncoder, BertModel};
use crate::config::BertConfig;

/// Which teacher layers a student keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentInit {
    pub teacher_layers: usize,
    pub student_layers: usize,
    /// The teacher layer index copied into each student layer: `layer_map[i]` for student layer
    /// `i`. Strictly increasing, so the student applies the layers in the teacher's order.
    pub layer_map: Vec<usize>,
}

impl StudentInit {
    /// The layer map for `student_layers` (K) layers taken from `teacher_layers` (L).
    ///
    /// Student layer `i` takes teacher layer `round(i·L/K)` (halves round up), for `i` in `0..K`:
    /// - when K divides L this is every (L/K)-th layer starting from the first: 6→3 takes
    ///   `[0, 2, 4]`, 12→6 takes `[0, 2, 4, 6, 8, 10]`, 6→6 is the identity and 6→1 takes `[0]`;
    /// - otherwise the layers are spread as evenly as whole indices allow: 5→2 takes `[0, 3]`
    ///   (2.5 rounds up), 7→3 takes `[0, 2, 5]`.
    ///
    /// The first layer is always kept (it reads the embeddings the student also keeps). Because
    /// `L/K ≥ 1`, the indices are strictly increasing and the last is at most `L − 1`.
    ///
    /// Note: this is the rule of DistilBERT's paper ("one layer out of two"); the script that
    /// built the released `distilbert-base-uncased` (transformers' `extract_distilbert.py`)
    /// hard-codes `[0, 2, 4, 7, 9, 11]` for 12→6, keeping the last teacher layer instead of
    /// layer 6. Callers who want that exact map can build a `StudentInit` with it by hand.
    ///
    /// Errors (naming the field, `student_layers`) when K is 0 or more than L.
    pub fn new(teacher_layers: usize, student_layers: usize) -> Result<Self, String> {
        if teacher_layers == 0 {
            return Err("the teacher has no encoder layers to copy into a student".into());
        }
        if student_layers == 0 || student_layers > teacher_layers {
            return Err(format!(
                "student_layers must be between 1 and the teacher's {teacher_layers} layers, \
                 got {student_layers}"
            ));
        }
        let (l, k) = (teacher_layers, student_layers);
        // round(i·L/K) with halves up, in integers: floor((2·i·L + K) / (2·K)).
        let layer_map = (0..k).map(|i| (2 * i * l + k) / (2 * k)).collect();
        Ok(Self {
            teacher_layers,
            student_layers,
            layer_map,
        })
    }
}

/// A K-layer student copied from `teacher`: the teacher's embeddings, the encoder layers named by
/// `init.layer_map` (in that order), the pooler (or its absence), and the classification head
/// with its dropout and pooling, all with values bit-equal to the teacher's.
///
/// Returns the student and its config: `teacher_config` with `num_hidden_layers = K` (everything
/// else, labels and unknown fields included, unchanged).
///
/// **Parameter ids are fresh.** Cloning a burn module keeps each `Param`'s `ParamId`; a student
/// sharing ids with its teacher would let an optimizer state, a `ParamGroup` chosen by id, or
/// gradients keyed by id (`GradientsParams`) meant for one model reach the other when both live
/// in one program, as they do during distillation. Every student parameter, the dropouts' training
/// flags included, therefore gets a new id. On an autodiff device the student's tensors are also
/// detached from the teacher's graph nodes (and made leaves again if they required gradients, as
/// burn's `Module::fork` does), so a backward pass through the student cannot put gradients on the
/// teacher. Tensor storage is still shared until either model writes to it (burn tensors are
/// copy-on-write), so the copy costs no memory up front.
///
/// # Panics
/// When `init` does not fit the teacher: `init.teacher_layers` differs from the teacher's layer
/// count, or a `layer_map` entry is out of range. Build `init` with [`StudentInit::new`] from the
/// teacher's own layer count.
pub fn student_from_teacher(
    teacher: &BertClassifier,
    teacher_config: &BertConfig,
    init: &StudentInit,
) -> (BertClassifier, BertConfig) {
    let teacher_layers = &teacher.bert.encoder.layer;
    assert_eq!(
        init.teacher_layers,
        teacher_layers.len(),
        "StudentInit was built for a {}-layer teacher, this teacher has {} layers",
        init.teacher_layers,
        teacher_layers.len()
    );
    assert_eq!(
        init.layer_map.len(),
        init.student_layers,
        "layer_map has one entry per student layer"
    );
    let layers = init
        .layer_map
        .iter()
        .map(|&t| {
            teacher_layers
                .get(t)
                .unwrap_or_else(|| {
                    panic!(
                        "layer_map names teacher layer {t}, the teacher has {}",
                        teacher_layers.len()
                    )
                })
                .clone()
        })
        .collect();
    let student = BertClassifier {
        bert: BertModel {
            embeddings: teacher.bert.embeddings.clone(),
            embeddings_project: teacher.bert.embeddings_project.clone(),
            encoder: BertEncoder { layer: layers },
            pooler: teacher.bert.pooler.clone(),
        },
        dropout: teacher.dropout.clone(),
        classifier: teacher.classifier.clone(),
        pooling: teacher.pooling,
    }
    .map(&mut FreshIds);

    let mut config = teacher_config.clone();
    config.num_hidden_layers = init.student_layers;
    (student, config)
}

/// Gives every parameter a new `ParamId`, keeping its value, its load/save mappers and its
/// configured training state (`consume` + `from_mapped_value` carry both).
struct FreshIds;

impl ModuleMapper for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, tensor, mapper) = param.consume();
        // A new autodiff leaf, as `Module::fork` makes one (no-op on a plain device).
        let requires_grad = tensor.is_require_grad();
        let mut tensor = tensor.detach();
        if requires_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(ParamId::new(), tensor, mapper)
    }

    fn map_int<const D: usize>(&mut self, param: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        let (_, tensor, mapper) = param.consume();
        Param::from_mapped_value(ParamId::new(), tensor, mapper)
    }

    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        let (_, tensor, mapper) = param.consume();
        Param::from_mapped_value(ParamId::new(), tensor, mapper)
    }

    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        let (_, value, mapper) = flag.consume();
        Param::from_mapped_value(ParamId::new(), value, mapper)
    }
}
