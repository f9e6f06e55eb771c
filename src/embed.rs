//! `kiln embed`: sentence embeddings from an encoder, the way outsiders check parity with
//! `transformers` — mean of the last hidden state over real tokens, or the [CLS] vector.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;

use kiln_data::{TextTokenizer, TokenBatch};
use kiln_model::{mean_pool, BertModel, Checkpoint, Pooling};

/// An encoder with its tokenizer, ready to embed text.
pub struct Embedder {
    pub model: BertModel,
    pub tokenizer: TextTokenizer,
    pub device: Device,
}

impl Embedder {
    /// Loads `dir` (config.json, weights, tokenizer.json). Inputs are truncated only at the
    /// model's own maximum length (`max_position_embeddings`).
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        let (model, _report) = checkpoint.load_encoder(&device)?;
        let tokenizer = TextTokenizer::from_file(
            checkpoint.tokenizer_path(),
            checkpoint.config.max_position_embeddings,
        )?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// One vector per text, in input order. Texts are batched by similar length so that padding
    /// stays small; padding never changes a result beyond float rounding (the mask removes it).
    pub fn embed(&self, texts: &[&str], pooling: Pooling, batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(t, None))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<_> = chunk.iter().map(|&i| &encodings[i]).collect();
            let batch = TokenBatch::pad(&batch, self.tokenizer.pad_id(), 1, &self.device);
            let hidden = self.model.encode(
                batch.input_ids,
                batch.token_type_ids,
                batch.attention_mask.clone(),
            );
            let [b, _, h] = hidden.dims();
            let pooled = match pooling {
                Pooling::Mean => mean_pool(hidden, batch.attention_mask),
                Pooling::Cls => hidden.slice(s![.., 0..1, ..]).reshape([b, h]),
            };
            let values = pooled
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading embeddings back: {e:?}"))?;
            for (row, &i) in chunk.iter().enumerate() {
                out[i] = values[row * h..(row + 1) * h].to_vec();
            }
        }
        Ok(out)
    }
}

/// The lines of `input` to embed: every line that is not empty, kept as written (leading
/// spaces included), without its line ending.
pub fn read_lines(input: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("reading {}", input.display()))?;
    Ok(text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
