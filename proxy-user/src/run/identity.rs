//! Who a sandboxed command is, outside and inside its user namespace.
//!
//! Isolated (the default), the command never runs as root on the host: bubblewrap starts as an
//! unprivileged host user and maps it to uid 0 inside. That host user is the one `--user`
//! names, else the owner of the working directory when that is not root (a developer's
//! checkout stays theirs), else `nobody`. With `--user`, the command is that user inside too.
//! Without isolation the command runs as root, or as the `--user`, as it would on the host.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use nix::unistd::{Gid, Uid, User};

/// The host's `nobody`, which an isolated command runs as when nobody better is known.
const NOBODY: u32 = 65534;

/// Errors finding who the command runs as.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The `--user` value names nobody.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// `--user root` with isolation, which would give the command root on the host.
    #[error(
        "--user {0} is root: an isolated command runs as an unprivileged host user (it is root \
         only inside its user namespace); name another user, or leave --user out"
    )]
    Root(String),
    /// The working directory cannot be inspected.
    #[error("reading the working directory {dir}")]
    Cwd {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A uid and gid pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
}

/// Who the command is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// What veil switches to before starting the command (or bubblewrap); `None` keeps root
    /// (only without isolation and without `--user`).
    pub outside: Option<Ids>,
    /// The ids the command has inside its user namespace (isolated only).
    pub inside: Ids,
    /// `HOME` for the command.
    pub home: PathBuf,
    /// Whether `HOME` is made empty and writable in the sandbox (isolated: the homes are
    /// private there).
    pub private_home: bool,
}

impl Identity {
    /// Who runs the command: `user` is `--user`'s value, `cwd` the working directory.
    pub fn resolve(user: Option<&str>, isolated: bool, cwd: &Path) -> Result<Self, IdentityError> {
        let root = Ids {
            uid: Uid::from_raw(0),
            gid: Gid::from_raw(0),
        };
        let Some(spec) = user else {
            let outside = if isolated { Some(owner_of(cwd)?) } else { None };
            return Ok(Self {
                outside,
                inside: root,
                home: PathBuf::from("/root"),
                private_home: isolated,
            });
        };
        let found = match spec.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(spec),
        };
        let user = found
            .ok()
            .flatten()
            .ok_or_else(|| IdentityError::NoSuchUser(spec.to_owned()))?;
        if isolated && user.uid.is_root() {
            return Err(IdentityError::Root(spec.to_owned()));
        }
        let ids = Ids {
            uid: user.uid,
            gid: user.gid,
        };
        Ok(Self {
            outside: Some(ids),
            inside: ids,
            home: user.dir,
            private_home: isolated,
        })
    }
}

/// The owner of `dir` and their primary group, or `nobody` when that is root.
fn owner_of(dir: &Path) -> Result<Ids, IdentityError> {
    let meta = std::fs::metadata(dir).map_err(|source| IdentityError::Cwd {
        dir: dir.to_path_buf(),
        source,
    })?;
    if meta.uid() == 0 {
        return Ok(Ids {
            uid: Uid::from_raw(NOBODY),
            gid: Gid::from_raw(NOBODY),
        });
    }
    let uid = Uid::from_raw(meta.uid());
    let gid = User::from_uid(uid)
        .ok()
        .flatten()
        .map_or(Gid::from_raw(meta.gid()), |user| user.gid);
    Ok(Ids { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_root_in_a_root_directory_is_nobody_outside() {
        let id = Identity::resolve(None, true, Path::new("/")).expect("an identity");
        assert_eq!(id.outside.map(|ids| ids.uid.as_raw()), Some(NOBODY));
        assert!(id.inside.uid.is_root());
        assert!(id.private_home);
    }

    #[test]
    fn isolated_root_in_a_users_directory_is_that_user_outside() {
        let dir = tempfile::tempdir().expect("a directory");
        std::os::unix::fs::chown(dir.path(), Some(1234), Some(1234)).expect("chown");
        let id = Identity::resolve(None, true, dir.path()).expect("an identity");
        assert_eq!(
            id.outside,
            Some(Ids {
                uid: Uid::from_raw(1234),
                gid: Gid::from_raw(1234)
            })
        );
    }

    #[test]
    fn user_root_is_refused_only_with_isolation() {
        assert!(matches!(
            Identity::resolve(Some("root"), true, Path::new("/")),
            Err(IdentityError::Root(_))
        ));
        let plain = Identity::resolve(Some("0"), false, Path::new("/")).expect("root");
        assert!(plain.inside.uid.is_root());
        let none = Identity::resolve(None, false, Path::new("/")).expect("root");
        assert_eq!(none.outside, None);
        assert!(matches!(
            Identity::resolve(Some("no-such-user-here"), true, Path::new("/")),
            Err(IdentityError::NoSuchUser(_))
        ));
    }

    #[test]
    fn a_named_user_is_the_same_user_inside() {
        let id = Identity::resolve(Some("nobody"), true, Path::new("/")).expect("nobody");
        assert_eq!(id.outside, Some(id.inside));
        assert_eq!(id.inside.uid.as_raw(), NOBODY);
        assert!(id.private_home);
    }
}
