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
    /// Several examples per row (see [`TokenBatch::pack`]); `None` for one example per row.
    pub packing: Option<Packing>,
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
            packing: None,
        }
    }

    /// Packs `encodings` into as few rows as first-fit decreasing finds, each row as long as the
    /// longest example (rounded up to `pad_to_multiple`): a padding-free batch of the same
    /// examples, in the same order as far as the model's outputs go (see [`Packing`]).
    pub fn pack(
        encodings: &[&Encoding],
        pad_id: u32,
        pad_to_multiple: usize,
        device: &Device,
    ) -> Self {
        let lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
        let longest = lengths.iter().copied().max().unwrap_or(0).max(1);
        let seq = longest.div_ceil(pad_to_multiple.max(1)) * pad_to_multiple.max(1);
        let rows = pack_rows(&lengths, seq);
        let (n_rows, n_examples) = (rows.len().max(1), encodings.len());
        let flat = n_rows * seq;
        let mut ids = vec![pad_id as i64; flat];
        let mut types = vec![0i64; flat];
        let mut positions = vec![0i64; flat];
        let mut mask = vec![0.0f32; flat];
        // Which example each token belongs to (`usize::MAX`: padding).
        let mut owner = vec![usize::MAX; flat];
        let mut starts = vec![0usize; n_examples];
        for (r, members) in rows.iter().enumerate() {
            let mut offset = r * seq;
            for &e in members {
                let encoding = encodings[e];
                starts[e] = offset;
                for (p, (&id, &ty)) in encoding
                    .input_ids
                    .iter()
                    .zip(&encoding.token_type_ids)
                    .enumerate()
                {
                    let at = offset + p;
                    ids[at] = id as i64;
                    types[at] = ty as i64;
                    positions[at] = p as i64;
                    mask[at] = 1.0;
                    owner[at] = e;
                }
                offset += encoding.len();
            }
        }
        let mut attention = vec![0.0f32; n_rows * seq * seq];
        for r in 0..n_rows {
            let row = &owner[r * seq..(r + 1) * seq];
            for (q, query) in row.iter().enumerate() {
                let out = &mut attention[(r * seq + q) * seq..(r * seq + q + 1) * seq];
                for (a, key) in out.iter_mut().zip(row) {
                    *a = f32::from(u8::from(key == query));
                }
            }
        }
        let int =
            |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [n_rows, seq]), device);
        Self {
            input_ids: int(ids),
            token_type_ids: int(types),
            attention_mask: Tensor::from_data(TensorData::new(mask, [n_rows, seq]), device),
            lengths,
            packing: Some(Packing {
                position_ids: int(positions),
                attention: Tensor::from_data(
                    TensorData::new(attention, [n_rows, seq, seq]),
                    device,
                ),
                starts,
            }),
        }
    }

    /// The same batch on `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            input_ids: self.input_ids.to_device(device),
            token_type_ids: self.token_type_ids.to_device(device),
            attention_mask: self.attention_mask.to_device(device),
            lengths: self.lengths,
            packing: self.packing.map(|p| Packing {
                position_ids: p.position_ids.to_device(device),
                attention: p.attention.to_device(device),
                starts: p.starts,
            }),
        }
    }
}

/// Where the examples of a packed batch sit: several examples share a row, each attending only
/// to itself (a block-diagonal attention mask) with positions counted from its own start, so
/// the model computes for each example exactly what it computes for it alone — without the
/// padding of a plain batch and without grouping examples by length.
#[derive(Debug, Clone)]
pub struct Packing {
    /// `[rows, seq]`: each token's position inside its own example.
    pub position_ids: Tensor<2, Int>,
    /// `[rows, seq, seq]`: 1.0 where the query token (dim 1) may attend to the key token
    /// (dim 2), i.e. both belong to the same example; 0.0 elsewhere. A padding position
    /// attends to the row's padding only.
    pub attention: Tensor<3>,
    /// The flat index (`row × seq + offset`) of each example's first token, in the batch's
    /// example order.
    pub starts: Vec<usize>,
}

impl Packing {
    /// `[examples]`: each example's first token as a flat index (for [CLS] pooling).
    pub fn first_tokens(&self, device: &Device) -> Tensor<1, Int> {
        let starts: Vec<i64> = self.starts.iter().map(|&s| s as i64).collect();
        let n = starts.len();
        Tensor::from_data(TensorData::new(starts, [n]), device)
    }

    /// `[examples, rows × seq]`: each example's mean-pooling weights over the flattened tokens
    /// (1 / its length on its own tokens, 0 elsewhere); `lengths` are the batch's.
    pub fn mean_weights(&self, lengths: &[usize], device: &Device) -> Tensor<2> {
        let [rows, seq] = self.position_ids.dims();
        let flat = rows * seq;
        let mut weights = vec![0.0f32; self.starts.len() * flat];
        for (e, (&start, &len)) in self.starts.iter().zip(lengths).enumerate() {
            let weight = 1.0 / len.max(1) as f32;
            weights[e * flat + start..e * flat + start + len].fill(weight);
        }
        Tensor::from_data(TensorData::new(weights, [self.starts.len(), flat]), device)
    }
}

/// Rows of a packed batch: which examples each row holds, in order, found by first-fit
/// decreasing into rows of `capacity` tokens (deterministic: ties keep the batch order).
pub fn pack_rows(lengths: &[usize], capacity: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        let len = lengths[i];
        match rows.iter_mut().find(|(used, _)| used + len <= capacity) {
            Some((used, members)) => {
                *used += len;
                members.push(i);
            }
            None => rows.push((len, vec![i])),
        }
    }
    rows.into_iter().map(|(_, members)| members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_every_example_once_within_capacity() {
        let lengths: Vec<usize> = (0..200).map(|i| 1 + (i * 37 + 11) % 61).collect();
        let capacity = *lengths.iter().max().unwrap();
        let rows = pack_rows(&lengths, capacity);
        let mut seen: Vec<usize> = rows.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        assert!(rows
            .iter()
            .all(|r| r.iter().map(|&i| lengths[i]).sum::<usize>() <= capacity));
        // First-fit decreasing uses at most 11/9 of the optimum (+1); the optimum needs at
        // least total / capacity rows.
        let total: usize = lengths.iter().sum();
        assert!(rows.len() <= (11 * total.div_ceil(capacity)).div_ceil(9) + 1);
    }
}
