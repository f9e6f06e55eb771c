//! kiln-loss: training objectives over logits — cross-entropy (label smoothing, class weights),
//! knowledge distillation (1−α)·CE + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)), and MSE for
//! regression heads. Takes tensors, returns scalar loss tensors; knows nothing of models or data.
//!
//! Not written yet: the losses arrive with the training issue (#4). This crate exists now so that
//! the workspace's dependency graph is fixed from the start.
