//! Files that are never half-written: staged output renamed into place, atomic writes, the
//! directory swap, and the sha256 of a file. Every kiln crate that writes a result (exported
//! models, resume checkpoints, the fetch cache, a run's files) goes through these, so each
//! guarantee is written once.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::ModelError;

/// Mode bits asked of the kernel for staged files and directories. tempfile makes its files
/// 0600, right for scratch data but not for results that are renamed into place and must be as
/// readable as any other tool's output: the kernel takes the umask off these bits (0644 and
/// 0755 under umask 022), so nothing here reads or changes the umask itself.
const FILE_MODE: u32 = 0o666;
const DIR_MODE: u32 = 0o777;

fn staging_builder(prefix: &str, mode: u32) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder
}

/// A temporary directory in `parent` (named `PREFIX…`) for output that is assembled there and
/// then renamed into place. It takes the umask like a plain `mkdir`, so the renamed directory
/// is as readable as the rest of the user's files; it is removed on drop unless kept.
pub fn staging_dir(parent: &Path, prefix: &str) -> std::io::Result<tempfile::TempDir> {
    staging_builder(prefix, DIR_MODE).tempdir_in(parent)
}

/// Writes `path` atomically: `fill` writes the content into a temp file beside it (mode
/// 0666 less the umask), which is fsynced and renamed over `path`. A reader sees the old file
/// or the new one, never a part.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ModelError> {
    let save_err = |e: std::io::Error| ModelError::Save {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = staging_builder(".tmp", FILE_MODE)
        .tempfile_in(parent)
        .map_err(save_err)?;
    fill(tmp.as_file_mut()).map_err(save_err)?;
    tmp.as_file().sync_all().map_err(save_err)?;
    tmp.persist(path).map_err(|e| save_err(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    use std::io::Write;
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Puts the complete directory `staged` at `dest`: an existing `dest` is moved aside first and
/// removed only once the new one is in place, and put back if the rename fails. A reader sees
/// the old directory or the new one, never a mix.
pub fn swap_dir(staged: &Path, dest: &Path) -> std::io::Result<()> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
    let old = parent.join(format!(".kiln-old-{name}"));
    let moved_aside = match std::fs::symlink_metadata(dest) {
        Ok(_) => {
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(dest, &old)?;
            true
        }
        Err(_) => false,
    };
    if let Err(e) = std::fs::rename(staged, dest) {
        if moved_aside {
            let _ = std::fs::rename(&old, dest);
        }
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(parent) {
        // The rename itself reaches the disk (the directory entry), not only the files.
        let _ = d.sync_all();
    }
    if moved_aside {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Lowercase hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_replaces_the_whole_directory_and_leaves_nothing_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("model");
        for (round, file) in ["first.txt", "second.txt"].iter().enumerate() {
            let staging = staging_dir(tmp.path(), ".staging-").unwrap();
            std::fs::write(staging.path().join(file), round.to_string()).unwrap();
            swap_dir(&staging.keep(), &dest).unwrap();
        }
        // The second swap replaced the first directory whole: no file of it is left.
        assert!(dest.join("second.txt").is_file() && !dest.join("first.txt").exists());
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["model".to_string()]);
    }

    #[test]
    fn a_failed_swap_keeps_the_old_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("model");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("kept.txt"), "old").unwrap();
        assert!(swap_dir(&tmp.path().join("missing"), &dest).is_err());
        assert_eq!(
            std::fs::read_to_string(dest.join("kept.txt")).unwrap(),
            "old"
        );
    }

    #[test]
    fn sha256_of_a_known_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("abc");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
