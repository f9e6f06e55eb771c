//! Gradient clipping by the global norm over all trainable parameters, as
//! `torch.nn.utils.clip_grad_norm_` does (burn's built-in clipping scales each tensor alone).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The L2 norm of all gradients together (0 when there are none).
pub fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm { grads, total: None };
    model.visit(&mut visitor);
    visitor
        .total
        .map(|t| t.into_scalar::<f64>().sqrt())
        .unwrap_or(0.0)
}

/// Scales every gradient by `max_norm / (norm + 1e-6)` when the global norm exceeds `max_norm`
/// (PyTorch's formula). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_norm(model, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        let mut visitor = Scale { grads, factor };
        model.visit(&mut visitor);
    }
    norm
}

/// Multiplies every gradient by `factor` (averaging accumulated micro-batches).
pub fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) {
    let mut visitor = Scale { grads, factor };
    model.visit(&mut visitor);
}
