//! Who is asking: the current task's cgroup, the sandbox whose settings apply to it, and
//! reporting what the kernel refused it.

use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
    generated::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_set_retval},
};
use veil_ebpf::{
    Endpoint, Reason, Refusal, Settings, DEFAULT_SETTINGS_KEY, MAX_CGROUP_DEPTH, MAX_RESOLVERS,
    SETTING_DENY_IPV6,
};

use super::{ECONNREFUSED, REFUSE, VEIL_REFUSALS, VEIL_REFUSALS_DROPPED, VEIL_SETTINGS};

/// The socket an operation concerns, as its family, type and protocol numbers.
#[derive(Clone, Copy)]
pub struct Socket {
    pub family: u32,
    pub sock_type: u32,
    pub protocol: u32,
}

/// The current task's cgroup and the sandbox settings that apply to it.
pub struct Task {
    pub cgroup_id: u64,
    /// The cgroup the settings were found under; zero for the defaults.
    pub sandbox_id: u64,
    settings: Option<&'static Settings>,
}

/// The current task's identity, as records carry it.
pub struct Ids {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; 16],
}

impl Task {
    /// Finds the settings for the current task: its own cgroup's, else those of its nearest
    /// ancestor that has some (a cgroup the workload made inside its sandbox), else the
    /// defaults. The common case, a task directly in its sandbox, costs one lookup.
    pub fn current() -> Self {
        // SAFETY: a plain helper call with no arguments.
        let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
        // SAFETY (all three lookups): the reference is only read at once; a concurrent update
        // from user space can at worst make it read a half-written entry, never invalid memory.
        if let Some(settings) = unsafe { VEIL_SETTINGS.get(cgroup_id) } {
            return Self {
                cgroup_id,
                sandbox_id: cgroup_id,
                settings: Some(settings),
            };
        }
        let mut found = Self {
            cgroup_id,
            sandbox_id: 0,
            settings: unsafe { VEIL_SETTINGS.get(DEFAULT_SETTINGS_KEY) },
        };
        // Walk from the root down, so the deepest sandbox ancestor wins.
        for level in 0..MAX_CGROUP_DEPTH {
            // SAFETY: the helper returns 0 for a level below the task's own cgroup.
            let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
            if id == 0 || id == cgroup_id {
                break;
            }
            if let Some(settings) = unsafe { VEIL_SETTINGS.get(id) } {
                found.sandbox_id = id;
                found.settings = Some(settings);
            }
        }
        found
    }

    /// Whether native IPv6 must be refused rather than steered.
    pub fn denies_ipv6(&self) -> bool {
        self.settings
            .is_some_and(|s| s.flags & SETTING_DENY_IPV6 != 0)
    }

    /// Whether the sandbox may send DNS to `ip6` (v4-mapped for IPv4).
    pub fn may_resolve(&self, ip6: &[u32; 4]) -> bool {
        let Some(settings) = self.settings else {
            return false;
        };
        let count = settings.resolver_count as usize;
        for i in 0..MAX_RESOLVERS {
            if i >= count {
                break;
            }
            let r = &settings.resolvers[i];
            if r[0] == ip6[0] && r[1] == ip6[1] && r[2] == ip6[2] && r[3] == ip6[3] {
                return true;
            }
        }
        false
    }

    /// Reports a refusal on the ring buffer, or counts it as dropped when the ring is full.
    pub fn report(&self, reason: Reason, dst: Endpoint, socket: Socket) {
        let Some(mut entry) = VEIL_REFUSALS.reserve::<Refusal>(0) else {
            if let Some(dropped) = VEIL_REFUSALS_DROPPED.get_ptr_mut(0) {
                // SAFETY: the pointer is this CPU's slot of a one-element per-CPU array.
                unsafe { *dropped += 1 };
            }
            return;
        };
        let ids = ids();
        entry.write(Refusal {
            cgroup_id: self.cgroup_id,
            sandbox_id: self.sandbox_id,
            dst,
            pid: ids.pid,
            uid: ids.uid,
            gid: ids.gid,
            reason: reason as u32,
            family: socket.family,
            sock_type: socket.sock_type,
            protocol: socket.protocol,
            comm: ids.comm,
        });
        entry.submit(0);
    }

    /// Refuses a connect or a send with `ECONNREFUSED` and reports it. Only for hooks that
    /// may call `bpf_set_retval` (connect and sendmsg do; getpeername does not).
    pub fn refuse_with_econnrefused(&self, reason: Reason, dst: Endpoint, socket: Socket) -> i32 {
        // SAFETY: the helper only sets the error the hook returns when the program refuses.
        unsafe { bpf_set_retval(ECONNREFUSED) };
        self.report(reason, dst, socket);
        REFUSE
    }
}

/// The current task's pid, uid, gid and comm.
pub fn ids() -> Ids {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    Ids {
        pid: (pid_tgid >> 32) as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    }
}
