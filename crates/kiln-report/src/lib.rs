//! kiln-report: the training report, one self-contained HTML page (inline CSS and SVG, no
//! scripts, nothing fetched) drawn from a run's files.
//!
//! - [`page`]: the page itself from typed inputs ([`render`], [`ReportInput`]), with its
//!   hand-written SVG line charts.
//! - [`run`]: a run directory's `metrics.json`, `log.jsonl` and `config.toml` → the page
//!   ([`RunFiles`]); `kiln report DIR` and `kiln train` use it.
//! - [`sweep`]: a hyperparameter sweep's page from its `sweep.json` ([`render_sweep`]): the
//!   trials' table, the metric against each option and over time.
//!
//! It reads kiln-metrics' types and nothing of the training engine: a run's files are all it
//! needs, so a page can be drawn again (or by another program) after the run.

pub mod page;
pub mod run;
pub mod sweep;

pub use page::{escape_html, render, ReportInput};
pub use run::RunFiles;
pub use sweep::render_sweep;
