//! What veil reads and changes in a bundle's `config.json` (the OCI runtime spec): whether
//! the container has a network namespace of its own, the capabilities that would take a
//! workload around the proxy, annotations, and veil's hooks. The document is kept as JSON and
//! written back with every field veil does not know left as it was.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

/// Largest `config.json` read.
pub const MAX_SPEC: usize = 4 * 1024 * 1024;

/// Capabilities a sandboxed container must not hold, and why: each is a way around the
/// kernel hooks that send every connect through veil.
pub const FORBIDDEN_CAPABILITIES: [(&str, &str); 9] = [
    (
        "CAP_NET_RAW",
        "packet sockets send frames the socket hooks never see",
    ),
    ("CAP_NET_ADMIN", "it reconfigures the container's network"),
    (
        "CAP_SYS_ADMIN",
        "it mounts the cgroup tree and detaches veil's programs",
    ),
    ("CAP_BPF", "it loads and detaches BPF programs"),
    ("CAP_PERFMON", "it reads kernel memory through perf and BPF"),
    ("CAP_SYS_MODULE", "it loads kernel modules"),
    ("CAP_SYS_RAWIO", "it reaches devices and memory directly"),
    (
        "CAP_DAC_READ_SEARCH",
        "open_by_handle_at reads host files outside the container",
    ),
    ("CAP_SYS_PTRACE", "it attaches to other processes"),
];

/// The numbers of [`FORBIDDEN_CAPABILITIES`], in the same order (linux/capability.h).
const FORBIDDEN_NUMBERS: [u32; 9] = [13, 12, 21, 39, 38, 16, 17, 2, 19];

/// The [`FORBIDDEN_CAPABILITIES`] set in `mask`, a capability bit mask such as `CapBnd` in
/// `/proc/PID/status`.
pub fn forbidden_in_mask(mask: u64) -> Vec<(&'static str, &'static str)> {
    FORBIDDEN_CAPABILITIES
        .iter()
        .zip(FORBIDDEN_NUMBERS)
        .filter(|(_, bit)| mask & (1 << bit) != 0)
        .map(|(cap, _)| *cap)
        .collect()
}

/// The capability sets of a spec's process.
const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// Why a `config.json` was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// More than [`MAX_SPEC`] bytes.
    #[error("config.json is {0} bytes, more than the {MAX_SPEC} veil reads")]
    TooLarge(usize),
    /// Not JSON.
    #[error("config.json is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON of the wrong shape at `field`.
    #[error("config.json: {field} is not {expected}")]
    Shape {
        /// The JSON path of the field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
}

/// The network namespace a container's spec asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// A new namespace of its own (the runtime makes it).
    Own,
    /// An existing namespace at this path (Podman's and CNI's pre-made namespaces).
    Joined(String),
    /// No network namespace entry: the container shares the runtime's, the host's.
    Host,
}

/// A bundle's `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    doc: Map<String, Value>,
}

/// One hook entry (`path`, `args`, `timeout`), as the spec defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// The absolute path of the program.
    pub path: String,
    /// Its whole argument vector, `argv[0]` first.
    pub args: Vec<String>,
    /// Seconds the runtime waits before it fails the hook.
    pub timeout: Option<u32>,
}

impl Spec {
    /// Parses `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, SpecError> {
        if bytes.len() > MAX_SPEC {
            return Err(SpecError::TooLarge(bytes.len()));
        }
        match serde_json::from_slice(bytes)? {
            Value::Object(doc) => Ok(Self { doc }),
            _ => Err(SpecError::Shape {
                field: "the document",
                expected: "an object",
            }),
        }
    }

    /// The document, to write back.
    pub fn to_vec(&self) -> Result<Vec<u8>, SpecError> {
        Ok(serde_json::to_vec_pretty(&self.doc)?)
    }

    /// The network namespace the container gets.
    pub fn network(&self) -> Result<Network, SpecError> {
        let namespaces = match self.doc.get("linux").and_then(|l| l.get("namespaces")) {
            None | Some(Value::Null) => return Ok(Network::Host),
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(SpecError::Shape {
                    field: "linux.namespaces",
                    expected: "an array",
                })
            }
        };
        for ns in namespaces {
            if ns.get("type").and_then(Value::as_str) != Some("network") {
                continue;
            }
            return Ok(match ns.get("path").and_then(Value::as_str) {
                Some(path) if !path.is_empty() => Network::Joined(path.to_owned()),
                _ => Network::Own,
            });
        }
        Ok(Network::Host)
    }

    /// Every capability the process holds in any set.
    pub fn capabilities(&self) -> Result<BTreeSet<String>, SpecError> {
        let mut all = BTreeSet::new();
        let Some(caps) = self.capability_object()? else {
            return Ok(all);
        };
        for set in CAPABILITY_SETS {
            match caps.get(set) {
                None | Some(Value::Null) => {}
                Some(Value::Array(names)) => {
                    for name in names {
                        let Some(name) = name.as_str() else {
                            return Err(SpecError::Shape {
                                field: "process.capabilities",
                                expected: "lists of capability names",
                            });
                        };
                        all.insert(name.to_ascii_uppercase());
                    }
                }
                Some(_) => {
                    return Err(SpecError::Shape {
                        field: "process.capabilities",
                        expected: "lists of capability names",
                    })
                }
            }
        }
        Ok(all)
    }

    /// The capabilities in [`FORBIDDEN_CAPABILITIES`] the process holds, with the reason.
    pub fn forbidden_capabilities(&self) -> Result<Vec<(&'static str, &'static str)>, SpecError> {
        let held = self.capabilities()?;
        Ok(FORBIDDEN_CAPABILITIES
            .iter()
            .filter(|(name, _)| held.contains(*name))
            .copied()
            .collect())
    }

    /// Takes `name` out of every capability set.
    pub fn drop_capability(&mut self, name: &str) -> Result<(), SpecError> {
        let Some(caps) = self.capability_object_mut()? else {
            return Ok(());
        };
        for set in CAPABILITY_SETS {
            if let Some(Value::Array(names)) = caps.get_mut(set) {
                names.retain(|n| !n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)));
            }
        }
        Ok(())
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.doc.get("annotations")?.get(key)?.as_str()
    }

    /// Sets annotation `key` to `value` unless the spec already has it.
    pub fn default_annotation(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        let annotations = object_entry(&mut self.doc, "annotations")?;
        annotations
            .entry(key)
            .or_insert_with(|| Value::String(value.to_owned()));
        Ok(())
    }

    /// Appends `hook` to the hooks of `stage` (`createRuntime`, `poststop`, ...), unless an
    /// identical one is there already.
    pub fn add_hook(&mut self, stage: &'static str, hook: &Hook) -> Result<(), SpecError> {
        let hooks = object_entry(&mut self.doc, "hooks")?;
        let list = hooks
            .entry(stage)
            .or_insert_with(|| Value::Array(Vec::new()));
        if list.is_null() {
            *list = Value::Array(Vec::new());
        }
        let Value::Array(list) = list else {
            return Err(SpecError::Shape {
                field: "hooks.<stage>",
                expected: "an array",
            });
        };
        let mut entry = json!({ "path": hook.path, "args": hook.args });
        if let (Some(timeout), Value::Object(map)) = (hook.timeout, &mut entry) {
            map.insert("timeout".into(), json!(timeout));
        }
        if !list.contains(&entry) {
            list.push(entry);
        }
        Ok(())
    }

    fn capability_object(&self) -> Result<Option<&Map<String, Value>>, SpecError> {
        match self.doc.get("process").and_then(|p| p.get("capabilities")) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(caps)) => Ok(Some(caps)),
            Some(_) => Err(SpecError::Shape {
                field: "process.capabilities",
                expected: "an object",
            }),
        }
    }

    fn capability_object_mut(&mut self) -> Result<Option<&mut Map<String, Value>>, SpecError> {
        match self
            .doc
            .get_mut("process")
            .and_then(|p| p.get_mut("capabilities"))
        {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(caps)) => Ok(Some(caps)),
            Some(_) => Err(SpecError::Shape {
                field: "process.capabilities",
                expected: "an object",
            }),
        }
    }
}

/// The object at `key` in `map`, made when it is absent or null.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &'static str,
) -> Result<&'a mut Map<String, Value>, SpecError> {
    let value = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(SpecError::Shape {
            field: key,
            expected: "an object",
        }),
    }
}
