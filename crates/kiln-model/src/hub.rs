//! A checkpoint from the Hugging Face Hub (feature `hf-hub`): config, tokenizer and weights
//! through the `hf-hub` crate and its usual cache (`~/.cache/huggingface`).

use std::path::{Path, PathBuf};

/// A Hub download that failed; the message names the repository and the file.
#[derive(Debug, thiserror::Error)]
#[error("hf:{repo}: {message}")]
pub struct HubError {
    pub repo: String,
    pub message: String,
}

/// Downloads (or finds in the cache) `config.json`, `tokenizer.json` and the weights
/// (`model.safetensors`, else `pytorch_model.bin`) of `repo` (`ORG/NAME`) and returns the
/// snapshot directory that holds them side by side, ready for [`crate::Checkpoint::open`].
pub fn snapshot(repo: &str) -> Result<PathBuf, HubError> {
    let error = |message: String| HubError {
        repo: repo.to_string(),
        message,
    };
    let api = hf_hub::api::sync::Api::new()
        .map_err(|e| error(format!("starting the Hugging Face Hub client: {e}")))?;
    let model = api.model(repo.to_string());
    let get = |file: &str| {
        model
            .get(file)
            .map_err(|e| format!("downloading {file}: {e}"))
    };
    let config = get("config.json").map_err(error)?;
    get("tokenizer.json").map_err(error)?;
    if let Err(safetensors) = get("model.safetensors") {
        get("pytorch_model.bin").map_err(|bin| {
            error(format!(
                "neither model.safetensors ({safetensors}) nor pytorch_model.bin ({bin})"
            ))
        })?;
    }
    config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| error(format!("unexpected cache path {}", config.display())))
}
