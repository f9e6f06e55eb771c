//! The search space: a TOML file whose keys are `kiln train`'s options (its flags' names). A
//! plain value is fixed for every trial; a table draws the option:
//!
//! ```toml
//! data = "rotten-tomatoes"            # fixed
//! epochs = 1
//! lr = { log-uniform = [1e-5, 3e-4] } # continuous, uniform in log space
//! warmup-ratio = { uniform = [0.0, 0.2] }
//! lora-rank = { int = [4, 16] }        # an integer, both ends included
//! batch-size = { choice = [16, 32] }   # one of a list
//! ```
//!
//! and the samplers that draw trials from it: grid (every combination of `choice` and `int`
//! values), random, and TPE (the `tpe` crate: one Parzen estimator per option, as Optuna's
//! default sampler, after some random startup trials).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use kiln_metrics::ParamValue;

/// How one option is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    Uniform {
        low: f64,
        high: f64,
    },
    LogUniform {
        low: f64,
        high: f64,
    },
    /// Both ends included.
    Int {
        low: i64,
        high: i64,
    },
    Choice(Vec<ParamValue>),
}

impl Dimension {
    /// The values a grid takes; none for a continuous range.
    fn grid_values(&self) -> Option<Vec<ParamValue>> {
        match self {
            Self::Choice(values) => Some(values.clone()),
            Self::Int { low, high } => Some((*low..=*high).map(ParamValue::Int).collect()),
            Self::Uniform { .. } | Self::LogUniform { .. } => None,
        }
    }

    fn sample(&self, rng: &mut StdRng) -> ParamValue {
        match self {
            Self::Uniform { low, high } => ParamValue::Float(rng.random_range(*low..*high)),
            Self::LogUniform { low, high } => {
                ParamValue::Float(rng.random_range(low.ln()..high.ln()).exp())
            }
            Self::Int { low, high } => ParamValue::Int(rng.random_range(*low..=*high)),
            Self::Choice(values) => values[rng.random_range(0..values.len())].clone(),
        }
    }

    /// The TPE crate's view of the dimension: a range on the real line (log for log-uniform,
    /// an index for choices).
    fn tpe_range(&self) -> (f64, f64) {
        match self {
            Self::Uniform { low, high } => (*low, *high),
            Self::LogUniform { low, high } => (low.ln(), high.ln()),
            // Integers as a continuous range over [low, high + 1), floored.
            Self::Int { low, high } => (*low as f64, *high as f64 + 1.0),
            Self::Choice(values) => (0.0, values.len() as f64),
        }
    }

    fn to_tpe(&self, value: &ParamValue) -> Option<f64> {
        match (self, value) {
            (Self::LogUniform { .. }, v) => v.as_f64().map(f64::ln),
            (Self::Int { .. }, ParamValue::Int(i)) => Some(*i as f64 + 0.5),
            (Self::Choice(values), v) => values.iter().position(|c| c == v).map(|i| i as f64),
            (_, v) => v.as_f64(),
        }
    }

    fn value_at(&self, x: f64) -> ParamValue {
        match self {
            Self::Uniform { low, high } => ParamValue::Float(x.clamp(*low, *high)),
            Self::LogUniform { low, high } => ParamValue::Float(x.exp().clamp(*low, *high)),
            Self::Int { low, high } => ParamValue::Int((x.floor() as i64).clamp(*low, *high)),
            Self::Choice(values) => values[(x as usize).min(values.len() - 1)].clone(),
        }
    }

    fn is_categorical(&self) -> bool {
        matches!(self, Self::Choice(_))
    }
}

/// The options every trial gets and the ones it draws.
#[derive(Debug, Clone)]
pub struct SearchSpace {
    /// The file it came from (named in errors).
    pub path: PathBuf,
    pub fixed: toml::Table,
    /// By option name.
    pub dims: BTreeMap<String, Dimension>,
}

impl SearchSpace {
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Reads the space from `text`; errors name `path` and the key.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let mut fixed = toml::Table::new();
        let mut dims = BTreeMap::new();
        for (key, value) in table {
            match value {
                toml::Value::Table(t) => {
                    let dim =
                        dimension(&t).with_context(|| format!("{}: `{key}`", path.display()))?;
                    dims.insert(key, dim);
                }
                other => {
                    fixed.insert(key, other);
                }
            }
        }
        if dims.is_empty() {
            bail!(
                "{}: nothing to search: give at least one option a range, e.g. \
                 `lr = {{ log-uniform = [1e-5, 1e-3] }}`",
                path.display()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            fixed,
            dims,
        })
    }

    /// Every combination of the options' values, in order (the last option varies fastest);
    /// refused when an option is continuous.
    pub fn grid(&self) -> Result<Vec<BTreeMap<String, ParamValue>>> {
        let mut combos = vec![BTreeMap::new()];
        for (key, dim) in &self.dims {
            let Some(values) = dim.grid_values() else {
                bail!(
                    "{}: `{key}` is a continuous range, which a grid cannot enumerate: give it \
                     as `{{ choice = [...] }}` or use --sampler random or tpe",
                    self.path.display()
                );
            };
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(key.clone(), v.clone());
                        c
                    })
                })
                .collect();
        }
        Ok(combos)
    }

    /// Trial `id`'s draw, the same for a given seed whatever came before (a resumed sweep
    /// draws what the first session would have).
    pub fn random(&self, seed: u64, id: usize) -> BTreeMap<String, ParamValue> {
        let mut rng = trial_rng(seed, id);
        self.dims
            .iter()
            .map(|(key, dim)| (key.clone(), dim.sample(&mut rng)))
            .collect()
    }

    /// TPE's proposal for trial `id` given the scored trials so far (`score`: larger is
    /// better), one optimizer per option as Optuna's independent TPE sampler.
    pub fn tpe(
        &self,
        seed: u64,
        id: usize,
        scored: &[(&BTreeMap<String, ParamValue>, f64)],
    ) -> Result<BTreeMap<String, ParamValue>> {
        let mut rng = trial_rng(seed, id);
        let mut params = BTreeMap::new();
        for (key, dim) in &self.dims {
            let (low, high) = dim.tpe_range();
            let range = tpe::range(low, high).map_err(|e| anyhow::anyhow!("`{key}`: {e}"))?;
            let estimator = if dim.is_categorical() {
                tpe::histogram_estimator()
            } else {
                tpe::parzen_estimator()
            };
            let mut optimizer = tpe::TpeOptimizer::new(estimator, range);
            for (trial, score) in scored {
                // The crate minimises; a value outside the range (a space changed under a
                // resumed sweep) is left out.
                if let Some(x) = trial.get(key).and_then(|v| dim.to_tpe(v)) {
                    if (low..high).contains(&x) {
                        optimizer
                            .tell(x, -score)
                            .map_err(|e| anyhow::anyhow!("`{key}`: {e}"))?;
                    }
                }
            }
            let x = optimizer
                .ask(&mut rng)
                .map_err(|e| anyhow::anyhow!("`{key}`: {e}"))?;
            params.insert(key.clone(), dim.value_at(x));
        }
        Ok(params)
    }

    /// The options file of a trial: the fixed options and its draw (keys sorted).
    pub fn trial_table(&self, params: &BTreeMap<String, ParamValue>) -> toml::Table {
        let mut table = self.fixed.clone();
        for (key, value) in params {
            table.insert(key.clone(), toml_value(value));
        }
        table
    }

    /// Tables that hold each value an option can take alone (each choice, each end of a
    /// range), for checking them against the options' parsers before any trial runs.
    pub fn probes(&self) -> Vec<toml::Table> {
        let mut probes = vec![self.fixed.clone()];
        for (key, dim) in &self.dims {
            let values = match dim {
                Dimension::Choice(values) => values.clone(),
                Dimension::Int { low, high } => vec![ParamValue::Int(*low), ParamValue::Int(*high)],
                Dimension::Uniform { low, high } | Dimension::LogUniform { low, high } => {
                    vec![ParamValue::Float(*low), ParamValue::Float(*high)]
                }
            };
            for value in values {
                let mut t = toml::Table::new();
                t.insert(key.clone(), toml_value(&value));
                probes.push(t);
            }
        }
        probes
    }
}

fn trial_rng(seed: u64, id: usize) -> StdRng {
    // Distinct streams per trial from one seed (splitmix-style mixing of the pair).
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(id as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    StdRng::seed_from_u64(mixed)
}

pub fn toml_value(value: &ParamValue) -> toml::Value {
    match value {
        ParamValue::Bool(b) => toml::Value::Boolean(*b),
        ParamValue::Int(i) => toml::Value::Integer(*i),
        ParamValue::Float(f) => toml::Value::Float(*f),
        ParamValue::Text(s) => toml::Value::String(s.clone()),
    }
}

fn param_value(value: &toml::Value) -> Result<ParamValue> {
    Ok(match value {
        toml::Value::Boolean(b) => ParamValue::Bool(*b),
        toml::Value::Integer(i) => ParamValue::Int(*i),
        toml::Value::Float(f) => ParamValue::Float(*f),
        toml::Value::String(s) => ParamValue::Text(s.clone()),
        _ => bail!("a choice must be a string, number or boolean, got {value}"),
    })
}

fn number(value: &toml::Value) -> Option<f64> {
    match value {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// `{ uniform = [a, b] }`, `{ log-uniform = [a, b] }`, `{ int = [a, b] }` or
/// `{ choice = [...] }`.
fn dimension(table: &toml::Table) -> Result<Dimension> {
    const KINDS: &str = "one of `uniform = [low, high]`, `log-uniform = [low, high]`, \
                         `int = [low, high]` or `choice = [...]`";
    let [(kind, value)] = table.iter().collect::<Vec<_>>()[..] else {
        bail!("a searched option takes {KINDS}");
    };
    let toml::Value::Array(items) = value else {
        bail!("`{kind}` takes a list");
    };
    if kind == "choice" {
        if items.is_empty() {
            bail!("`choice` needs at least one value");
        }
        return Ok(Dimension::Choice(
            items.iter().map(param_value).collect::<Result<_>>()?,
        ));
    }
    let ends: Vec<f64> = items.iter().filter_map(number).collect();
    let [low, high] = ends[..] else {
        bail!("`{kind}` takes two numbers [low, high]");
    };
    if ends.len() != items.len() || low >= high || !low.is_finite() || !high.is_finite() {
        bail!("`{kind}` takes two finite numbers with low < high");
    }
    match kind.as_str() {
        "uniform" => Ok(Dimension::Uniform { low, high }),
        "log-uniform" if low > 0.0 => Ok(Dimension::LogUniform { low, high }),
        "log-uniform" => bail!("`log-uniform` needs 0 < low"),
        "int" => {
            let (low_i, high_i) = (low as i64, high as i64);
            if low_i as f64 != low || high_i as f64 != high {
                bail!("`int` takes whole numbers");
            }
            Ok(Dimension::Int {
                low: low_i,
                high: high_i,
            })
        }
        _ => bail!("`{kind}` is no kind of range: a searched option takes {KINDS}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACE: &str = r#"
data = "rotten-tomatoes"
epochs = 1
lr = { log-uniform = [1e-5, 1e-3] }
warmup-ratio = { uniform = [0.0, 0.2] }
lora-rank = { int = [4, 6] }
strategy = { choice = ["full", "lora"] }
"#;

    fn space(text: &str) -> Result<SearchSpace> {
        SearchSpace::parse(text, Path::new("space.toml"))
    }

    #[test]
    fn fixed_options_and_ranges_are_told_apart() {
        let s = space(SPACE).unwrap();
        assert_eq!(s.fixed.len(), 2);
        assert_eq!(s.dims.len(), 4);
        assert_eq!(s.dims["lora-rank"], Dimension::Int { low: 4, high: 6 });
        assert_eq!(
            s.dims["strategy"],
            Dimension::Choice(vec![
                ParamValue::Text("full".into()),
                ParamValue::Text("lora".into())
            ])
        );
    }

    #[test]
    fn random_draws_stay_in_range_and_repeat_for_a_seed() {
        let s = space(SPACE).unwrap();
        for id in 0..200 {
            let p = s.random(7, id);
            let lr = p["lr"].as_f64().unwrap();
            assert!((1e-5..1e-3).contains(&lr), "{lr}");
            let w = p["warmup-ratio"].as_f64().unwrap();
            assert!((0.0..0.2).contains(&w), "{w}");
            let r = p["lora-rank"].as_f64().unwrap();
            assert!((4.0..=6.0).contains(&r));
            assert_eq!(p, s.random(7, id));
        }
        assert_ne!(s.random(7, 0), s.random(7, 1));
        assert_ne!(s.random(7, 0), s.random(8, 0));
        // Log-uniform: about half the draws below the geometric middle (1e-4).
        let below = (0..400)
            .filter(|&id| s.random(1, id)["lr"].as_f64().unwrap() < 1e-4)
            .count();
        assert!((150..250).contains(&below), "{below}");
    }

    #[test]
    fn a_grid_is_every_combination_and_refuses_continuous_ranges() {
        let s = space("a = { choice = [1, 2] }\nb = { int = [0, 2] }\n").unwrap();
        let grid = s.grid().unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[0]["a"], ParamValue::Int(1));
        assert_eq!(grid[0]["b"], ParamValue::Int(0));
        assert_eq!(grid[1]["b"], ParamValue::Int(1));
        assert_eq!(grid[5]["a"], ParamValue::Int(2));
        let e = space(SPACE).unwrap().grid().unwrap_err().to_string();
        assert!(e.contains("space.toml") && e.contains("`lr`"), "{e}");
    }

    #[test]
    fn tpe_proposes_near_the_good_trials() {
        // One option; trials near 0.8 scored best. After them, TPE's proposals lean there.
        let s = space("x = { uniform = [0.0, 1.0] }\n").unwrap();
        let trials: Vec<BTreeMap<String, ParamValue>> = (0..20)
            .map(|i| BTreeMap::from([("x".to_string(), ParamValue::Float(i as f64 / 20.0))]))
            .collect();
        let scored: Vec<_> = trials
            .iter()
            .map(|t| (t, -(t["x"].as_f64().unwrap() - 0.8).abs()))
            .collect();
        let near = (0..20)
            .filter(|&id| {
                let x = s.tpe(3, 100 + id, &scored).unwrap()["x"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&x));
                (x - 0.8).abs() < 0.2
            })
            .count();
        // A uniform draw lands within 0.2 of 0.8 40% of the time.
        assert!(near >= 14, "{near} of 20 near the best");
        // Choices and integers come back as values of the space.
        let s = space("c = { choice = [\"a\", \"b\"] }\nn = { int = [1, 3] }\n").unwrap();
        let p = s.tpe(1, 0, &[]).unwrap();
        assert!(matches!(p["c"], ParamValue::Text(_)));
        assert!(matches!(p["n"], ParamValue::Int(1..=3)));
    }

    #[test]
    fn bad_ranges_name_the_file_and_the_key() {
        for (text, words) in [
            ("lr = { log-uniform = [0.0, 1.0] }", "0 < low"),
            ("lr = { uniform = [1.0, 0.5] }", "low < high"),
            ("lr = { uniform = [1.0] }", "two numbers"),
            ("lr = { normal = [0.0, 1.0] }", "no kind of range"),
            (
                "lr = { uniform = [0.0, 1.0], int = [1, 2] }",
                "takes one of",
            ),
            ("n = { int = [1.5, 3] }", "whole numbers"),
            ("s = { choice = [] }", "at least one"),
            ("epochs = 3", "nothing to search"),
        ] {
            let e = format!("{:#}", space(text).unwrap_err());
            assert!(e.contains("space.toml"), "{e}");
            assert!(e.contains(words), "{text}: {e}");
        }
    }

    #[test]
    fn a_trial_table_holds_the_fixed_options_and_the_draw() {
        let s = space(SPACE).unwrap();
        let t = s.trial_table(&s.random(1, 0));
        assert_eq!(t["data"].as_str(), Some("rotten-tomatoes"));
        assert!(t["lr"].as_float().is_some());
        assert!(t["lora-rank"].as_integer().is_some());
        // Each choice and each end of a range, alone.
        assert_eq!(s.probes().len(), 1 + 2 + 2 + 2 + 2);
    }
}
