//! Options in layers, for the commands that start runs (`kiln train`, `kiln distill`):
//! defaults (each type's own: `TrainConfig::default()` for the recipe) < the run's record
//! (`--resume DIR`: `DIR/config.toml`) < `--config FILE` < flags. A file's keys are the flags'
//! names and its values go through the flag's own parser, so every layer is checked the same
//! way and a new option needs no code here; the merged options are written back through serde
//! as the run's record.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Arg, ArgAction, Command, FromArgMatches};

/// Options that name files and modes, not settings: never read from a file.
const NOT_IN_FILES: &[&str] = &["config", "resume", "overwrite", "help"];

/// A command's options with the files they name applied.
#[derive(Debug)]
pub struct Layered<T> {
    /// Flags over `--config FILE` over the run's record.
    pub options: T,
    /// The record alone, with `--resume`: the options the run was started with.
    pub saved: Option<T>,
}

/// Parses `args` (the words after the subcommand's name) as `command` would, after putting
/// the record of `resume` (when given) and the `config` file (when given) in front of them;
/// `command` must let later flags override earlier ones (`args_override_self`).
pub fn layered<T: FromArgMatches>(
    command: &Command,
    args: &[OsString],
    resume: Option<&Path>,
    config: Option<&Path>,
) -> Result<Layered<T>> {
    let record = resume.map(record_of).transpose()?;
    let record_flags = match &record {
        Some(path) => file_flags(command, path)?,
        None => Vec::new(),
    };
    let config_flags = match config {
        Some(path) => file_flags(command, path)?,
        None => Vec::new(),
    };
    let saved = match &record {
        Some(path) => Some(
            parse(command, &record_flags)
                .with_context(|| format!("reading the run's options from {}", path.display()))?,
        ),
        None => None,
    };
    let mut all = record_flags;
    all.extend(config_flags);
    all.extend(args.iter().cloned());
    let options = match (&record, config) {
        (None, None) => parse(command, &all)?,
        _ => parse(command, &all).context("the flags do not fit the options of the files")?,
    };
    Ok(Layered { options, saved })
}

/// `DIR/config.toml` of a run that can be resumed.
fn record_of(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("--resume {}: no such directory", dir.display());
    }
    if dir.join("metrics.json").exists() {
        bail!(
            "--resume {}: that run finished (metrics.json); nothing to resume — pass --overwrite \
             without --resume to train it again from scratch",
            dir.display()
        );
    }
    let path = dir.join("config.toml");
    if !path.is_file() {
        bail!(
            "--resume {}: {} is missing, so the run's options are unknown",
            dir.display(),
            path.display()
        );
    }
    Ok(path)
}

fn parse<T: FromArgMatches>(command: &Command, args: &[OsString]) -> Result<T> {
    let argv = std::iter::once(OsString::from(command.get_name())).chain(args.iter().cloned());
    let matches = command
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| anyhow::anyhow!(usage_line(&e)))?;
    T::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!(usage_line(&e)))
}

/// A TOML file of options as flags (`--key=value`), each key an option of `command` and each
/// value checked by that option's parser; errors name the file and the key.
pub fn file_flags(command: &Command, path: &Path) -> Result<Vec<OsString>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    table_flags(command, &table, path)
}

/// [`file_flags`] of a table already read from `path` (named in the errors).
pub fn table_flags(command: &Command, table: &toml::Table, path: &Path) -> Result<Vec<OsString>> {
    let mut flags = Vec::with_capacity(table.len());
    for (key, value) in table {
        let arg = command
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(key.as_str())
                    || a.get_all_aliases()
                        .is_some_and(|aliases| aliases.contains(&key.as_str()))
            })
            .filter(|a| !NOT_IN_FILES.contains(&a.get_id().as_str()));
        let Some(arg) = arg else {
            let kebab = key.replace('_', "-");
            let hint = if key == "teacher" {
                " (a distillation's record: resume it with kiln distill)".to_string()
            } else if kebab != *key
                && command
                    .get_arguments()
                    .any(|a| a.get_long() == Some(&kebab))
            {
                format!(" (keys are the flags' names: `{kebab}`)")
            } else {
                String::new()
            };
            bail!(
                "{}: `{key}` is not an option of kiln {}{hint}",
                path.display(),
                command.get_name()
            );
        };
        let text =
            flag_text(value).with_context(|| format!("{}: `{key}` = {value}", path.display()))?;
        let flag = format!("--{}={text}", arg.get_long().unwrap_or(key));
        // The value through the flag's own parser, alone (its relations to other flags are
        // checked once every layer is in place).
        let probe = Command::new(command.get_name().to_string())
            .no_binary_name(true)
            .arg(
                Arg::new(arg.get_id().clone())
                    .long(arg.get_long().unwrap_or(key).to_string())
                    .value_parser(arg.get_value_parser().clone())
                    .value_delimiter(arg.get_value_delimiter())
                    .action(ArgAction::Set),
            );
        probe.try_get_matches_from([&flag]).map_err(|e| {
            anyhow::anyhow!("{}: `{key}` = {value}: {}", path.display(), usage_line(&e))
        })?;
        flags.push(OsString::from(flag));
    }
    Ok(flags)
}

/// A TOML value as the flag spells it: strings bare, lists comma-separated.
fn flag_text(value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(flag_text)
            .collect::<Result<Vec<_>>>()?
            .join(","),
        toml::Value::Datetime(_) | toml::Value::Table(_) => {
            bail!("expected a string, number, boolean or list")
        }
    })
}

/// A clap error as one line, like every other error of kiln's (`error: invalid value 'magic'
/// for '--strategy <STRATEGY>' [possible values: full, head, …]`).
pub fn usage_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !(l.is_empty() || l.starts_with("For more information") || l.starts_with("Usage:"))
        })
        .collect();
    lines.join(" ").trim_start_matches("error: ").to_string()
}

/// A library error in the command line's words, where it names an option by its field
/// (`lr must be positive` → `--lr must be positive`); none for other errors.
pub fn in_flags(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use kiln_data::DataError;
    use kiln_train::TrainError;
    if let Some(e) = error.downcast_ref::<TrainError>() {
        return match e {
            TrainError::Invalid { field, problem } => Some(format!("{} {problem}", flags(field))),
            TrainError::NonFinite { .. } => {
                Some(format!("{e} (flags --lr, --grad-clip, --max-bad-steps)"))
            }
            // Loss errors start with the field at fault: `label_smoothing must be …`.
            TrainError::Loss(loss) => {
                let message = loss.to_string();
                message
                    .split_once(' ')
                    .map(|(field, rest)| format!("{} {rest}", flags(field)))
            }
            TrainError::Data(data) => in_flags(data),
            TrainError::Interrupted { .. } => Some(format!("{e} (continue with --resume)")),
            _ => None,
        };
    }
    match error.downcast_ref::<DataError>() {
        Some(DataError::Invalid { what, message }) => Some(format!("{}: {message}", flags(what))),
        _ => None,
    }
}

/// Each field named in `text` (`valid_ratio + test_ratio`) as its flag.
fn flags(text: &str) -> String {
    text.split(" + ")
        .map(|field| format!("--{}", field.replace('_', "-")))
        .collect::<Vec<_>>()
        .join(" + ")
}
