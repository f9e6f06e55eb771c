//! The fine-tuning loop, step by step as the recipe reads:
//!
//! ```text
//! for each epoch:   begin_epoch (a strategy may re-plan: gradual unfreezing)
//!   for each batch: micro_step       forward → loss → backward → accumulate
//!     every k:      optimizer_step   average → clip → step at the scheduled rate
//!                   step_end         mid-epoch validation, periodic checkpoint, Ctrl-C
//!   end_epoch:      validation → best model → checkpoint → early stopping
//! finish:           the best model, the strategy's last word (LoRA merge)
//! ```
//!
//! Randomness is a pure function of the seed: batch order comes from `BucketSampler::epoch(e)`
//! and dropout is reseeded from (seed, micro-step) before every forward, so a run resumed from
//! a checkpoint replays exactly what the uninterrupted run would have done. The loop never
//! asks which strategy runs: the strategy says where inputs come from ([`Inputs`]) and what
//! happens at the end.

use std::path::Path;
use std::time::Instant;

use burn::data::dataloader::DataLoaderIterator;
use burn::module::ParamGroup;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use sha2::{Digest, Sha256};

use kiln_data::bucket::{BucketSampler, Sampler};
use kiln_data::loader::{planned_loader, LabelledBatch, TaskBatcher};
use kiln_data::pipeline::EncodedExample;
use kiln_data::{Target, Targets};
use kiln_model::activation::is_cpu;
use kiln_model::dropout::mix;
use kiln_model::BertClassifier;

use crate::clip::{clip_global_norm, global_norm, scale_grads};
use crate::config::{check_data, Faults, SelectionMetric, TrainConfig, TrainData};
use crate::error::TrainError;
use crate::evaluate::{metrics_from_logits, rows_per_example, Evaluator, Rows};
use crate::history::{EpochPoint, EvalPoint, StepPoint, TrainState, TrainStats};
use crate::l2sp::Anchor;
use crate::observer::Observer;
use crate::optim::{lr_groups, module_lr};
use crate::parallel::{data_parallel_step, shard_pools, shard_rows, ParallelStep};
use crate::resume::{self, Best};
use crate::schedule::Schedule;
use crate::strategy::{InputSource, Plan, Strategy};
use crate::task::{Objective, TaskBatch, TaskModel};
use kiln_metrics::TaskMetrics;

/// What [`crate::Trainer::fit`] gives back.
pub struct TrainOutcome<M = BertClassifier> {
    /// The best model on validation (or the last, without validation data), in inference mode.
    pub model: M,
    pub steps: Vec<StepPoint>,
    pub epochs: Vec<EpochPoint>,
    /// Every evaluation on the validation set, in order.
    pub evals: Vec<EvalPoint>,
    /// The epoch (1-based) of the best evaluation.
    pub best_epoch: Option<u64>,
    /// The optimizer step of the best evaluation.
    pub best_step: Option<u64>,
    pub stopped_early: bool,
    /// Steps skipped because the loss or a gradient was not finite.
    pub bad_steps: u64,
    pub stats: TrainStats,
    pub plan: Plan,
}

/// What [`crate::Trainer`] hands the loop besides the model and the data.
pub(crate) struct Job<'a> {
    pub config: &'a TrainConfig,
    pub devices: &'a [Device],
    pub checkpoint_dir: Option<&'a Path>,
    pub resume: Option<&'a Path>,
    pub faults: &'a Faults,
}

/// Whether the run goes on after a step of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Early stopping: patience ran out.
    Stop,
}

pub(crate) fn fit<M: TaskModel>(
    model: M,
    data: &TrainData,
    job: &Job,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome<M>, TrainError> {
    let mut run = Run::start(model, data, job, observer)?;
    for epoch in run.state.epochs_done..job.config.epochs {
        run.begin_epoch(epoch);
        if run.train_epoch(epoch)? == Flow::Stop {
            break;
        }
        if run.end_epoch(epoch)? == Flow::Stop {
            break;
        }
    }
    run.finish()
}

/// A run in progress: the model and its optimizer, the plan, the loop state and the best model.
struct Run<'a, M: TaskModel> {
    config: &'a TrainConfig,
    data: &'a TrainData,
    checkpoint_dir: Option<&'a Path>,
    faults: &'a Faults,
    observer: &'a mut dyn Observer,
    /// The first device (validation) and its autodiff twin (the model and the optimizer).
    device: Device,
    ad: Device,
    model: Slot<M>,
    optim: ModuleOptimizer,
    strategy: Strategy,
    plan: Plan,
    lr_groups: Vec<(f64, ParamGroup)>,
    sampler: BucketSampler,
    schedule: Schedule,
    objective: Objective,
    /// The validation metric that picks the best model (the task's default unless given).
    metric: SelectionMetric,
    /// L2-SP's pretrained encoder weights, when the recipe asks for it.
    anchor: Option<Anchor>,
    inputs: Inputs,
    state: TrainState,
    best: Best<M>,
    stopped_early: bool,
}

impl<'a, M: TaskModel> Run<'a, M> {
    /// Checks the job, binds the strategy, plans the batches and the schedule, and — resuming
    /// — loads the checkpoint after checking that it belongs to this run.
    fn start(
        model: M,
        data: &'a TrainData,
        job: &Job<'a>,
        observer: &'a mut dyn Observer,
    ) -> Result<Self, TrainError> {
        let config = job.config;
        config.validate()?;
        let Some(device) = job.devices.first() else {
            return Err(TrainError::invalid(
                "devices",
                "is empty: no training device",
            ));
        };
        check_data(config, data, model.num_outputs())?;
        let ad = device.clone().autodiff();
        // `fork` keeps a plain module plain; `train` turns its parameters into autodiff leaves.
        let model = model.fork(&ad).train();
        let (strategy, mut model) = Strategy::prepare(config.strategy.clone(), model);
        // The pretrained weights, before a resume loads a checkpoint's over them.
        let anchor = (config.l2_sp > 0.0).then(|| Anchor::new(&model, config.l2_sp));

        let lengths: Vec<usize> = data.train.iter().map(|e| e.len()).collect();
        let sampler = BucketSampler::new(
            lengths,
            config.batch(),
            config.sampler.bucketing(),
            config.seed,
        )?
        .with_chunk_batches(config.bucket_chunk);
        // Each epoch may plan a different number of batches under a token budget; the schedule
        // needs a total up front, so it uses epoch 0's count for every epoch.
        let schedule = config.schedule(sampler.num_batches(0).div_ceil(config.grad_accum));

        // A resumed run loads its weights first: the plan and the optimizer's groups refer to
        // the loaded parameters.
        let fingerprint = run_fingerprint(config, data);
        let resume_from = match job.resume {
            Some(root) => Some(resume::find_latest(root, &mut |m| observer.message(m))?),
            None => None,
        };
        let (mut state, best) = match &resume_from {
            Some(dir) => {
                let (loaded, state, best) = resume::load_model(dir, model)?;
                check_resumable(dir, &state, &fingerprint, &schedule)?;
                model = loaded;
                (state, best)
            }
            None => (TrainState::default(), Best::None),
        };
        state.fingerprint = Some(fingerprint);
        let plan = strategy
            .plan(
                &model,
                state.epochs_done,
                config.lr,
                config.optimizer.weight_decay,
            )
            .anchored(anchor.is_some());
        let model = strategy.apply(model, &plan);
        let mut optim = config.optimizer.build(&plan);
        if let Some(dir) = &resume_from {
            optim = resume::load_optimizer(dir, optim)?;
            observer.message(&format!(
                "resumed from {} (epoch {}, batch {} of it, step {})",
                dir.display(),
                state.epochs_done + 1,
                state.batch_in_epoch,
                state.steps
            ));
        }
        observer.plan(state.epochs_done, &plan);
        let inputs = Inputs::new(
            strategy.inputs(),
            &model,
            data,
            config,
            job.devices,
            observer,
        );
        Ok(Self {
            config,
            data,
            checkpoint_dir: job.checkpoint_dir,
            faults: job.faults,
            observer,
            device: device.clone(),
            ad,
            lr_groups: lr_groups(&plan),
            model: Slot(Some(model)),
            optim,
            strategy,
            plan,
            sampler,
            schedule,
            objective: config.objective(data.teacher_logits.as_ref()),
            metric: config.selection_metric(data.task()),
            anchor,
            inputs,
            state,
            best,
            stopped_early: false,
        })
    }

    /// A strategy whose plan changes over epochs (gradual unfreezing) re-plans here.
    fn begin_epoch(&mut self, epoch: usize) {
        if !(self.strategy.changes_over_epochs() && epoch > 0) {
            return;
        }
        let next = self
            .strategy
            .plan(
                self.model.get(),
                epoch,
                self.config.lr,
                self.config.optimizer.weight_decay,
            )
            .anchored(self.anchor.is_some());
        if next.trainable_ids() != self.plan.trainable_ids() {
            self.plan = next;
            self.lr_groups = lr_groups(&self.plan);
            let (strategy, plan) = (&self.strategy, &self.plan);
            self.model.update(|m| strategy.apply(m, plan));
            self.observer.plan(epoch, &self.plan);
        }
    }

    /// One epoch's batches (the rest of it, when resuming mid-epoch): micro-steps, and every
    /// `grad_accum` of them an optimizer step.
    fn train_epoch(&mut self, epoch: usize) -> Result<Flow, TrainError> {
        let batches = self.sampler.epoch(epoch as u64);
        let skip = self.state.batch_in_epoch;
        let total = batches.len();
        self.observer
            .epoch_start(epoch, total.div_ceil(self.config.grad_accum));
        let mut clock = Clock::new();
        let loader = self.inputs.loader(&batches[skip..], self.data, &self.ad);
        let mut feed = loader.as_ref().map(|l| l.iter());
        let mut pending = Pending::default();
        for (batch_index, indices) in batches.iter().enumerate().skip(skip) {
            self.micro_step(&mut feed, indices, &mut pending)?;
            clock.examples += indices.len();
            if pending.micro == self.config.grad_accum || batch_index + 1 == total {
                let point = self.optimizer_step(epoch, batch_index, total, &mut pending)?;
                let samples_per_second = clock.window_rate();
                self.observer.step(&point, samples_per_second);
                self.state.steps_log.push(point.clone());
                self.state.batch_in_epoch = batch_index + 1;
                if batch_index + 1 != total && self.step_end(&point, &mut clock)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        self.state.train_seconds += clock.epoch_seconds();
        Ok(Flow::Continue)
    }

    /// Forward, loss and backward of one micro-batch, its gradients added to the pending step
    /// (none when its loss is not finite, or an earlier micro-batch of the step had one).
    fn micro_step(
        &mut self,
        feed: &mut Option<Box<dyn DataLoaderIterator<LabelledBatch> + '_>>,
        indices: &[usize],
        pending: &mut Pending<M>,
    ) -> Result<(), TrainError> {
        // Dropout masks are a function of (seed, micro-step): resumable, thread-independent.
        let dropout_seed = mix(self.config.seed, self.state.micro_steps);
        self.ad.seed(dropout_seed);
        let fault = self.faults.nan_loss_at.contains(&self.state.micro_steps);
        let model = self.model.get();
        let phases = &mut self.state.phases;
        let mut lap = Lap::start(&self.ad);
        let batch = self.inputs.next_batch(feed, indices, self.data, &self.ad)?;
        lap.lap(&mut phases.data_seconds);
        let forward = match batch {
            MicroBatch::Whole(batch) => Forward::Loss(model.step(*batch, &self.objective).loss),
            MicroBatch::Features(f) => {
                let FeatureBatch {
                    features,
                    targets,
                    examples,
                } = *f;
                let logits = model.head(features);
                Forward::Loss(self.objective.loss(logits, targets, &examples))
            }
            MicroBatch::Shards(shards) => {
                let units: Vec<usize> = shards
                    .iter()
                    .map(|s| self.data.loss_units(&s.examples))
                    .collect();
                Forward::Parallel(data_parallel_step(
                    model,
                    self.inputs.replicas(),
                    self.inputs.pools(),
                    shards,
                    &units,
                    dropout_seed,
                    &self.objective,
                ))
            }
        };
        let (loss, grads) = match forward {
            Forward::Loss(mut loss) => {
                if fault {
                    loss = loss.mul_scalar(f64::NAN);
                }
                let value = loss.clone().into_scalar::<f64>();
                lap.lap(&mut phases.forward_seconds);
                let grads = (value.is_finite() && pending.ok)
                    .then(|| GradientsParams::from_grads(loss.backward(), model));
                (value, grads)
            }
            // The shards ran forward and backward already, each timed in its thread.
            Forward::Parallel(step) => {
                phases.forward_seconds += step.forward_seconds;
                phases.backward_seconds += step.backward_seconds;
                lap.restart();
                let value = if fault { f64::NAN } else { step.loss };
                (
                    value,
                    (value.is_finite() && pending.ok).then_some(step.grads),
                )
            }
        };
        pending.add(model, loss, grads);
        lap.lap(&mut phases.backward_seconds);
        let tokens: usize = indices.iter().map(|&i| self.data.train[i].len()).sum();
        let state = &mut self.state;
        state.micro_steps += 1;
        state.epoch_loss_sum += loss;
        state.epoch_batches += 1;
        state.examples_seen += indices.len() as u64;
        state.tokens_seen += tokens as u64;
        Ok(())
    }

    /// Averages the accumulated gradients, clips them to the global norm and steps at the
    /// scheduled rate; a step with a non-finite loss or gradient is skipped and counted.
    fn optimizer_step(
        &mut self,
        epoch: usize,
        batch_index: usize,
        total: usize,
        pending: &mut Pending<M>,
    ) -> Result<StepPoint, TrainError> {
        let lap_start = Instant::now();
        let lr = self.schedule.lr(self.state.steps as usize);
        let micro = pending.micro;
        let loss = pending.loss_sum / micro as f64;
        let mut grads = pending.accumulator.grads();
        let mut applied = false;
        if pending.ok {
            if micro > 1 {
                // Average, not sum: k micro-batches of n make the same step as one of k·n.
                scale_grads(self.model.get(), &mut grads, 1.0 / micro as f64);
            }
            // The penalty's gradient joins the data's before clipping, as part of the loss.
            if let Some(anchor) = &self.anchor {
                anchor.add_gradients(self.model.get(), &mut grads);
            }
            let norm = match self.config.clip_norm() {
                Some(max_norm) => clip_global_norm(self.model.get(), &mut grads, max_norm),
                None => global_norm(self.model.get(), &grads),
            };
            if norm.is_finite() {
                let (optim, rates) = (&mut self.optim, module_lr(&self.lr_groups, lr));
                self.model.update(|m| optim.step(rates, m, grads));
                applied = true;
            }
        }
        let _ = self.ad.sync();
        self.state.phases.optimizer_seconds += lap_start.elapsed().as_secs_f64();
        *pending = Pending::default();
        self.state.steps += 1;
        if applied {
            self.state.bad_steps_in_row = 0;
        } else {
            self.skip_bad_step(epoch, loss)?;
        }
        Ok(StepPoint {
            step: self.state.steps,
            epoch: epoch as f64 + (batch_index + 1) as f64 / total.max(1) as f64,
            loss,
            lr,
        })
    }

    /// A skipped step leaves the weights and the optimizer state as they were; too many in a
    /// row end the run.
    fn skip_bad_step(&mut self, epoch: usize, loss: f64) -> Result<(), TrainError> {
        let state = &mut self.state;
        state.bad_steps += 1;
        state.bad_steps_in_row += 1;
        self.observer.message(&format!(
            "step {}: non-finite loss or gradient, step skipped ({} in a row, {} in all)",
            state.steps, state.bad_steps_in_row, state.bad_steps
        ));
        if state.bad_steps_in_row >= self.config.max_bad_steps as u64 {
            return Err(TrainError::NonFinite {
                epoch,
                step: state.steps,
                loss,
                in_a_row: state.bad_steps_in_row,
            });
        }
        Ok(())
    }

    /// After an optimizer step inside an epoch: validation every `eval_every`, a
    /// checkpoint every `save_every`, and a requested stop (checkpoint, then
    /// [`TrainError::Interrupted`]).
    fn step_end(&mut self, point: &StepPoint, clock: &mut Clock) -> Result<Flow, TrainError> {
        let steps = self.state.steps;
        if self
            .config
            .eval_every
            .is_some_and(|every| steps.is_multiple_of(every as u64))
            && !self.data.valid.is_empty()
        {
            let eval = EvalPoint {
                step: steps,
                epoch: point.epoch,
                epoch_end: false,
                metrics: self.validate(),
            };
            let is_best = self.record_evaluation(&eval)?;
            self.observer.validation(&eval, is_best);
            if self.patience_exhausted() {
                self.observer.message(&self.early_stop_message(&eval));
                self.stopped_early = true;
                self.state.train_seconds += clock.epoch_seconds();
                return Ok(Flow::Stop);
            }
        }
        let stop = self.observer.should_stop();
        let periodic = self
            .config
            .save_every
            .is_some_and(|n| steps.is_multiple_of(n as u64));
        if stop || periodic {
            self.state.train_seconds += clock.epoch_seconds();
            clock.restart_epoch();
            self.checkpoint()?;
            if stop {
                return Err(self.interrupted());
            }
        }
        Ok(Flow::Continue)
    }

    /// Validation, the best model, the epoch's record and checkpoint, then early stopping or a
    /// requested stop.
    fn end_epoch(&mut self, epoch: usize) -> Result<Flow, TrainError> {
        let valid = (!self.data.valid.is_empty()).then(|| EvalPoint {
            step: self.state.steps,
            epoch: epoch as f64 + 1.0,
            epoch_end: true,
            metrics: self.validate(),
        });
        let is_best = match &valid {
            Some(eval) => {
                let is_best = self.record_evaluation(eval)?;
                self.observer.validation(eval, is_best);
                is_best
            }
            // Without validation data the last epoch's model is the one kept.
            None => {
                self.state.best_epoch = Some(epoch as u64 + 1);
                self.state.best_step = Some(self.state.steps);
                self.best = self.keep_current();
                true
            }
        };
        let state = &mut self.state;
        let point = EpochPoint {
            epoch: epoch as u64 + 1,
            train_loss: state.epoch_loss_sum / state.epoch_batches.max(1) as f64,
            valid: valid.map(|e| e.metrics),
        };
        self.observer.epoch_end(&point, is_best);
        state.epochs.push(point);
        state.epochs_done = epoch + 1;
        state.batch_in_epoch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_batches = 0;
        self.checkpoint()?;
        let more = epoch + 1 < self.config.epochs;
        if self.observer.should_stop() && more {
            return Err(self.interrupted());
        }
        if self.patience_exhausted() && more {
            if let Some(last) = self.state.evals.last() {
                let message = self.early_stop_message(last);
                self.observer.message(&message);
            }
            self.stopped_early = true;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    /// Metrics of the model as it is now on the validation set.
    fn validate(&self) -> TaskMetrics {
        let inference = self.model.get().valid();
        let loss = self.objective.validation_loss();
        let readout = self.config.readout(self.data.scale, self.data.labels.len());
        match &self.inputs {
            Inputs::Features { valid, .. } => {
                let logits = valid.outputs(&inference, &self.device);
                let (examples, labels) = (&self.data.valid, &self.data.labels);
                metrics_from_logits(&logits, examples, labels, loss, &readout, &self.device)
            }
            Inputs::Tokens { .. } => Evaluator::new()
                .batch_size(self.config.eval_batch_size)
                .pad_id(self.data.pad_id)
                .loss(loss.clone())
                .readout(readout)
                .evaluate(&inference, &self.data.valid, &self.data.labels),
        }
    }

    /// Scores an evaluation against the best so far and counts it for patience. A new best
    /// model is kept: in memory without a checkpoint directory; with one, on disk — mid-epoch in
    /// its own file (the model moves on before the next checkpoint), at an epoch's end in the
    /// checkpoint written right after.
    fn record_evaluation(&mut self, point: &EvalPoint) -> Result<bool, TrainError> {
        let score = self.metric.score(&point.metrics);
        let state = &mut self.state;
        let is_best = state
            .best_score
            .is_none_or(|b| score > b + self.config.min_delta);
        if is_best {
            state.best_score = Some(score);
            // The epoch the evaluation belongs to, 1-based: step 30 of 40 in the second epoch
            // is 2.
            state.best_epoch = Some(point.epoch.ceil() as u64);
            state.best_step = Some(point.step);
            state.evals_without_improvement = 0;
            self.best = match self.checkpoint_dir {
                Some(dir) if !point.epoch_end => {
                    Best::File(resume::save_best(dir, self.model.get())?)
                }
                _ => self.keep_current(),
            };
        } else {
            state.evals_without_improvement += 1;
        }
        self.state.evals.push(point.clone());
        Ok(is_best)
    }

    /// The model as it is now becomes the best: with checkpoints, the checkpoint that follows
    /// copies it to disk; without, a copy stays in memory.
    fn keep_current(&self) -> Best<M> {
        match self.checkpoint_dir {
            Some(_) => Best::Current,
            None => Best::Memory(Box::new(self.model.get().valid())),
        }
    }

    /// Writes a resume checkpoint (when the run has a checkpoint directory).
    fn checkpoint(&mut self) -> Result<(), TrainError> {
        if let Some(dir) = self.checkpoint_dir {
            let saved = resume::save(
                dir,
                self.model.get(),
                &self.optim,
                &self.state,
                &self.best,
                self.config.save_total_limit,
            )?;
            self.best = std::mem::replace(&mut self.best, Best::None).saved_in(&saved);
        }
        Ok(())
    }

    fn interrupted(&self) -> TrainError {
        TrainError::Interrupted {
            step: self.state.steps,
            checkpoint: self.checkpoint_dir.map(|d| d.to_path_buf()),
        }
    }

    fn patience_exhausted(&self) -> bool {
        self.config
            .patience
            .is_some_and(|p| self.state.evals_without_improvement >= p)
    }

    fn early_stop_message(&self, last: &EvalPoint) -> String {
        format!(
            "early stopping at step {} (epoch {:.2}): no {:?} improvement in {} evaluation(s)",
            last.step,
            last.epoch,
            self.config.metric,
            self.config.patience.unwrap_or(0)
        )
    }

    /// The best model in inference mode, as the strategy hands it back, with the history.
    fn finish(self) -> Result<TrainOutcome<M>, TrainError> {
        let model = self.strategy.finish(self.best.resolve(self.model.get())?);
        let state = self.state;
        Ok(TrainOutcome {
            model,
            stats: state.stats(self.data.train.len()),
            steps: state.steps_log,
            epochs: state.epochs,
            evals: state.evals,
            best_epoch: state.best_epoch,
            best_step: state.best_step,
            bad_steps: state.bad_steps,
            stopped_early: self.stopped_early,
            plan: self.plan,
        })
    }
}

/// Refuses a checkpoint that another run wrote, or whose steps this run's schedule would have
/// taken at other learning rates (more epochs may follow a finished plan only where the steps
/// already taken keep their rates: a constant schedule, or fixed warmup steps).
fn check_resumable(
    dir: &Path,
    state: &TrainState,
    fingerprint: &str,
    schedule: &Schedule,
) -> Result<(), TrainError> {
    if state.fingerprint.as_ref().is_some_and(|f| f != fingerprint) {
        return Err(TrainError::Mismatch {
            path: dir.to_path_buf(),
            problem: "this checkpoint was written by a run with other data or other options; \
                      it cannot continue this one"
                .into(),
        });
    }
    let rate_of = |step: u64| schedule.lr(step.saturating_sub(1) as usize);
    if let Some(p) = state.steps_log.iter().find(|p| rate_of(p.step) != p.lr) {
        return Err(TrainError::Mismatch {
            path: dir.to_path_buf(),
            problem: format!(
                "step {} ran at learning rate {:e}, but this run's schedule gives it {:e}; a \
                 different number of epochs or steps would mix two schedules",
                p.step,
                p.lr,
                rate_of(p.step)
            ),
        });
    }
    Ok(())
}

/// Where a run's training inputs come from, as its strategy says.
enum Inputs {
    /// Token batches from burn's data loader (each batch as one item per shard), through the
    /// whole model: one shard per device, or on a single CPU device `batch_shards` shards side
    /// by side, each with its share of the cores (see [`crate::parallel`]).
    Tokens {
        replicas: Vec<Device>,
        pools: Vec<rayon::ThreadPool>,
        batcher: TaskBatcher,
        num_workers: usize,
    },
    /// Features of the model in inference mode, computed once; the head trains on them.
    Features {
        train: FeatureCache,
        valid: FeatureCache,
    },
}

/// A micro-batch as the model gets it: whole on the first device, or in shards for
/// [`data_parallel_step`].
enum MicroBatch {
    Whole(Box<TaskBatch>),
    /// Cached features of the examples (the head trains on them).
    Features(Box<FeatureBatch>),
    Shards(Vec<TaskBatch>),
}

/// A micro-batch's loss on the first device, or a data-parallel step that already ran
/// backward.
enum Forward {
    Loss(Tensor<1>),
    Parallel(ParallelStep),
}

struct FeatureBatch {
    features: Tensor<2>,
    targets: Targets,
    examples: Vec<usize>,
}

impl Inputs {
    fn new<M: TaskModel>(
        source: InputSource,
        model: &M,
        data: &TrainData,
        config: &TrainConfig,
        devices: &[Device],
        observer: &mut dyn Observer,
    ) -> Self {
        let device = &devices[0];
        match source {
            InputSource::Tokens => {
                let ad = device.clone().autodiff();
                let replicas: Vec<Device> = if devices.len() == 1 && is_cpu(device) {
                    vec![ad; config.batch_shards]
                } else {
                    devices.iter().map(|d| d.clone().autodiff()).collect()
                };
                // Threads for the shards (none when a batch is one shard).
                let pools = match replicas.len() {
                    1 => Vec::new(),
                    n => shard_pools(n),
                };
                Inputs::Tokens {
                    replicas,
                    pools,
                    batcher: TaskBatcher {
                        pad_id: data.pad_id,
                        pad_to_multiple: config.pad_to_multiple,
                        pack: config.sampler == Sampler::Packed && model.accepts_packed(),
                        scale: data.scale,
                        labels: data.labels.len(),
                    },
                    num_workers: config.num_workers,
                }
            }
            InputSource::CachedFeatures => {
                let inference = model.valid();
                let start = Instant::now();
                let cache = |examples: &[EncodedExample]| {
                    FeatureCache::build(&inference, examples, config, data.pad_id, device)
                };
                let (train, valid) = (cache(&data.train), cache(&data.valid));
                observer.message(&format!(
                    "frozen backbone: features of {} + {} examples computed once in {:.1}s",
                    data.train.len(),
                    data.valid.len(),
                    start.elapsed().as_secs_f64()
                ));
                Inputs::Features { train, valid }
            }
        }
    }

    /// The devices the shards of a batch run on (the first device alone for cached features).
    fn replicas(&self) -> &[Device] {
        match self {
            Inputs::Tokens { replicas, .. } => replicas,
            Inputs::Features { .. } => &[],
        }
    }

    fn pools(&self) -> &[rayon::ThreadPool] {
        match self {
            Inputs::Tokens { pools, .. } => pools,
            Inputs::Features { .. } => &[],
        }
    }

    /// The data loader over an epoch's remaining batches (each as one item per shard); none
    /// for cached features.
    fn loader(
        &self,
        batches: &[Vec<usize>],
        data: &TrainData,
        ad: &Device,
    ) -> Option<std::sync::Arc<dyn burn::data::dataloader::DataLoader<LabelledBatch>>> {
        let Inputs::Tokens {
            replicas,
            batcher,
            num_workers,
            ..
        } = self
        else {
            return None;
        };
        let shard_plan = batches
            .iter()
            .flat_map(|b| {
                shard_rows(b.len(), replicas.len())
                    .into_iter()
                    .map(|r| b[r].to_vec())
            })
            .collect();
        Some(planned_loader(
            data.train.clone(),
            shard_plan,
            *batcher,
            *num_workers,
            ad,
        ))
    }

    /// The micro-batch of training examples `indices`.
    fn next_batch(
        &self,
        feed: &mut Option<Box<dyn DataLoaderIterator<LabelledBatch> + '_>>,
        indices: &[usize],
        data: &TrainData,
        ad: &Device,
    ) -> Result<MicroBatch, TrainError> {
        match (self, feed) {
            (Inputs::Tokens { replicas, .. }, Some(feed)) => {
                let mut shards = Vec::with_capacity(replicas.len());
                for rows in shard_rows(indices.len(), replicas.len()) {
                    let b = feed
                        .next()
                        .ok_or_else(|| TrainError::Loader("it ended early".into()))?
                        .map_err(|e| TrainError::Loader(e.to_string()))?;
                    shards.push(TaskBatch {
                        tokens: b.tokens,
                        targets: b.targets,
                        examples: indices[rows].to_vec(),
                    });
                }
                Ok(match shards.len() {
                    1 => MicroBatch::Whole(Box::new(shards.remove(0))),
                    _ => MicroBatch::Shards(shards),
                })
            }
            (Inputs::Features { train, .. }, _) => {
                let targets: Vec<Target> = indices
                    .iter()
                    .map(|&i| data.train[i].target.clone())
                    .collect();
                Ok(MicroBatch::Features(Box::new(FeatureBatch {
                    features: train.batch(indices, ad),
                    targets: Targets::of(&targets, data.scale, data.labels.len(), ad),
                    examples: indices.to_vec(),
                })))
            }
            (Inputs::Tokens { .. }, None) => Err(TrainError::Loader("no loader".into())),
        }
    }
}

/// The features of every example, computed once (the `frozen` strategy's cache): a row per
/// example, or per piece for a token model.
struct FeatureCache {
    rows: Vec<f32>,
    width: usize,
    /// Where each example's rows start, and how many it has.
    spans: Vec<(usize, usize)>,
}

impl FeatureCache {
    fn build<M: TaskModel>(
        model: &M,
        examples: &[EncodedExample],
        config: &TrainConfig,
        pad_id: u32,
        device: &Device,
    ) -> Self {
        let batch = config.eval_batch_size;
        let per = Rows::of(model);
        let (rows, width) =
            rows_per_example(examples, batch, pad_id, device, per, |b| model.features(b));
        let spans = per.spans(examples);
        Self { rows, width, spans }
    }

    /// The rows of examples `indices` as a model computes them in one batch: a row each, or
    /// (token models) each example's piece rows padded with zeros to the longest's, so that
    /// row `e · seq + p` is example `e`'s piece `p` as [`Targets::Tags`] expects.
    fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let seq = indices.iter().map(|&i| self.spans[i].1).max().unwrap_or(0);
        let w = self.width;
        let mut data = vec![0f32; indices.len() * seq * w];
        for (row, &i) in indices.iter().enumerate() {
            let (start, n) = self.spans[i];
            data[row * seq * w..(row * seq + n) * w]
                .copy_from_slice(&self.rows[start * w..(start + n) * w]);
        }
        Tensor::from_data(TensorData::new(data, [indices.len() * seq, w]), device)
    }

    /// The head's outputs over every cached row, row-major (as [`rows_per_example`] lays
    /// them out).
    fn outputs<M: TaskModel>(&self, model: &M, device: &Device) -> Vec<f32> {
        let n = self.rows.len() / self.width.max(1);
        if n == 0 {
            return Vec::new();
        }
        let all = Tensor::from_data(TensorData::new(self.rows.clone(), [n, self.width]), device);
        model
            .head(all)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }
}

/// The micro-batches of the optimizer step being assembled.
struct Pending<M> {
    accumulator: GradientsAccumulator<M>,
    micro: usize,
    loss_sum: f64,
    /// False once a micro-batch had a non-finite loss: it spoils the whole step.
    ok: bool,
}

impl<M> Default for Pending<M> {
    fn default() -> Self {
        Self {
            accumulator: GradientsAccumulator::new(),
            micro: 0,
            loss_sum: 0.0,
            ok: true,
        }
    }
}

impl<M: TaskModel> Pending<M> {
    fn add(&mut self, model: &M, loss: f64, grads: Option<GradientsParams>) {
        match grads {
            Some(grads) => self.accumulator.accumulate(model, grads),
            None => self.ok = false,
        }
        self.micro += 1;
        self.loss_sum += loss;
    }
}

/// The model being trained. An optimizer step and a strategy's `apply` consume it: moving it
/// through them (not a clone) leaves each tensor one owner, so burn updates it in place.
struct Slot<M>(Option<M>);

impl<M> Slot<M> {
    fn get(&self) -> &M {
        self.0
            .as_ref()
            .expect("the model is back in its slot after every update")
    }

    fn update(&mut self, f: impl FnOnce(M) -> M) {
        if let Some(model) = self.0.take() {
            self.0 = Some(f(model));
        }
    }
}

/// The epoch's training time and the throughput window between two logged steps.
struct Clock {
    epoch_start: Instant,
    window_start: Instant,
    examples: usize,
}

impl Clock {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            epoch_start: now,
            window_start: now,
            examples: 0,
        }
    }

    /// Examples per second since the last call.
    fn window_rate(&mut self) -> f64 {
        let rate = self.examples as f64 / self.window_start.elapsed().as_secs_f64().max(1e-9);
        self.examples = 0;
        self.window_start = Instant::now();
        rate
    }

    /// Training time restarts (the time before was accounted; a checkpoint follows).
    fn restart_epoch(&mut self) {
        self.epoch_start = Instant::now();
    }

    fn epoch_seconds(&self) -> f64 {
        self.epoch_start.elapsed().as_secs_f64()
    }
}

/// Times consecutive phases: each `lap` ends the current phase (after the device finished it).
struct Lap<'d> {
    device: &'d Device,
    since: Instant,
}

impl<'d> Lap<'d> {
    fn start(device: &'d Device) -> Self {
        Self {
            device,
            since: Instant::now(),
        }
    }

    /// Starts the next phase now, accounting the time since the last lap nowhere.
    fn restart(&mut self) {
        self.since = Instant::now();
    }

    fn lap(&mut self, into: &mut f64) {
        // A failed sync surfaces at the next read of a tensor; timing is no place to report it.
        let _ = self.device.sync();
        let now = Instant::now();
        *into += (now - self.since).as_secs_f64();
        self.since = now;
    }
}

/// A digest of everything that decides a run's result: the options (less those that only say
/// where and how often to save, and the number of epochs, which the resume checks against the
/// learning rates already used) and the exact training and validation examples. A checkpoint
/// carries it, so that a resume with other data or options is refused instead of mixing runs.
fn run_fingerprint(config: &TrainConfig, data: &TrainData) -> String {
    let mut recipe = config.clone();
    recipe.epochs = 0;
    recipe.save_every = None;
    recipe.save_total_limit = 1;
    recipe.num_workers = 1;
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&recipe).unwrap_or_default());
    hasher.update(serde_json::to_vec(&data.labels).unwrap_or_default());
    for split in [&data.train, &data.valid] {
        hasher.update((split.len() as u64).to_le_bytes());
        for e in split.iter() {
            match &e.target {
                Target::Class(c) => hasher.update((*c as u64).to_le_bytes()),
                Target::Value(v) => hasher.update(u64::from(v.to_bits()).to_le_bytes()),
                Target::Labels(set) => {
                    hasher.update((set.len() as u64).to_le_bytes());
                    for &l in set.iter() {
                        hasher.update((l as u64).to_le_bytes());
                    }
                }
                Target::Tags(tags) => {
                    hasher.update((tags.len() as u64).to_le_bytes());
                    for &t in tags.iter() {
                        hasher.update(t.to_le_bytes());
                    }
                }
            }
            hasher.update((e.encoding.input_ids.len() as u64).to_le_bytes());
            for (id, ty) in e.encoding.input_ids.iter().zip(&e.encoding.token_type_ids) {
                hasher.update(id.to_le_bytes());
                hasher.update(ty.to_le_bytes());
            }
        }
    }
    if let Some(t) = &data.teacher_logits {
        for v in t.iter() {
            hasher.update(v.to_le_bytes());
        }
    }
    format!("{:x}", hasher.finalize())
}
