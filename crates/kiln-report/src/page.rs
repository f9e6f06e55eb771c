//! The training report: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
//! fetched) written after a run and opened in a browser.
//!
//! Sections: the title and a table of facts; the training loss and learning rate per step;
//! validation accuracy / macro-F1 and train vs validation loss per epoch, with the best epoch
//! marked, and a table of epochs; the test metrics (or, without a test set, the best epoch's
//! validation metrics) with per-class scores and a shaded confusion matrix; the resolved
//! configuration in a collapsed `<details>`.
//!
//! Every piece of text that comes from outside (titles, facts, labels, the configuration) is
//! HTML-escaped, and non-finite numbers are never written: charts skip them and tables show
//! "n/a".

use std::fmt::Write as _;

use kiln_metrics::{
    ClassificationMetrics, MultiLabelMetrics, PartDrift, RegressionMetrics, TaskMetrics,
    TokenMetrics,
};

pub use kiln_metrics::{EpochPoint, EvalPoint, StepPoint};

/// Everything the report shows.
pub struct ReportInput<'a> {
    /// The page title, e.g. "kiln fine-tuning: minilm-l6 on rotten-tomatoes".
    pub title: &'a str,
    /// Key/value facts shown as a table under the title (model, data, strategy, wall time, …).
    pub facts: &'a [(String, String)],
    /// The per-step training log.
    pub steps: &'a [StepPoint],
    /// The per-epoch log.
    pub epochs: &'a [EpochPoint],
    /// Every validation run (epoch ends and, with `eval_every`, steps in between).
    pub evals: &'a [EvalPoint],
    /// The epoch whose weights were kept (the epoch of the best evaluation), marked in the
    /// epoch charts and table.
    pub best_epoch: Option<u64>,
    /// The step of the best evaluation, marked in the validation charts when evaluations ran
    /// between epoch ends.
    pub best_step: Option<u64>,
    /// The test-set metrics, if a test set was evaluated.
    pub test: Option<&'a TaskMetrics>,
    /// The resolved configuration, shown verbatim (pass it pretty-printed).
    pub config_json: &'a str,
    /// How far training moved each part of the encoder from its pretrained weights (empty:
    /// not measured, as for a distilled student).
    pub drift: &'a [PartDrift],
    /// The model's labels, in output order (names the rows of a multi-label table).
    pub labels: &'a [String],
}

// ---------------------------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------------------------

/// Escapes `s` for HTML text and for double- or single-quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `v` with `decimals` decimals, or "n/a" when it is not finite.
fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".to_string()
    }
}

/// A metric in `[0, 1]` (4 decimals).
fn fmt_metric(v: f64) -> String {
    fmt_num(v, 4)
}

/// A loss or other unbounded value: 4 significant-ish decimals, scientific when tiny or huge.
pub(crate) fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_string()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// A coordinate for an SVG attribute (always finite by construction; clamped defensively).
fn px(v: f64) -> String {
    let v = if v.is_finite() {
        v.clamp(-1e6, 1e6)
    } else {
        0.0
    };
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

// ---------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------

/// One line of a [`line_chart`].
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// A CSS colour.
    pub color: String,
    /// `(x, y)` points in drawing order; non-finite points are skipped (the line breaks there).
    pub points: Vec<(f64, f64)>,
    /// Draw a dot at every point (a lone point always gets one).
    pub markers: bool,
    /// Stroke width in pixels.
    pub width: f64,
}

impl Series {
    /// A plain line of width 2.
    pub fn new(name: impl Into<String>, color: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            color: color.into(),
            points,
            markers: false,
            width: 2.0,
        }
    }

    /// The same series with a dot at every point.
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }

    /// Dots only, no line (a scatter plot).
    pub fn scatter(
        name: impl Into<String>,
        color: impl Into<String>,
        points: Vec<(f64, f64)>,
    ) -> Self {
        Series::new(name, color, points)
            .with_markers()
            .with_width(0.0)
    }

    /// The same series with stroke width `width`.
    pub fn with_width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }
}

/// A vertical marker line at `x`, optionally labelled.
#[derive(Debug, Clone)]
pub struct VLine {
    /// Where, in data coordinates.
    pub x: f64,
    /// Text drawn at the top of the line (empty for none).
    pub label: String,
    /// A CSS colour.
    pub color: String,
}

/// The labelling and layout of a [`line_chart`].
#[derive(Debug, Clone)]
pub struct ChartOptions {
    /// Drawn at the top left.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Left of the y axis, rotated.
    pub y_label: String,
    /// Only whole-number x ticks (steps, epochs).
    pub integer_x: bool,
    /// Vertical marker lines (epoch boundaries, the best epoch).
    pub vlines: Vec<VLine>,
    /// The SVG's width in pixels (it scales to its container).
    pub width: f64,
    /// The SVG's height in pixels.
    pub height: f64,
}

impl ChartOptions {
    /// A 560×300 chart with these labels.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        ChartOptions {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            integer_x: false,
            vlines: Vec::new(),
            width: 560.0,
            height: 300.0,
        }
    }
}

/// Series longer than this are averaged in buckets before drawing.
const MAX_POINTS: usize = 2000;
/// The number of buckets a long series is averaged into.
const BUCKETS: usize = 1000;

/// Averages `points` into at most [`BUCKETS`] consecutive buckets when there are more than
/// [`MAX_POINTS`] of them (keeping the shape, shedding the noise and the bytes). A bucket with no
/// finite point becomes a gap.
fn downsample(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let size = points.len().div_ceil(BUCKETS);
    points
        .chunks(size)
        .map(|chunk| {
            let finite: Vec<_> = chunk
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            if finite.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                let n = finite.len() as f64;
                (
                    finite.iter().map(|p| p.0).sum::<f64>() / n,
                    finite.iter().map(|p| p.1).sum::<f64>() / n,
                )
            }
        })
        .collect()
}

/// Axis ticks: "nice" values (1, 2 or 5 × 10ⁿ apart) covering the data range.
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    step: f64,
}

/// 1, 2, 5 or 10 × 10ⁿ, the smallest of those ≥ `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A nice axis over `[min, max]` (finite, `min <= max`) with about `target` intervals.
fn nice_axis(min: f64, max: f64, target: usize, integer: bool) -> Axis {
    let (mut min, mut max) = (min, max);
    if max - min <= f64::EPSILON * min.abs().max(max.abs()).max(f64::MIN_POSITIVE) {
        // All values (nearly) equal: open a window around them.
        let pad = if integer || min == 0.0 {
            1.0
        } else {
            min.abs() * 0.1
        };
        min -= pad;
        max += pad;
    }
    let mut step = nice_step((max - min) / target.max(1) as f64);
    if integer {
        step = step.max(1.0).round();
    }
    // The tolerance keeps 2e-5 / 5e-6 = 4.000000000000001 from adding a tick.
    let first = (min / step + 1e-9).floor();
    let last = (max / step - 1e-9).ceil();
    let ticks: Vec<f64> = (0..=((last - first) as i64).clamp(1, 1000))
        .map(|k| {
            let v = (first + k as f64) * step;
            if v == 0.0 {
                0.0 // no "-0"
            } else {
                v
            }
        })
        .collect();
    Axis {
        lo: ticks[0],
        hi: *ticks.last().unwrap(),
        ticks,
        step,
    }
}

/// Tick labels for `axis`: fixed decimals just fine enough for the step, or `1.5e-5` style when
/// the values are tiny or huge.
fn tick_labels(axis: &Axis) -> Vec<String> {
    let biggest = axis.ticks.iter().fold(0f64, |m, v| m.max(v.abs()));
    let scientific = biggest > 0.0 && !(1e-3..1e6).contains(&biggest);
    let step_exp = axis.step.log10().floor();
    axis.ticks
        .iter()
        .map(|&v| {
            if v == 0.0 || v.abs() < axis.step * 1e-9 {
                return "0".to_string();
            }
            if scientific {
                let mut exp = v.abs().log10().floor();
                let decimals = (exp - step_exp).clamp(0.0, 6.0) as usize;
                let mut m = v / 10f64.powf(exp);
                let scale = 10f64.powi(decimals as i32);
                m = (m * scale).round() / scale;
                if m.abs() >= 10.0 {
                    m /= 10.0;
                    exp += 1.0;
                }
                let mut s = format!("{m:.decimals$}");
                if s.contains('.') {
                    s = s.trim_end_matches('0').trim_end_matches('.').to_string();
                }
                format!("{s}e{exp}")
            } else {
                let decimals = (-step_exp).clamp(0.0, 8.0) as usize;
                // 0.25-style steps never occur (1/2/5 steps), so -log10 of the step suffices.
                format!("{v:.decimals$}")
            }
        })
        .collect()
}

/// An approximate rendered width of `s` in pixels at `font_px` (system sans-serif).
fn text_width(s: &str, font_px: f64) -> f64 {
    s.chars().count() as f64 * font_px * 0.6
}

/// An SVG line chart with axes, nice ticks, axis labels, a legend and optional marker lines.
///
/// Non-finite points are skipped (the line breaks there), series longer than 2000 points are
/// bucket-averaged, one point is drawn as a dot, and a chart without any finite point says
/// "no data". The output never contains NaN or infinite coordinates.
pub fn line_chart(series: &[Series], opts: &ChartOptions) -> String {
    let (w, h) = (opts.width, opts.height);
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            points: downsample(&s.points),
            ..s.clone()
        })
        .collect();
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let bounds = finite().fold(None, |acc: Option<(f64, f64, f64, f64)>, &(x, y)| {
        Some(match acc {
            None => (x, x, y, y),
            Some((x0, x1, y0, y1)) => (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
        })
    });
    // A range too wide for f64 arithmetic is treated like no data rather than drawn wrongly.
    let bounds = bounds.filter(|(x0, x1, y0, y1)| (x1 - x0).is_finite() && (y1 - y0).is_finite());

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">"#,
        px(w),
        px(h),
        px(w),
        px(h),
        escape_html(&opts.title)
    );
    let _ = write!(
        svg,
        r#"<text x="12" y="20" class="ctitle">{}</text>"#,
        escape_html(&opts.title)
    );

    // Legend: a row under the title, wrapping if needed.
    let mut lx = 12.0;
    let mut ly = 40.0;
    let named: Vec<&Series> = series.iter().filter(|s| !s.name.is_empty()).collect();
    for s in &named {
        let item_w = 22.0 + text_width(&s.name, 11.0) + 16.0;
        if lx > 12.0 && lx + item_w > w - 12.0 {
            lx = 12.0;
            ly += 16.0;
        }
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3" stroke-linecap="round"/><text x="{}" y="{}" class="legend">{}</text>"#,
            px(lx),
            px(ly - 4.0),
            px(lx + 16.0),
            px(ly - 4.0),
            escape_html(&s.color),
            px(lx + 22.0),
            px(ly),
            escape_html(&s.name)
        );
        lx += item_w;
    }
    let top = if named.is_empty() { 34.0 } else { ly + 16.0 };

    let Some((x0, x1, y0, y1)) = bounds else {
        let _ = write!(
            svg,
            r##"<rect x="12" y="{}" width="{}" height="{}" fill="#f8fafc" stroke="#e2e8f0"/><text x="{}" y="{}" text-anchor="middle" class="nodata">no data</text></svg>"##,
            px(top),
            px(w - 24.0),
            px((h - top - 12.0).max(10.0)),
            px(w / 2.0),
            px((top + h) / 2.0)
        );
        return svg;
    };

    let xa = nice_axis(x0, x1, 6, opts.integer_x);
    let ya = nice_axis(y0, y1, 5, false);
    let x_labels = tick_labels(&xa);
    let y_labels = tick_labels(&ya);
    let widest_y = y_labels
        .iter()
        .map(|l| text_width(l, 11.0))
        .fold(0f64, f64::max);

    let left = 12.0 + 16.0 + widest_y + 8.0; // y label, tick labels, gap
    let right = w - 16.0;
    let bottom = h - 44.0; // tick labels and x label below
                           // Labelled marker lines put their labels above the plot area, where they hide no data.
    let has_vlabel = opts.vlines.iter().any(|v| !v.label.is_empty());
    let top = top + if has_vlabel { 18.0 } else { 6.0 };
    if bottom - top < 20.0 || right - left < 20.0 {
        svg.push_str("</svg>");
        return svg;
    }
    // Inner padding so that points on the extremes are not drawn on the axes.
    let pad = 6.0;
    let sx = |x: f64| left + pad + (x - xa.lo) / (xa.hi - xa.lo) * (right - left - 2.0 * pad);
    let sy = |y: f64| bottom - pad - (y - ya.lo) / (ya.hi - ya.lo) * (bottom - top - 2.0 * pad);

    // Grid and ticks.
    svg.push_str(r#"<g class="grid">"#);
    for (&v, label) in ya.ticks.iter().zip(&y_labels) {
        let y = sy(v);
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/><text x="{}" y="{}" text-anchor="end" class="tick">{}</text>"#,
            px(left),
            px(y),
            px(right),
            px(y),
            px(left - 6.0),
            px(y + 4.0),
            escape_html(label)
        );
    }
    // Thin x tick labels out if they would collide.
    let widest_x = x_labels
        .iter()
        .map(|l| text_width(l, 11.0))
        .fold(0f64, f64::max);
    let spacing = if xa.ticks.len() > 1 {
        (sx(xa.ticks[1]) - sx(xa.ticks[0])).abs()
    } else {
        f64::INFINITY
    };
    let every = ((widest_x + 8.0) / spacing).ceil().max(1.0) as usize;
    for (i, (&v, label)) in xa.ticks.iter().zip(&x_labels).enumerate() {
        let x = sx(v);
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            px(x),
            px(top),
            px(x),
            px(bottom)
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
                px(x),
                px(bottom + 16.0),
                escape_html(label)
            );
        }
    }
    svg.push_str("</g>");

    // Axes and axis labels.
    let _ = write!(
        svg,
        r#"<path class="axis" d="M{} {}V{}H{}"/>"#,
        px(left),
        px(top),
        px(bottom),
        px(right)
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" class="alabel">{}</text>"#,
        px((left + right) / 2.0),
        px(h - 8.0),
        escape_html(&opts.x_label)
    );
    let _ = write!(
        svg,
        r#"<text transform="translate({} {}) rotate(-90)" text-anchor="middle" class="alabel">{}</text>"#,
        px(20.0),
        px((top + bottom) / 2.0),
        escape_html(&opts.y_label)
    );

    // Marker lines (only those inside the x range).
    for v in opts
        .vlines
        .iter()
        .filter(|v| v.x.is_finite() && v.x >= xa.lo && v.x <= xa.hi)
    {
        let x = sx(v.x);
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.2" stroke-dasharray="4 3"/>"#,
            px(x),
            px(top),
            px(x),
            px(bottom),
            escape_html(&v.color)
        );
        if !v.label.is_empty() {
            // Keep the label inside the plot: to the right of the line unless that would overflow.
            let tw = text_width(&v.label, 11.0);
            let (tx, anchor) = if x + 4.0 + tw <= right {
                (x + 4.0, "start")
            } else {
                (x - 4.0, "end")
            };
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="{}" class="vlabel" fill="{}">{}</text>"#,
                px(tx),
                px(top - 5.0),
                anchor,
                escape_html(&v.color),
                escape_html(&v.label)
            );
        }
    }

    // The series: one path per run of finite points.
    for s in &series {
        let color = escape_html(&s.color);
        let mut d = String::new();
        let mut run = 0usize;
        let mut lone: Vec<(f64, f64)> = Vec::new();
        let mut run_start = (0.0, 0.0);
        for &(x, y) in &s.points {
            if x.is_finite() && y.is_finite() {
                let (cx, cy) = (sx(x), sy(y));
                let _ = write!(
                    d,
                    "{}{} {}",
                    if run == 0 { "M" } else { "L" },
                    px(cx),
                    px(cy)
                );
                if run == 0 {
                    run_start = (x, y);
                }
                run += 1;
            } else {
                if run == 1 {
                    lone.push(run_start);
                }
                run = 0;
            }
        }
        if run == 1 {
            lone.push(run_start);
        }
        if !d.is_empty() {
            let _ = write!(
                svg,
                r#"<path d="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round" stroke-linecap="round"/>"#,
                d,
                color,
                px(s.width)
            );
        }
        let dots: Vec<(f64, f64)> = if s.markers {
            s.points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect()
        } else {
            lone
        };
        for (x, y) in dots {
            let _ = write!(
                svg,
                r#"<circle cx="{}" cy="{}" r="4" fill="{}" stroke="white" stroke-width="1.5"><title>{}: x={}, y={}</title></circle>"#,
                px(sx(x)),
                px(sy(y)),
                color,
                escape_html(&s.name),
                fmt_value(x),
                fmt_value(y)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

pub(crate) const BLUE: &str = "#2563eb";
const LIGHT_BLUE: &str = "#93c5fd";
pub(crate) const ORANGE: &str = "#ea580c";
pub(crate) const GREEN: &str = "#16a34a";
const PURPLE: &str = "#7c3aed";
const BEST: &str = "#b45309";
pub(crate) const GREY: &str = "#94a3b8";

pub(crate) const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f1f5f9; color: #0f172a;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #cbd5e1; }
h3 { font-size: 14px; margin: 16px 0 8px; color: #334155; }
.sub { color: #64748b; margin: 0 0 16px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 12px 0; }
.kpi .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.kpi .k { color: #64748b; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 14px; }
.chart { width: 100%; height: auto; display: block; font-family: inherit; }
.chart .ctitle { font-size: 13px; font-weight: 600; fill: #0f172a; }
.chart .legend { font-size: 11px; fill: #334155; }
.chart .tick { font-size: 11px; fill: #475569; font-variant-numeric: tabular-nums; }
.chart .alabel { font-size: 12px; fill: #334155; }
.chart .vlabel { font-size: 11px; font-weight: 600; }
.chart .nodata { font-size: 13px; fill: #94a3b8; }
.chart .grid line { stroke: #e2e8f0; stroke-width: 1; }
.chart .axis { fill: none; stroke: #64748b; stroke-width: 1; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e2e8f0; text-align: left; vertical-align: middle; }
th { font-weight: 600; color: #334155; background: #f8fafc; }
td.n, th.n { text-align: right; }
table.facts th { width: 1%; white-space: nowrap; background: none; }
table.facts td { word-break: break-word; }
tr.best td { background: #fef3c7; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; color: #92400e; background: #fde68a;
  border-radius: 9px; padding: 0 7px; margin-left: 6px; }
.scroll { overflow-x: auto; }
.fit { display: inline-block; max-width: 100%; }
table.cm td { text-align: center; min-width: 64px; border: 1px solid #fff; padding: 6px 8px; }
table.cm td.diag { outline: 2px solid #0f172a33; outline-offset: -2px; }
table.cm td small { display: block; font-size: 10px; opacity: .8; }
table.cm th { max-width: 220px; overflow-wrap: break-word; }
table.cm th.corner { font-size: 11px; color: #64748b; font-weight: 400; }
table.cm th.axis { text-align: center; font-size: 12px; color: #64748b; font-weight: 400; background: none; }
.note { color: #64748b; font-size: 13px; }
details summary { cursor: pointer; font-weight: 600; }
pre { background: #0f172a; color: #e2e8f0; padding: 12px; border-radius: 6px; overflow: auto; max-height: 520px;
  font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { margin-top: 32px; color: #94a3b8; font-size: 12px; }
"#;

/// The encoder's weight change per part, as a table with bars scaled to the largest.
fn drift_section(html: &mut String, drift: &[PartDrift]) {
    if drift.is_empty() {
        return;
    }
    html.push_str(
        "<section id=\"drift\">\n<h2>Weight change from the pretrained encoder</h2>\n\
         <p class=\"note\">‖w − w₀‖ / ‖w₀‖ per part: how far fine-tuning moved it (--l2-sp \
         holds it back); linear CKA of its output with the pretrained encoder's on held-out \
         examples (1 = the same representation up to rotation and scale).</p>\n\
         <div class=\"card scroll fit\"><table><tr><th>part</th>\
         <th class=\"n\">relative change</th><th></th><th class=\"n\">CKA</th></tr>",
    );
    let top = drift
        .iter()
        .map(|d| d.relative_change)
        .fold(0.0f64, f64::max);
    for d in drift {
        let width = if top > 0.0 {
            100.0 * d.relative_change / top
        } else {
            0.0
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{:.3}%</td><td style=\"width:220px\">\
             <div style=\"background:#60a5fa;height:10px;width:{width:.1}%\"></div></td>\
             <td class=\"n\">{}</td></tr>",
            escape_html(&d.part),
            100.0 * d.relative_change,
            d.cka.map_or("—".to_string(), |c| format!("{c:.3}"))
        );
    }
    html.push_str("</table></div>\n</section>\n");
}

/// A page's opening up to its header's subtitle: the document head with the styles, the
/// title, and `sub` under it.
pub(crate) fn page_start(html: &mut String, title: &str, sub: &str) {
    let title = escape_html(title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <header>\n<h1>{title}</h1>\n<p class=\"sub\">{}</p>\n",
        escape_html(sub)
    );
}

/// A card of key–value rows.
pub(crate) fn facts_card(html: &mut String, rows: &[(String, String)]) {
    if rows.is_empty() {
        return;
    }
    html.push_str("<div class=\"card\"><table class=\"facts\">");
    for (k, v) in rows {
        let _ = write!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape_html(k),
            escape_html(v)
        );
    }
    html.push_str("</table></div>\n");
}

/// Renders the report page.
pub fn render(input: &ReportInput) -> String {
    let mut html = String::with_capacity(64 * 1024);
    page_start(&mut html, input.title, "Training report generated by kiln.");
    headline(&mut html, input);
    facts_card(&mut html, input.facts);
    html.push_str("</header>\n");

    training_section(&mut html, input);
    validation_section(&mut html, input);
    drift_section(&mut html, input.drift);

    // Test metrics, or the best epoch's validation metrics when there is no test set.
    html.push_str("<section id=\"test\">\n");
    if let Some(test) = input.test {
        html.push_str("<h2>Test set</h2>\n");
        metrics_block(&mut html, test, input.labels);
    } else {
        html.push_str("<h2>Test set</h2>\n<p class=\"note\">No test set was evaluated.</p>\n");
        if let Some((epoch, m)) = best_valid(input) {
            let _ = writeln!(
                html,
                "<h3>Validation metrics of the best epoch ({epoch})</h3>"
            );
            metrics_block(&mut html, m, input.labels);
        }
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"config\">\n<h2>Configuration</h2>\n<details><summary>Resolved configuration</summary>\n<pre>");
    html.push_str(&escape_html(input.config_json.trim_end()));
    html.push_str("</pre>\n</details>\n</section>\n");

    html.push_str("<footer>kiln — BERT fine-tuning on burn. This page is self-contained: no scripts, no external resources.</footer>\n</main>\n</body>\n</html>\n");
    html
}

/// The epoch marked best and its validation metrics, if both exist.
fn best_valid<'a>(input: &'a ReportInput) -> Option<(u64, &'a TaskMetrics)> {
    let best = input.best_epoch?;
    input
        .epochs
        .iter()
        .find(|e| e.epoch == best)
        .and_then(|e| e.valid.as_ref().map(|m| (best, m)))
}

/// The key numbers as cards at the top.
fn headline(html: &mut String, input: &ReportInput) {
    let mut cards: Vec<(String, String)> = Vec::new();
    if let Some(test) = input.test {
        for (name, value) in headline_scores(test) {
            cards.push((format!("test {name}"), fmt_score(value)));
        }
    }
    if let Some((epoch, m)) = best_valid(input) {
        for (name, value) in headline_scores(m) {
            cards.push((format!("valid {name} (epoch {epoch})"), fmt_score(value)));
        }
    }
    if let Some(last) = input.epochs.last() {
        cards.push(("final train loss".into(), fmt_value(last.train_loss)));
    }
    if !input.steps.is_empty() {
        cards.push(("optimizer steps".into(), input.steps.len().to_string()));
    }
    if cards.is_empty() {
        return;
    }
    html.push_str("<div class=\"cards\">");
    for (k, v) in cards {
        let _ = write!(
            html,
            "<div class=\"card kpi\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
            escape_html(&k),
            escape_html(&v)
        );
    }
    html.push_str("</div>\n");
}

/// A trailing moving average over finite values (non-finite inputs stay gaps).
fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut buf: std::collections::VecDeque<f64> = std::collections::VecDeque::new();
    let mut sum = 0.0;
    for &(x, y) in points {
        if !(x.is_finite() && y.is_finite()) {
            out.push((f64::NAN, f64::NAN));
            continue;
        }
        buf.push_back(y);
        sum += y;
        if buf.len() > window {
            sum -= buf.pop_front().unwrap_or(0.0);
        }
        out.push((x, sum / buf.len() as f64));
    }
    out
}

/// Where a new epoch starts, as step numbers (for faint marker lines on per-step charts).
fn epoch_boundaries(steps: &[StepPoint]) -> Vec<VLine> {
    let mut lines = Vec::new();
    for pair in steps.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.epoch.is_finite() && b.epoch.is_finite() && b.epoch.floor() > a.epoch.floor() {
            lines.push(VLine {
                x: b.step as f64,
                label: String::new(),
                color: GREY.to_string(),
            });
        }
    }
    if lines.len() > 50 {
        lines.clear(); // too many to be useful
    }
    lines
}

fn training_section(html: &mut String, input: &ReportInput) {
    html.push_str("<section id=\"training\">\n<h2>Training</h2>\n");
    if input.steps.is_empty() {
        html.push_str("<p class=\"note\">No training steps were logged.</p>\n</section>\n");
        return;
    }
    let boundaries = epoch_boundaries(input.steps);
    let x_label = if boundaries.is_empty() {
        "step"
    } else {
        "step (dashed: epoch boundaries)"
    };
    let loss: Vec<(f64, f64)> = input
        .steps
        .iter()
        .map(|s| (s.step as f64, s.loss))
        .collect();
    let mut series = Vec::new();
    if loss.len() >= 20 {
        let window = (loss.len() / 25).clamp(5, 200);
        series.push(Series::new("loss", LIGHT_BLUE, loss.clone()).with_width(1.2));
        series.push(Series::new(
            format!("moving average ({window} steps)"),
            BLUE,
            moving_average(&loss, window),
        ));
    } else {
        series.push(Series::new("loss", BLUE, loss).with_markers());
    }
    let mut opts = ChartOptions::new("Training loss per step", x_label, "loss");
    opts.integer_x = true;
    opts.vlines = boundaries.clone();
    html.push_str("<div class=\"grid2\">\n<div class=\"card\">");
    html.push_str(&line_chart(&series, &opts));

    let lr: Vec<(f64, f64)> = input.steps.iter().map(|s| (s.step as f64, s.lr)).collect();
    let mut opts = ChartOptions::new("Learning rate per step", x_label, "learning rate");
    opts.integer_x = true;
    opts.vlines = boundaries;
    let mut lr_series = Series::new("learning rate", PURPLE, lr);
    if input.steps.len() == 1 {
        lr_series = lr_series.with_markers();
    }
    html.push_str("</div>\n<div class=\"card\">");
    html.push_str(&line_chart(&[lr_series], &opts));
    html.push_str("</div>\n</div>\n</section>\n");
}

fn validation_section(html: &mut String, input: &ReportInput) {
    html.push_str("<section id=\"validation\">\n<h2>Epochs</h2>\n");
    if input.epochs.is_empty() {
        html.push_str("<p class=\"note\">No epochs were completed.</p>\n</section>\n");
        return;
    }
    // Evaluations between epoch ends are drawn where they happened (fractional epochs); the
    // best one is marked where it was, even mid-epoch.
    let mid_epoch = input.evals.iter().any(|e| !e.epoch_end);
    let best_x = match input
        .best_step
        .and_then(|s| input.evals.iter().find(|e| e.step == s))
    {
        Some(e) if mid_epoch => Some((
            e.epoch,
            format!("best: step {} (epoch {:.2})", e.step, e.epoch),
        )),
        _ => input
            .best_epoch
            .map(|b| (b as f64, format!("best: epoch {b}"))),
    };
    let best_line = best_x.map(|(x, label)| {
        vec![VLine {
            x,
            label,
            color: BEST.to_string(),
        }]
    });
    let valid = |f: &dyn Fn(&TaskMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
        if mid_epoch {
            return input
                .evals
                .iter()
                .filter_map(|e| f(&e.metrics).map(|v| (e.epoch, v)))
                .collect();
        }
        input
            .epochs
            .iter()
            .filter_map(|e| e.valid.as_ref().and_then(f).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    // The headline figures' names come from the first validation (one task per run).
    let first_valid = input
        .evals
        .first()
        .map(|e| &e.metrics)
        .or_else(|| input.epochs.iter().find_map(|e| e.valid.as_ref()));
    let names = first_valid.map(|m| headline_scores(m).map(|(name, _)| name));

    html.push_str("<div class=\"grid2\">\n");
    if let Some([first, second]) = names {
        let title = format!("Validation {first} and {second}");
        let mut opts = ChartOptions::new(&title, "epoch", "score");
        opts.integer_x = !mid_epoch;
        opts.vlines = best_line.clone().unwrap_or_default();
        let series = [
            Series::new(first, BLUE, valid(&|m| headline_scores(m)[0].1)).with_markers(),
            Series::new(second, GREEN, valid(&|m| headline_scores(m)[1].1)).with_markers(),
        ];
        html.push_str("<div class=\"card\">");
        html.push_str(&line_chart(&series, &opts));
        html.push_str("</div>\n");
    }
    let mut opts = ChartOptions::new("Loss per epoch", "epoch", "loss");
    opts.integer_x = !mid_epoch;
    opts.vlines = best_line.unwrap_or_default();
    let train: Vec<(f64, f64)> = input
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    let mut series = vec![Series::new("train", BLUE, train).with_markers()];
    let valid_loss = valid(&|m| m.loss());
    if !valid_loss.is_empty() {
        series.push(Series::new("validation", ORANGE, valid_loss).with_markers());
    }
    html.push_str("<div class=\"card\">");
    html.push_str(&line_chart(&series, &opts));
    html.push_str("</div>\n</div>\n");

    // The epoch table.
    let [first, second] = names.unwrap_or(["accuracy", "macro-F1"]);
    let _ = write!(
        html,
        "<h3>Per epoch</h3>\n<div class=\"card scroll fit\"><table><tr><th class=\"n\">epoch</th>\
         <th class=\"n\">train loss</th><th class=\"n\">valid loss</th>\
         <th class=\"n\">valid {first}</th><th class=\"n\">valid {second}</th></tr>",
    );
    for e in input.epochs {
        let best = input.best_epoch == Some(e.epoch);
        let (vl, va, vf) = match &e.valid {
            Some(m) => (
                m.loss().map_or("n/a".to_string(), fmt_value),
                fmt_score(headline_scores(m)[0].1),
                fmt_score(headline_scores(m)[1].1),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let _ = write!(
            html,
            "<tr{}><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if best { " class=\"best\"" } else { "" },
            if best { "<span class=\"badge\">best</span> " } else { "" },
            e.epoch,
            fmt_value(e.train_loss),
            vl,
            va,
            vf
        );
    }
    html.push_str("</table></div>\n</section>\n");
}

/// The two figures a task is judged by first: accuracy and macro-F1 for classification,
/// Pearson and Spearman for regression (MSE and MAE are in the summary table).
fn headline_scores(m: &TaskMetrics) -> [(&'static str, Option<f64>); 2] {
    match m {
        TaskMetrics::Classification(c) => [
            ("accuracy", Some(c.accuracy)),
            ("macro-F1", Some(c.macro_f1)),
        ],
        TaskMetrics::Regression(r) => [("Pearson", r.pearson), ("Spearman", r.spearman)],
        TaskMetrics::MultiLabel(m) => [
            ("micro-F1", Some(m.micro_f1)),
            ("macro-F1", Some(m.macro_f1)),
        ],
        TaskMetrics::Token(m) => [
            ("token accuracy", Some(m.accuracy())),
            ("macro-F1", Some(m.tokens.macro_f1)),
        ],
    }
}

/// A score, or "n/a" where it is undefined (a correlation of constant predictions).
fn fmt_score(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), fmt_metric)
}

/// `(name, value)` rows of a summary table, escaped.
fn fact_rows(html: &mut String, rows: &[(String, String)]) {
    for (k, v) in rows {
        let _ = write!(
            html,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape_html(k),
            escape_html(v)
        );
    }
}

/// The tables of one evaluation, by task.
fn metrics_block(html: &mut String, m: &TaskMetrics, labels: &[String]) {
    match m {
        TaskMetrics::Classification(c) => classification_block(html, c),
        TaskMetrics::Regression(r) => regression_block(html, r),
        TaskMetrics::MultiLabel(m) => multi_label_block(html, m, labels),
        TaskMetrics::Token(m) => token_block(html, m),
    }
}

/// A token classification: sentences and words, entity scores per type for an entity tag set,
/// then the words as a classification (per tag, confusion of tags).
fn token_block(html: &mut String, m: &TokenMetrics) {
    html.push_str("<h3>Tagging</h3>\n<div class=\"card\"><table class=\"facts\">");
    let mut rows = vec![
        ("sentences (windows)".to_string(), m.sentences.to_string()),
        ("labelled words".into(), m.tokens.examples.to_string()),
        ("token accuracy".into(), fmt_metric(m.accuracy())),
    ];
    if let Some(e) = &m.entities {
        let mode = match e.mode {
            kiln_metrics::EntityMode::Lenient => "seqeval default".to_string(),
            kiln_metrics::EntityMode::Strict(s) => format!("seqeval strict, {s:?}"),
        };
        rows.push(("entity mode".into(), mode));
        rows.push(("entity precision".into(), fmt_metric(e.micro.precision)));
        rows.push(("entity recall".into(), fmt_metric(e.micro.recall)));
        rows.push(("entity F1".into(), fmt_metric(e.micro.f1)));
    }
    if m.unseen_words > 0 {
        rows.push((
            "words with tags training never had (errors)".into(),
            format!("{} ({})", m.unseen_words, m.unseen_tags.join(", ")),
        ));
    }
    fact_rows(html, &rows);
    html.push_str("</table></div>\n");
    if let Some(e) = &m.entities {
        html.push_str(
            "<h3>Entities per type</h3>\n<div class=\"card scroll\"><table><tr><th>type</th><th class=\"n\">precision</th>\
             <th class=\"n\">recall</th><th class=\"n\">F1</th><th class=\"n\">support</th></tr>",
        );
        for (kind, s) in &e.per_type {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape_html(kind),
                fmt_metric(s.precision),
                fmt_metric(s.recall),
                fmt_metric(s.f1),
                s.support
            );
        }
        html.push_str("</table></div>\n");
    }
    classification_block(html, &m.tokens);
}

/// A multi-label evaluation: the summary (micro / macro / samples F1, subset accuracy,
/// Hamming loss) and each label's precision, recall and F1.
fn multi_label_block(html: &mut String, m: &MultiLabelMetrics, labels: &[String]) {
    html.push_str("<div class=\"grid2\">\n<div>\n<h3>Summary</h3>\n<div class=\"card\"><table class=\"facts\">");
    let mut rows = vec![
        ("examples".to_string(), m.examples.to_string()),
        ("micro precision".into(), fmt_metric(m.micro_precision)),
        ("micro recall".into(), fmt_metric(m.micro_recall)),
        ("micro F1".into(), fmt_metric(m.micro_f1)),
        ("macro F1".into(), fmt_metric(m.macro_f1)),
        ("samples F1".into(), fmt_metric(m.samples_f1)),
        ("subset accuracy".into(), fmt_metric(m.subset_accuracy)),
        ("Hamming loss".into(), fmt_metric(m.hamming_loss)),
    ];
    if let Some(loss) = m.loss {
        rows.push(("loss".into(), fmt_value(loss)));
    }
    fact_rows(html, &rows);
    html.push_str("</table></div>\n</div>\n<div>\n");
    html.push_str(
        "<h3>Per label</h3>\n<div class=\"card scroll\"><table><tr><th>label</th><th class=\"n\">precision</th>\
         <th class=\"n\">recall</th><th class=\"n\">F1</th><th class=\"n\">support</th></tr>",
    );
    for (i, s) in m.per_label.iter().enumerate() {
        let name = labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("label {i}"));
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape_html(&name),
            fmt_metric(s.precision),
            fmt_metric(s.recall),
            fmt_metric(s.f1),
            s.support
        );
    }
    html.push_str("</table></div>\n</div>\n</div>\n");
}

/// A regression's figures in the data's units.
fn regression_block(html: &mut String, m: &RegressionMetrics) {
    html.push_str("<h3>Summary</h3>\n<div class=\"card\"><table class=\"facts\">");
    let mut rows = vec![
        ("examples".to_string(), m.examples.to_string()),
        ("MSE".into(), fmt_value(m.mse)),
        ("RMSE".into(), fmt_value(m.mse.sqrt())),
        ("MAE".into(), fmt_value(m.mae)),
        ("Pearson r".into(), fmt_score(m.pearson)),
        ("Spearman ρ".into(), fmt_score(m.spearman)),
    ];
    if let Some(loss) = m.loss {
        rows.push(("loss (standardised values)".into(), fmt_value(loss)));
    }
    fact_rows(html, &rows);
    html.push_str("</table></div>\n");
}

/// The summary table, the per-class table and the confusion matrix of one evaluation.
fn classification_block(html: &mut String, m: &ClassificationMetrics) {
    html.push_str("<div class=\"grid2\">\n<div>\n<h3>Summary</h3>\n<div class=\"card\"><table class=\"facts\">");
    let mut rows = vec![
        ("examples".to_string(), m.examples.to_string()),
        ("accuracy".into(), fmt_metric(m.accuracy)),
        ("macro precision".into(), fmt_metric(m.precision)),
        ("macro recall".into(), fmt_metric(m.recall)),
        ("macro F1".into(), fmt_metric(m.macro_f1)),
    ];
    if let Some(loss) = m.loss {
        rows.push(("loss".into(), fmt_value(loss)));
    }
    fact_rows(html, &rows);
    html.push_str("</table></div>\n</div>\n<div>\n");

    html.push_str(
        "<h3>Per class</h3>\n<div class=\"card scroll\"><table><tr><th>label</th><th class=\"n\">precision</th>\
         <th class=\"n\">recall</th><th class=\"n\">F1</th><th class=\"n\">support</th></tr>",
    );
    for c in &m.per_class {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape_html(&c.label),
            fmt_metric(c.precision),
            fmt_metric(c.recall),
            fmt_metric(c.f1),
            c.support
        );
    }
    let support: u64 = m.per_class.iter().map(|c| c.support).sum();
    let _ = write!(
        html,
        "<tr><th>macro average</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        fmt_metric(m.precision),
        fmt_metric(m.recall),
        fmt_metric(m.macro_f1),
        support
    );
    html.push_str("</table></div>\n</div>\n</div>\n<h3>Confusion matrix</h3>\n");
    confusion_table(html, m);
}

/// The confusion matrix as a table, cells shaded by count, with the row share in small print.
fn confusion_table(html: &mut String, m: &ClassificationMetrics) {
    let n = m.confusion.len();
    if n == 0 {
        html.push_str("<p class=\"note\">No classes.</p>\n");
        return;
    }
    let label = |i: usize| escape_html(m.labels.get(i).map_or(&i.to_string(), |l| l));
    let max = m.confusion.iter().flatten().copied().max().unwrap_or(0);
    let _ = write!(
        html,
        "<div class=\"card scroll fit\"><table class=\"cm\"><tr><th></th><th class=\"axis\" colspan=\"{n}\">predicted →</th></tr>\
         <tr><th class=\"corner\">true ↓</th>"
    );
    for p in 0..n {
        let _ = write!(html, "<th class=\"n\">{}</th>", label(p));
    }
    html.push_str("</tr>");
    for (t, row) in m.confusion.iter().enumerate() {
        let row_total: u64 = row.iter().sum();
        let _ = write!(html, "<tr><th>{}</th>", label(t));
        for p in 0..n {
            let count = row.get(p).copied().unwrap_or(0);
            let shade = if max == 0 {
                0.0
            } else {
                count as f64 / max as f64
            };
            let alpha = 0.04 + 0.84 * shade;
            let text = if shade > 0.55 { "#fff" } else { "#0f172a" };
            let share = if row_total == 0 {
                String::new()
            } else {
                format!(
                    "<small>{:.1}%</small>",
                    100.0 * count as f64 / row_total as f64
                )
            };
            let _ = write!(
                html,
                "<td{} style=\"background: rgba(37, 99, 235, {:.3}); color: {text}\" title=\"true {}, predicted {}: {count}\">{count}{share}</td>",
                if t == p { " class=\"diag\"" } else { "" },
                alpha,
                label(t),
                label(p),
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></div>\n<p class=\"note\">Rows: true label; columns: predicted label; the percentage is the share of the row.</p>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_metrics::ConfusionMatrix;

    fn labels() -> Vec<String> {
        vec!["negative".into(), "positive".into(), "a<b&\"c\"".into()]
    }

    fn metrics(seed: u64, loss: Option<f64>) -> ClassificationMetrics {
        let s = seed;
        let cm = ConfusionMatrix {
            counts: vec![
                vec![410 + 3 * s, 40 - s, 12],
                vec![35 - s, 398 + 4 * s, 20],
                vec![9, 14, 62 + s],
            ],
        };
        ClassificationMetrics::compute(&cm, &labels(), loss)
    }

    fn fake_steps(n: u64, per_epoch: u64) -> Vec<StepPoint> {
        (1..=n)
            .map(|step| {
                let t = step as f64;
                // A decaying loss with deterministic noise, warmup + linear decay LR.
                let noise = ((t * 12.9898).sin() * 43758.5453).fract() * 0.25;
                let warm = (n / 10).max(1) as f64;
                let lr = if t <= warm {
                    2e-5 * t / warm
                } else {
                    2e-5 * (n as f64 - t) / (n as f64 - warm)
                };
                StepPoint {
                    step,
                    epoch: (step - 1) as f64 / per_epoch as f64,
                    loss: 0.25 + 0.45 * (-t / 80.0).exp() + noise,
                    lr,
                }
            })
            .collect()
    }

    fn fake_epochs() -> Vec<EpochPoint> {
        vec![
            EpochPoint {
                epoch: 1,
                train_loss: 0.52,
                valid: Some(TaskMetrics::from(metrics(0, Some(0.41)))),
            },
            EpochPoint {
                epoch: 2,
                train_loss: 0.33,
                valid: Some(TaskMetrics::from(metrics(6, Some(0.36)))),
            },
            EpochPoint {
                epoch: 3,
                train_loss: 0.21,
                valid: Some(TaskMetrics::from(metrics(4, Some(0.39)))),
            },
        ]
    }

    fn facts() -> Vec<(String, String)> {
        [
            ("model", "sentence-transformers/all-MiniLM-L6-v2"),
            (
                "data",
                "rotten-tomatoes (8530 train / 1066 valid / 1066 test)",
            ),
            ("strategy", "full fine-tuning, AdamW, linear warmup/decay"),
            ("epochs", "3"),
            ("wall time", "4m 12s"),
            ("samples/s", "101.4"),
            ("peak RSS", "1.9 GiB"),
            ("note", "<script>alert('x')</script> & more"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const CONFIG: &str = r#"{"model":"minilm-l6","lr":2e-5,"batch_size":32,"label":"a<b"}"#;

    /// No non-finite number and no unescaped markup from the inputs.
    #[track_caller]
    fn assert_clean(html: &str) {
        assert!(!html.contains("NaN"), "NaN in output");
        assert!(!html.contains("inf\""), "infinite attribute in output");
        assert!(!html.to_lowercase().contains("<script"), "unescaped script");
        // Nothing external: no URLs, no src= or href= at all.
        assert!(!html.contains("http") && !html.contains("src=") && !html.contains("href="));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    }

    #[test]
    fn full_report() {
        let steps = fake_steps(300, 100);
        let epochs = fake_epochs();
        let test = metrics(5, Some(0.37));
        let test_task = TaskMetrics::from(test.clone());
        let facts = facts();
        let input = ReportInput {
            title: "kiln fine-tuning: minilm-l6 on rotten-tomatoes <&>",
            facts: &facts,
            steps: &steps,
            epochs: &epochs,
            best_epoch: Some(2),
            evals: &[],
            best_step: None,
            test: Some(&test_task),
            config_json: CONFIG,
            drift: &[
                PartDrift {
                    part: "embeddings".into(),
                    relative_change: 0.004,
                    cka: Some(0.987),
                },
                PartDrift {
                    part: "layer 0 <&>".into(),
                    relative_change: 0.012,
                    cka: None,
                },
            ],
            labels: &[],
        };
        let html = render(&input);
        assert_clean(&html);
        for needle in [
            "id=\"drift\"",
            "<td>layer 0 &lt;&amp;&gt;</td><td class=\"n\">1.200%</td>",
            "width:33.3%",
            "<td class=\"n\">0.987</td>",
            "<td class=\"n\">—</td>",
            "id=\"training\"",
            "Training loss per step",
            "Learning rate per step",
            "id=\"validation\"",
            "Validation accuracy and macro-F1",
            "Loss per epoch",
            "best: epoch 2",
            "id=\"test\"",
            "Confusion matrix",
            "macro F1",
            "<details>",
            "peak RSS",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        // Escaping of the title, facts, labels and config.
        assert!(html.contains("minilm-l6 on rotten-tomatoes &lt;&amp;&gt;"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
        assert!(html.contains("a&lt;b&amp;&quot;c&quot;"));
        assert!(!html.contains("a<b&\"c\""));
        assert!(
            html.contains("&quot;label&quot;:&quot;a&lt;b&quot;"),
            "config escaped"
        );
        // Charts: 4 SVGs with paths, circles and ticks; LR ticks in scientific notation.
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains("<path d=\"M"));
        assert!(html.contains("<circle"));
        assert!(html.contains("e-5<"), "LR tick labels like 2e-5");
        // The test metrics numbers.
        assert!(html.contains(&fmt_metric(test.accuracy)));
        assert!(html.contains(&fmt_metric(test.macro_f1)));
        assert!(html.contains("class=\"best\""));

        // `KILN_REPORT_SAMPLE=/tmp/report-sample.html cargo test …` writes the page, to look at.
        if let Some(path) = std::env::var_os("KILN_REPORT_SAMPLE") {
            std::fs::write(path, &html).unwrap();
        }
    }

    #[test]
    fn edge_cases_do_not_panic() {
        let facts = facts();
        let one_epoch = vec![EpochPoint {
            epoch: 1,
            train_loss: 0.5,
            valid: Some(TaskMetrics::from(metrics(0, None))),
        }];
        let no_valid = vec![
            EpochPoint {
                epoch: 1,
                train_loss: f64::NAN,
                valid: None,
            },
            EpochPoint {
                epoch: 2,
                train_loss: 0.4,
                valid: None,
            },
        ];
        let one_step = fake_steps(1, 1);
        let mut weird_steps = fake_steps(50, 10);
        weird_steps[3].loss = f64::NAN;
        weird_steps[4].loss = f64::INFINITY;
        weird_steps[10].lr = f64::NEG_INFINITY;
        let flat: Vec<StepPoint> = (0..40)
            .map(|i| StepPoint {
                step: i,
                epoch: 0.0,
                loss: 0.7,
                lr: 1e-4,
            })
            .collect();
        let all_nan: Vec<StepPoint> = (0..5)
            .map(|i| StepPoint {
                step: i,
                epoch: f64::NAN,
                loss: f64::NAN,
                lr: f64::NAN,
            })
            .collect();
        let empty_metrics = TaskMetrics::from(ClassificationMetrics::compute(
            &ConfusionMatrix::new(0),
            &[],
            None,
        ));
        let input = |steps, epochs, best_epoch, test| ReportInput {
            title: "edge",
            facts: &facts,
            steps,
            epochs,
            evals: &[],
            best_epoch,
            best_step: None,
            test,
            config_json: "not json <at all>",
            drift: &[],
            labels: &[],
        };
        let cases = [
            input(&[], &[], None, None),
            input(&[], &one_epoch, Some(1), None),
            input(&one_step, &one_epoch, Some(1), None),
            input(&weird_steps, &no_valid, Some(7), None),
            input(&flat, &no_valid, None, Some(&empty_metrics)),
            input(&all_nan, &one_epoch, None, None),
        ];
        for case in &cases {
            let html = render(case);
            assert_clean(&html);
            assert!(html.contains("not json &lt;at all&gt;"));
        }
        // No test set: the best epoch's validation metrics stand in.
        let html = render(&ReportInput {
            title: "t",
            facts: &[],
            steps: &one_step,
            epochs: &one_epoch,
            best_epoch: Some(1),
            evals: &[],
            best_step: None,
            test: None,
            config_json: "{}",
            drift: &[],
            labels: &[],
        });
        assert!(html.contains("No test set was evaluated"));
        assert!(html.contains("Validation metrics of the best epoch (1)"));
    }

    #[test]
    fn chart_edge_cases() {
        let opts = ChartOptions::new("t", "x", "y");
        let none = line_chart(&[], &opts);
        assert!(none.contains("no data") && none.ends_with("</svg>"));
        let nan = line_chart(
            &[Series::new(
                "s",
                "red",
                vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)],
            )],
            &opts,
        );
        assert!(nan.contains("no data"));
        let one = line_chart(&[Series::new("s", "red", vec![(3.0, 0.5)])], &opts);
        assert!(one.contains("<circle"), "a lone point is drawn as a dot");
        let flat = line_chart(
            &[Series::new(
                "s",
                "red",
                vec![(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)],
            )],
            &opts,
        );
        assert!(flat.contains("<path d=\"M"));
        let zero = line_chart(
            &[Series::new("s", "red", vec![(0.0, 0.0), (0.0, 0.0)])],
            &opts,
        );
        assert!(zero.contains("<path d=\"M"));
        let huge = line_chart(
            &[Series::new(
                "s",
                "red",
                vec![(0.0, -f64::MAX), (1.0, f64::MAX)],
            )],
            &opts,
        );
        assert!(huge.contains("no data"));
        // A gap splits the line into two subpaths.
        let gap = line_chart(
            &[Series::new(
                "s",
                "red",
                vec![
                    (0.0, 1.0),
                    (1.0, 2.0),
                    (2.0, f64::NAN),
                    (3.0, 1.0),
                    (4.0, 0.5),
                ],
            )],
            &opts,
        );
        assert_eq!(
            gap.matches('M').count(),
            2 + 1,
            "two subpaths and the axis: {gap}"
        );
        for svg in [none, nan, one, flat, zero, huge, gap] {
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn long_series_are_downsampled() {
        let points: Vec<(f64, f64)> = (0..50_000)
            .map(|i| (i as f64, (i as f64 / 1000.0).sin()))
            .collect();
        let down = downsample(&points);
        assert!(down.len() <= BUCKETS && down.len() > BUCKETS / 2);
        // The shape survives: the extremes stay near ±1.
        let max = down.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        assert!(max > 0.95, "{max}");
        let svg = line_chart(
            &[Series::new("s", "red", points)],
            &ChartOptions::new("t", "x", "y"),
        );
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
    }

    #[test]
    fn ticks_are_nice_and_readable() {
        let a = nice_axis(0.0, 2e-5, 5, false);
        assert_eq!(tick_labels(&a), ["0", "5e-6", "1e-5", "1.5e-5", "2e-5"]);
        let a = nice_axis(0.23, 0.71, 5, false);
        assert_eq!(
            tick_labels(&a),
            ["0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8"]
        );
        let a = nice_axis(1.0, 3.0, 6, true);
        assert_eq!(tick_labels(&a), ["1", "2", "3"]);
        let a = nice_axis(1.0, 300.0, 6, true);
        assert_eq!(
            tick_labels(&a),
            ["0", "50", "100", "150", "200", "250", "300"]
        );
        let a = nice_axis(5.0, 5.0, 6, true);
        assert_eq!(tick_labels(&a), ["4", "5", "6"]);
        let a = nice_axis(-0.3, 0.1, 4, false);
        assert_eq!(tick_labels(&a), ["-0.3", "-0.2", "-0.1", "0", "0.1"]);
        let a = nice_axis(1e-4, 1e-4, 5, false);
        let labels = tick_labels(&a);
        assert!(labels.iter().all(|l| l.contains("e-")), "{labels:?}");
        assert_eq!(escape_html("a<b&\"c\"'"), "a&lt;b&amp;&quot;c&quot;&#39;");
    }

    #[test]
    fn a_multi_label_test_set_shows_its_summary_and_each_label() {
        let truth = [vec![true, false], vec![true, true], vec![false, true]];
        let predicted = [vec![true, false], vec![false, true], vec![false, true]];
        let m = MultiLabelMetrics::new(&truth, &predicted, Some(0.25)).unwrap();
        let test = TaskMetrics::from(m);
        let labels = ["sports".to_string(), "<politics>".to_string()];
        let html = render(&ReportInput {
            title: "multi",
            facts: &[],
            steps: &[],
            epochs: &[],
            evals: &[],
            best_epoch: None,
            best_step: None,
            test: Some(&test),
            config_json: "{}",
            drift: &[],
            labels: &labels,
        });
        assert_clean(&html);
        for needle in [
            "<th>micro F1</th><td class=\"n\">0.8571</td>",
            "<th>subset accuracy</th><td class=\"n\">0.6667</td>",
            "<td>sports</td><td class=\"n\">1.0000</td><td class=\"n\">0.5000</td>",
            "<td>&lt;politics&gt;</td>",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
    }

    #[test]
    fn a_token_test_set_shows_words_entities_per_type_and_tags() {
        let tags: Vec<String> = ["O", "B-PER", "I-PER", "B-<LOC>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // The last tag is only in the test split: training never had it.
        let m = TokenMetrics::new(
            &[vec![1, 2, 0], vec![3, 0]],
            &[vec![1, 2, 0], vec![0, 0]],
            &tags,
            3,
            false,
            Some(0.3),
        )
        .unwrap();
        let test = TaskMetrics::from(m);
        let html = render(&ReportInput {
            title: "tags",
            facts: &[],
            steps: &[],
            epochs: &[],
            evals: &[],
            best_epoch: None,
            best_step: None,
            test: Some(&test),
            config_json: "{}",
            drift: &[],
            labels: &tags,
        });
        assert_clean(&html);
        for needle in [
            "<th>labelled words</th><td class=\"n\">5</td>",
            "<th>token accuracy</th><td class=\"n\">0.8000</td>",
            "<th>entity recall</th><td class=\"n\">0.5000</td>",
            "<td>PER</td><td class=\"n\">1.0000</td>",
            "1 (B-&lt;LOC&gt;)",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
    }
}
