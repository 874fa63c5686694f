//! The OCI state a runtime writes to a hook's standard input: which container, its process,
//! its bundle and annotations. Parsed strictly: a hook that misreads its input must fail, so
//! the container does not start.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

/// Largest state document read (runtimes send well under 4 KiB; annotations are the bulk).
pub const MAX_STATE: usize = 256 * 1024;

/// Longest container id accepted (runtimes use 64 hex digits).
const MAX_ID: usize = 128;

/// Why a state document was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// More than [`MAX_STATE`] bytes.
    #[error("the container state is {0} bytes, more than the {MAX_STATE} a hook reads")]
    TooLarge(usize),
    /// Not JSON, or not the OCI state's shape.
    #[error("the container state is not OCI state JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The id is empty, too long, or holds bytes a runtime never puts in one.
    #[error(
        "the container id {0:?} is not one a runtime makes (1 to {MAX_ID} of A-Z a-z 0-9 _ + - .)"
    )]
    Id(String),
    /// The stage needs the container's process, and the state has none.
    #[error("the container state names no process (pid): the hook must run at createRuntime or prestart")]
    NoPid,
    /// The bundle is not an absolute path.
    #[error("the container's bundle {0:?} is not an absolute path")]
    Bundle(PathBuf),
}

/// A container's state, as a hook receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The container's id (unique on the host).
    pub id: String,
    /// The runtime's status for it: `creating` at `createRuntime` and `prestart`, `running`
    /// at `poststart`, `stopped` at `poststop`.
    pub status: String,
    /// The container's process, while it has one (absent at `poststop`).
    pub pid: Option<u32>,
    /// The bundle directory, holding `config.json`.
    pub bundle: PathBuf,
    /// The container's annotations.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Wire {
    id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    pid: Option<u32>,
    bundle: PathBuf,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl State {
    /// Parses the state document `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, StateError> {
        if bytes.len() > MAX_STATE {
            return Err(StateError::TooLarge(bytes.len()));
        }
        let wire: Wire = serde_json::from_slice(bytes)?;
        if !valid_id(&wire.id) {
            return Err(StateError::Id(wire.id));
        }
        if !wire.bundle.is_absolute() {
            return Err(StateError::Bundle(wire.bundle));
        }
        Ok(Self {
            id: wire.id,
            status: wire.status,
            // A pid of 0 is what some runtimes write once the process is gone.
            pid: wire.pid.filter(|&pid| pid > 0),
            bundle: wire.bundle,
            annotations: wire.annotations,
        })
    }

    /// The container's process, for the stages that need one.
    pub fn require_pid(&self) -> Result<u32, StateError> {
        self.pid.ok_or(StateError::NoPid)
    }

    /// The bundle's `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.bundle.join("config.json")
    }
}

/// Whether `id` is a container id a runtime makes: runc allows `[\w+-.]` and nothing that
/// could be a path.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}
