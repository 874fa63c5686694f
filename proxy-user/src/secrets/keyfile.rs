//! Key files: 32 random bytes as 64 hex digits in a file only its owner may read. The master
//! key and the TCP API key are kept this way.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::Path,
};

use zeroize::Zeroizing;

use super::{crypto, MasterKey, SecretError};

/// Length of the keys kept in key files, in bytes.
pub const LEN: usize = 32;

/// The master key: read from `supplied` when the operator gives one (it must exist), else from
/// `default` in the state directory, created there on first start.
pub fn master_key(default: &Path, supplied: Option<&Path>) -> Result<MasterKey, SecretError> {
    let bytes = match supplied {
        Some(path) => read(path, "master key")?,
        None => read_or_create(default, "master key")?,
    };
    MasterKey::new(&bytes)
}

/// Reads the key in `path`, creating the file with a fresh random key (mode 0600) if it does
/// not exist yet. Refuses a file that group or others may access.
pub fn read_or_create(
    path: &Path,
    what: &'static str,
) -> Result<Zeroizing<[u8; LEN]>, SecretError> {
    match read(path, what) {
        Err(SecretError::Io { cause, .. }) if cause.kind() == io::ErrorKind::NotFound => {
            create(path, what)
        }
        other => other,
    }
}

/// Reads the key in `path`. Refuses a file that group or others may access, or one that does
/// not hold exactly 64 hex digits (surrounding whitespace aside).
pub fn read(path: &Path, what: &'static str) -> Result<Zeroizing<[u8; LEN]>, SecretError> {
    let io_err = |cause| SecretError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mode = file.metadata().map_err(io_err)?.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::KeyFile {
            what,
            path: path.to_path_buf(),
            problem: format!(
                "group or others may access it (mode {mode:04o}); it must be readable by its \
                 owner only: chmod 600 {}",
                path.display()
            ),
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(io_err)?;
    let mut key = Zeroizing::new([0; LEN]);
    hex::decode_to_slice(text.trim(), key.as_mut_slice()).map_err(|_| SecretError::KeyFile {
        what,
        path: path.to_path_buf(),
        problem: format!(
            "it must hold {} hex digits (make one with `openssl rand -hex {LEN}`)",
            LEN * 2
        ),
    })?;
    Ok(key)
}

/// Creates `path` with a fresh random key, mode 0600, durably.
fn create(path: &Path, what: &'static str) -> Result<Zeroizing<[u8; LEN]>, SecretError> {
    let io_err = |cause| SecretError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let key = Zeroizing::new(crypto::random::<LEN>()?);
    let mut text = Zeroizing::new(hex::encode(key.as_slice()));
    text.push('\n');
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    file.write_all(text.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)?;
    }
    log::info!("created the {what} in {}", path.display());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt};

    use super::*;

    #[test]
    fn creates_once_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = read_or_create(&path, "test key").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let again = read_or_create(&path, "test key").unwrap();
        assert_eq!(*first, *again);
        assert_eq!(*read(&path, "test key").unwrap(), *first);
    }

    #[test]
    fn refuses_files_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "00".repeat(LEN)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read(&path, "master key").unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
            assert!(err.contains("master key"), "{err}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(*read(&path, "master key").unwrap(), [0; LEN]);
    }

    #[test]
    fn refuses_bad_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        for bad in ["", "00", &"zz".repeat(LEN), &"00".repeat(LEN + 1)] {
            fs::write(&path, bad).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = read(&path, "master key").unwrap_err().to_string();
            assert!(err.contains("64 hex digits"), "{bad:?}: {err}");
        }
        fs::write(&path, format!("  {}\n", "ab".repeat(LEN))).unwrap();
        assert_eq!(*read(&path, "master key").unwrap(), [0xab; LEN]);
    }
}
