//! L2-SP (Li, Grandvalet & Davoine 2018): the encoder pulled toward its pretrained weights
//! instead of toward zero, by the penalty λ/2·‖w − w₀‖² over every encoder parameter — a guard
//! against forgetting what pretraining taught. The head (everything outside the encoder, see
//! [`crate::params::is_head`]) keeps ordinary weight decay; the encoder gets this instead.
//!
//! The penalty enters as its gradient, λ·(w − w₀), added to each encoder parameter's gradient
//! before clipping and the optimizer step (the loss reported stays the data loss).

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::params::is_head;

/// The pretrained encoder weights w₀ and the strength λ.
pub struct Anchor {
    lambda: f64,
    /// By module path (paths survive a checkpoint round trip, parameter ids do not), flattened
    /// and without autodiff: constants of the penalty.
    start: HashMap<String, Tensor<1>>,
}

#[derive(Default)]
struct Snapshot {
    path: Vec<String>,
    start: HashMap<String, Tensor<1>>,
}

impl ModuleVisitor for Snapshot {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if !is_head(&path) {
            // A copy of its own: the optimizer updates parameters in place, and a tensor that
            // shared their storage would move with them.
            let value = param.val().inner();
            let n = value.shape().num_elements();
            let device = value.device();
            let copy = Tensor::<1>::from_data(value.reshape([n]).into_data(), &device);
            self.start.insert(path, copy);
        }
    }
}

struct Pull<'a> {
    path: Vec<String>,
    anchor: &'a Anchor,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for Pull<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(start) = self.anchor.start.get(&self.path.join(".")) else {
            return;
        };
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let value = param.val().inner();
        let start = start.clone().reshape(value.shape()).cast(value.dtype());
        let pull = (value - start)
            .mul_scalar(self.anchor.lambda)
            .cast(grad.dtype());
        self.grads.register(param.id, grad + pull);
    }
}

impl Anchor {
    /// Takes `model`'s encoder parameters as w₀ (call it on the pretrained model, before any
    /// step or resume).
    pub fn new<M: Module>(model: &M, lambda: f64) -> Self {
        let mut snapshot = Snapshot::default();
        model.visit(&mut snapshot);
        Self {
            lambda,
            start: snapshot.start,
        }
    }

    /// Encoder parameters anchored.
    pub fn len(&self) -> usize {
        self.start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// Adds λ·(w − w₀) to the gradient of every anchored parameter that has one.
    pub fn add_gradients<M: Module>(&self, model: &M, grads: &mut GradientsParams) {
        model.visit(&mut Pull {
            path: Vec::new(),
            anchor: self,
            grads,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_model::{BertClassifier, BertConfig, Pooling};

    fn model(device: &Device) -> BertClassifier {
        let config = BertConfig::from_json_str(
            r#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
                "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}"#,
        )
        .unwrap();
        device.seed(3);
        BertClassifier::new(&config, 2, Pooling::Cls, device)
    }

    fn grads_of(model: &BertClassifier, device: &Device) -> GradientsParams {
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 5, 7, 3], [1, 4]), device);
        let types = ids.zeros_like();
        let mask = Tensor::<2>::ones([1, 4], device);
        let loss = model.forward(ids, types, mask).sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    /// The penalty's gradient is λ·(w − w₀) on every encoder parameter and nothing on the head.
    #[test]
    fn encoder_gradients_gain_lambda_times_the_drift() {
        let device = Device::flex().autodiff();
        let pretrained = model(&device).train();
        let anchor = Anchor::new(&pretrained, 0.3);
        // Weights moved away from w₀ (as training would), the same way for every tensor.
        struct Shift;
        impl burn::module::ModuleMapper for Shift {
            fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
                p.map(|t| t.add_scalar(0.25).detach().require_grad())
            }
        }
        let moved = pretrained.clone().map(&mut Shift);
        let plain = grads_of(&moved, &device);
        let mut pulled = grads_of(&moved, &device);
        anchor.add_gradients(&moved, &mut pulled);

        struct Check<'a> {
            path: Vec<String>,
            plain: &'a GradientsParams,
            pulled: &'a GradientsParams,
            checked: (usize, usize),
        }
        impl ModuleVisitor for Check<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let path = self.path.join(".");
                let (Some(a), Some(b)) = (
                    self.plain.get::<D>(param.id),
                    self.pulled.get::<D>(param.id),
                ) else {
                    return;
                };
                let head = is_head(&path);
                let expect = if head { 0.0 } else { 0.3 * 0.25 };
                for (x, y) in host(a).iter().zip(host(b)) {
                    assert!(
                        ((y - x) - expect).abs() <= 1e-6,
                        "{path}: {y} - {x} should be {expect}"
                    );
                }
                if head {
                    self.checked.1 += 1;
                } else {
                    self.checked.0 += 1;
                }
            }
        }
        let mut check = Check {
            path: Vec::new(),
            plain: &plain,
            pulled: &pulled,
            checked: (0, 0),
        };
        moved.visit(&mut check);
        assert!(
            check.checked.0 > 20 && check.checked.1 == 2,
            "{:?}",
            check.checked
        );
        assert_eq!(anchor.len(), check.checked.0);
    }
}
