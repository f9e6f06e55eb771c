//! Padding tokenized examples into model-ready tensors.

use burn::prelude::*;

use crate::tokenize::Encoding;

/// A padded batch on a device: what `BertModel::forward` takes.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]`.
    pub token_type_ids: Tensor<2, Int>,
    /// `[batch, seq]`: 1.0 for real tokens, 0.0 for padding.
    pub attention_mask: Tensor<2>,
    /// Real tokens per example.
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// Pads `encodings` to the longest one, rounded up to a multiple of `pad_to_multiple`
    /// (1 for none), with `pad_id`.
    pub fn pad(
        encodings: &[&Encoding],
        pad_id: u32,
        pad_to_multiple: usize,
        device: &Device,
    ) -> Self {
        let longest = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let multiple = pad_to_multiple.max(1);
        let seq = longest.div_ceil(multiple) * multiple;
        let batch = encodings.len();
        let mut ids = Vec::with_capacity(batch * seq);
        let mut types = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        for e in encodings {
            let n = e.len();
            ids.extend(e.input_ids.iter().map(|&i| i as i64));
            ids.extend(std::iter::repeat_n(pad_id as i64, seq - n));
            types.extend(e.token_type_ids.iter().map(|&i| i as i64));
            types.extend(std::iter::repeat_n(0i64, seq - n));
            mask.extend(std::iter::repeat_n(1.0f32, n));
            mask.extend(std::iter::repeat_n(0.0f32, seq - n));
        }
        Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            token_type_ids: Tensor::from_data(TensorData::new(types, [batch, seq]), device),
            attention_mask: Tensor::from_data(TensorData::new(mask, [batch, seq]), device),
            lengths: encodings.iter().map(|e| e.len()).collect(),
        }
    }
}
