//! Checking that a steered cgroup still has every one of veil's hooks: each hook's pinned
//! link must exist, be a cgroup link of the hook's attach type, and still be attached to that
//! cgroup. A link detached behind veil's back (`bpftool link detach`, `BPF_LINK_DETACH`)
//! stays pinned but reports cgroup id 0, so the pin alone proves nothing.

use std::{io, os::fd::AsFd, path::Path};

use serde::{Deserialize, Serialize};

use super::{
    hooks::{Hook, HOOKS},
    sys::{self, LinkInfo, LINK_TYPE_CGROUP},
};

/// A hook a steered cgroup is missing, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingHook {
    /// The hook (its pin's name, such as `connect4`).
    pub hook: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The hooks of cgroup `cgroup_id` whose links, pinned in `link_dir`, are not all in place.
pub fn missing_hooks(link_dir: &Path, cgroup_id: u64) -> Vec<MissingHook> {
    HOOKS
        .iter()
        .filter_map(|hook| {
            let info = sys::obj_get(&link_dir.join(hook.pin))
                .and_then(|link| sys::link_info(link.as_fd()));
            judge(hook, info, cgroup_id).map(|problem| MissingHook {
                hook: hook.pin.to_owned(),
                problem,
            })
        })
        .collect()
}

/// What is wrong with `hook` of cgroup `cgroup_id`, given what the kernel said about its
/// pinned link; `None` when it is in place.
fn judge(hook: &Hook, info: io::Result<LinkInfo>, cgroup_id: u64) -> Option<String> {
    match info {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some("no pinned link".to_owned()),
        Err(e) => Some(format!("its pinned link cannot be read: {e}")),
        Ok(info) if info.kind != LINK_TYPE_CGROUP || info.attach_type != hook.attach_type => {
            Some(format!(
                "its pin holds a link of type {} and attach type {}, not a {} cgroup link",
                info.kind, info.attach_type, hook.pin
            ))
        }
        Ok(info) if info.cgroup_id == 0 => Some("detached".to_owned()),
        Ok(info) if info.cgroup_id != cgroup_id => {
            Some(format!("attached to cgroup {} instead", info.cgroup_id))
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect4() -> &'static Hook {
        HOOKS.iter().find(|h| h.pin == "connect4").expect("a hook")
    }

    fn info(cgroup_id: u64) -> io::Result<LinkInfo> {
        Ok(LinkInfo {
            kind: LINK_TYPE_CGROUP,
            cgroup_id,
            attach_type: connect4().attach_type,
        })
    }

    #[test]
    fn attached_to_its_cgroup_is_in_place() {
        assert_eq!(judge(connect4(), info(42), 42), None);
    }

    #[test]
    fn detached_link_is_missing() {
        assert_eq!(judge(connect4(), info(0), 42).as_deref(), Some("detached"));
    }

    #[test]
    fn link_on_another_cgroup_is_missing() {
        assert_eq!(
            judge(connect4(), info(7), 42).as_deref(),
            Some("attached to cgroup 7 instead")
        );
    }

    #[test]
    fn absent_pin_is_missing() {
        let absent = Err(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(
            judge(connect4(), absent, 42).as_deref(),
            Some("no pinned link")
        );
    }

    #[test]
    fn link_of_another_hook_is_missing() {
        let wrong = Ok(LinkInfo {
            kind: LINK_TYPE_CGROUP,
            cgroup_id: 42,
            attach_type: 11,
        });
        assert!(
            judge(connect4(), wrong, 42).is_some_and(|p| p.contains("not a connect4 cgroup link"))
        );
    }

    #[test]
    fn attach_types_are_distinct() {
        for (i, a) in HOOKS.iter().enumerate() {
            assert!(HOOKS[i + 1..]
                .iter()
                .all(|b| b.attach_type != a.attach_type));
        }
    }
}
