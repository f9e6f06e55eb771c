//! Distillation students: which teacher layers they keep, that every copied tensor is bit-equal
//! to the teacher's, that their parameter ids are their own, and that they run, save and load.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use kiln_model::{
    save_pretrained, student_from_teacher, BertClassifier, BertConfig, Checkpoint, HeadInit,
    Pooling, StudentInit,
};

const LABELS: usize = 3;

/// burn seeds one global generator: tests that initialise models take this lock so that a
/// concurrent test cannot draw from the stream between `seed` and use.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn teacher_config() -> BertConfig {
    BertConfig::from_json_str(
        r#"{"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 6, "num_attention_heads": 2,
            "intermediate_size": 32, "max_position_embeddings": 32, "hidden_act": "gelu",
            "some_unknown_field": "kept"}"#,
    )
    .unwrap()
}

fn teacher(pooling: Pooling, device: &Device) -> BertClassifier {
    let _guard = serial();
    device.seed(23);
    BertClassifier::new(&teacher_config(), LABELS, pooling, device)
}

fn labels() -> Vec<String> {
    (0..LABELS).map(|i| format!("label{i}")).collect()
}

fn inputs(device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(vec![2i64, 7, 9, 11, 3, 2, 5, 3, 0, 0], [2, 5]),
        device,
    );
    let types = Tensor::<2, Int>::from_data(
        TensorData::new(vec![0i64, 0, 0, 1, 1, 0, 0, 0, 0, 0], [2, 5]),
        device,
    );
    let mask = Tensor::<2>::from_data(
        TensorData::new(vec![1f32, 1., 1., 1., 1., 1., 1., 1., 0., 0.], [2, 5]),
        device,
    );
    (ids, types, mask)
}

fn logits(model: &BertClassifier, device: &Device) -> (Vec<usize>, Vec<u32>) {
    let (ids, types, mask) = inputs(device);
    let out = model.forward(ids, types, mask);
    let dims = out.dims().to_vec();
    let bits = out
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect();
    (dims, bits)
}

/// Every float parameter's values (as bit patterns, so that equality is bit-equality) by path.
fn values<M: Module>(model: &M) -> BTreeMap<String, Vec<u32>> {
    kiln_model::drift::param_values(model)
        .into_iter()
        .map(|(path, v)| (path, v.into_iter().map(f32::to_bits).collect()))
        .collect()
}

/// Every parameter id in a module: float, int and bool tensors and flags (dropout's `training`).
#[derive(Default)]
struct Ids(Vec<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id);
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        self.0.push(param.id);
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        self.0.push(param.id);
    }
    fn visit_flag(&mut self, flag: &Param<Flag>) {
        self.0.push(flag.id);
    }
}

fn ids<M: Module>(model: &M) -> Vec<ParamId> {
    let mut v = Ids::default();
    model.visit(&mut v);
    v.0
}

const LAYER_PREFIX: &str = "bert.encoder.layer.";

/// `bert.encoder.layer.3.attention.self_attention.query.weight` → `Some((3, "attention.self_attention.query.weight"))`.
fn split_layer(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix(LAYER_PREFIX)?;
    let (index, tail) = rest.split_once('.')?;
    Some((index.parse().unwrap(), tail))
}

#[test]
fn layer_maps_follow_the_documented_rule() {
    let map = |l, k| StudentInit::new(l, k).unwrap().layer_map;
    assert_eq!(map(6, 3), vec![0, 2, 4]);
    assert_eq!(map(12, 6), vec![0, 2, 4, 6, 8, 10]);
    assert_eq!(map(12, 4), vec![0, 3, 6, 9]);
    assert_eq!(map(6, 6), (0..6).collect::<Vec<_>>());
    assert_eq!(map(6, 1), vec![0]);
    assert_eq!(map(1, 1), vec![0]);
    // K does not divide L: round(i·L/K), halves up.
    assert_eq!(map(5, 2), vec![0, 3]); // 0, 2.5
    assert_eq!(map(7, 3), vec![0, 2, 5]); // 0, 2.33, 4.67
    assert_eq!(map(6, 4), vec![0, 2, 3, 5]); // 0, 1.5, 3, 4.5
    assert_eq!(map(12, 5), vec![0, 2, 5, 7, 10]); // 0, 2.4, 4.8, 7.2, 9.6

    let init = StudentInit::new(12, 6).unwrap();
    assert_eq!((init.teacher_layers, init.student_layers), (12, 6));

    // For every shape: K entries, starting at 0, strictly increasing, all within the teacher.
    for l in 1..=24 {
        for k in 1..=l {
            let m = map(l, k);
            assert_eq!(m.len(), k, "{l}→{k}: {m:?}");
            assert_eq!(m[0], 0, "{l}→{k}: {m:?}");
            assert!(m.windows(2).all(|w| w[0] < w[1]), "{l}→{k}: {m:?}");
            assert!(*m.last().unwrap() < l, "{l}→{k}: {m:?}");
        }
    }
}

#[test]
fn invalid_student_sizes_are_errors_naming_the_field() {
    for (l, k) in [(6, 0), (6, 7), (12, 13), (1, 2)] {
        let err = StudentInit::new(l, k).unwrap_err();
        assert!(err.contains("student_layers"), "{l}→{k}: {err}");
        assert!(
            err.contains(&k.to_string()) && err.contains(&l.to_string()),
            "{err}"
        );
    }
    assert!(StudentInit::new(0, 0).is_err());
}

#[test]
fn the_student_is_a_bit_exact_copy_of_the_chosen_parts() {
    let device = Device::flex();
    let teacher = teacher(Pooling::Cls, &device);
    let init = StudentInit::new(6, 3).unwrap();
    let (student, config) = student_from_teacher(&teacher, &teacher_config(), &init);
    assert_eq!(student.bert.num_layers(), 3);
    assert_eq!(student.pooling, teacher.pooling);
    assert_eq!(student.num_labels(), LABELS);

    let t = values(&teacher);
    let s = values(&student);
    // The teacher's layers differ, so copying the wrong one would show.
    let layer = |i: usize| -> Vec<&Vec<u32>> {
        t.iter()
            .filter(|(p, _)| split_layer(p).is_some_and(|(j, _)| j == i))
            .map(|(_, v)| v)
            .collect()
    };
    assert_ne!(layer(0), layer(2));

    let mut layer_tensors = 0;
    for (path, value) in &s {
        let teacher_path = match split_layer(path) {
            Some((i, tail)) => {
                layer_tensors += 1;
                format!("{LAYER_PREFIX}{}.{tail}", init.layer_map[i])
            }
            None => path.clone(),
        };
        let expected = t
            .get(&teacher_path)
            .unwrap_or_else(|| panic!("{path}: no {teacher_path} in the teacher"));
        assert!(
            value == expected,
            "{path} differs from the teacher's {teacher_path}"
        );
    }
    // 16 tensors per layer; everything outside the encoder layers is there too.
    assert_eq!(layer_tensors, 16 * 3);
    let outside = |m: &BTreeMap<String, Vec<u32>>| -> BTreeSet<String> {
        m.keys()
            .filter(|p| split_layer(p).is_none())
            .cloned()
            .collect()
    };
    assert_eq!(outside(&s), outside(&t));
    for part in [
        "bert.embeddings.word_embeddings.weight",
        "bert.pooler.dense.weight",
        "classifier.weight",
    ] {
        assert!(s.contains_key(part), "{part} missing from {:?}", s.keys());
    }

    // The config is the teacher's with K layers.
    let mut expected_config = teacher_config();
    expected_config.num_hidden_layers = 3;
    assert_eq!(config, expected_config);
    assert_eq!(config.extra.get("some_unknown_field"), Some(&"kept".into()));
}

#[test]
fn student_parameter_ids_are_fresh_and_its_own() {
    let device = Device::flex();
    let teacher = teacher(Pooling::Cls, &device);
    // 6→6: every teacher tensor has a copy in the student, the strictest case.
    let (student, _) = student_from_teacher(
        &teacher,
        &teacher_config(),
        &StudentInit::new(6, 6).unwrap(),
    );
    let t: BTreeSet<ParamId> = ids(&teacher).into_iter().collect();
    let s_list = ids(&student);
    let s: BTreeSet<ParamId> = s_list.iter().copied().collect();
    assert_eq!(s.len(), s_list.len(), "student ids repeat");
    assert_eq!(s_list.len(), ids(&teacher).len());
    // Flags (dropout's `training`) are counted too, not only tensors.
    assert!(s_list.len() > values(&student).len());
    let shared: Vec<_> = s.intersection(&t).collect();
    assert!(
        shared.is_empty(),
        "student shares ids with the teacher: {shared:?}"
    );
}

#[test]
fn the_student_runs_and_a_full_copy_matches_the_teacher() {
    let device = Device::flex();
    for pooling in [Pooling::Cls, Pooling::Mean] {
        let teacher = teacher(pooling, &device);
        let (teacher_dims, teacher_logits) = logits(&teacher, &device);

        let (student, _) = student_from_teacher(
            &teacher,
            &teacher_config(),
            &StudentInit::new(6, 2).unwrap(),
        );
        let (dims, out) = logits(&student, &device);
        assert_eq!(dims, vec![2, LABELS]);
        assert!(out.iter().all(|b| f32::from_bits(*b).is_finite()));
        assert_ne!(
            out, teacher_logits,
            "a 2-layer student should not match the 6-layer teacher"
        );

        let (copy, _) = student_from_teacher(
            &teacher,
            &teacher_config(),
            &StudentInit::new(6, 6).unwrap(),
        );
        assert_eq!(
            logits(&copy, &device),
            (teacher_dims, teacher_logits),
            "{pooling:?}"
        );
    }
}

#[test]
fn a_teacher_without_a_pooler_gives_a_student_without_one() {
    let device = Device::flex();
    let mut teacher = teacher(Pooling::Cls, &device);
    teacher.bert.pooler = None;
    let (student, _) = student_from_teacher(
        &teacher,
        &teacher_config(),
        &StudentInit::new(6, 3).unwrap(),
    );
    assert!(student.bert.pooler.is_none());
    assert_eq!(logits(&student, &device).0, vec![2, LABELS]);
}

#[test]
fn the_student_saves_and_loads_back_identically() {
    let device = Device::flex();
    let teacher = teacher(Pooling::Cls, &device);
    let (student, config) = student_from_teacher(
        &teacher,
        &teacher_config(),
        &StudentInit::new(6, 3).unwrap(),
    );
    let expected = logits(&student, &device);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("student");
    save_pretrained(&student, &config, &labels(), None, &dir).unwrap();
    let checkpoint = Checkpoint::open(&dir).unwrap();
    assert_eq!(checkpoint.config.num_hidden_layers, 3);
    let (loaded, report) = checkpoint
        .load_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
        .unwrap();
    assert!(report.has_pooler);
    assert_eq!(loaded.bert.num_layers(), 3);
    assert_eq!(logits(&loaded, &device), expected);
    assert_eq!(values(&loaded), values(&student));
}

/// Adds 1 to every float parameter, as an optimizer step would change them.
struct Bump;

impl ModuleMapper for Bump {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.add_scalar(1.0))
    }
}

#[test]
fn changing_the_student_leaves_the_teacher_alone() {
    // The student's tensors share storage with the teacher's until written; a write must
    // copy, not change the teacher.
    let device = Device::flex();
    let teacher = teacher(Pooling::Cls, &device);
    let before = values(&teacher);
    let (student, _) = student_from_teacher(
        &teacher,
        &teacher_config(),
        &StudentInit::new(6, 6).unwrap(),
    );
    let student = student.map(&mut Bump);
    assert_ne!(values(&student), before);
    assert_eq!(values(&teacher), before);
}

#[test]
fn on_an_autodiff_device_gradients_reach_the_student_not_the_teacher() {
    let device = Device::flex().autodiff();
    let teacher = teacher(Pooling::Cls, &device);
    let (student, _) = student_from_teacher(
        &teacher,
        &teacher_config(),
        &StudentInit::new(6, 3).unwrap(),
    );
    let (ids_, types, mask) = inputs(&device);
    let loss = student.forward(ids_, types, mask).sum();
    let mut grads = loss.backward();
    // Nothing lands on the teacher's tensors: the student's are separate autodiff leaves.
    // (Asked first: `from_module` removes what it takes, and shared leaves would hand the
    // student's gradients to whichever model asks first.)
    let teacher_grads = GradientsParams::from_module(&mut grads, &teacher);
    assert!(
        teacher_grads.is_empty(),
        "{} teacher tensors got gradients",
        teacher_grads.len()
    );
    // The embeddings, 3 layers, pooler and head all train.
    let student_grads = GradientsParams::from_module(&mut grads, &student);
    assert_eq!(student_grads.len(), values(&student).len());
}

#[test]
#[should_panic(expected = "4-layer teacher")]
fn an_init_for_another_teacher_is_refused() {
    let device = Device::flex();
    let teacher = teacher(Pooling::Cls, &device);
    student_from_teacher(
        &teacher,
        &teacher_config(),
        &StudentInit::new(4, 2).unwrap(),
    );
}
