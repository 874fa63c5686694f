//! The hooks veil attaches to every steered cgroup, and how each kind of program is loaded
//! and attached. Every hook gets a bpf_link (`CgroupAttachMode::Single`; the other modes fail
//! with links), which is pinned and swapped with `BPF_LINK_UPDATE` on restart.

use std::fs::File;

use aya::{
    programs::{
        links::{FdLink, LinkError},
        CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError, SockOps,
    },
    Ebpf,
};
use veil_ebpf::{
    PROG_CONNECT4, PROG_CONNECT6, PROG_GETPEERNAME4, PROG_GETPEERNAME6, PROG_RECVMSG4,
    PROG_RECVMSG6, PROG_SENDMSG4, PROG_SENDMSG6, PROG_SOCK_CREATE, PROG_SOCK_OPS,
    PROG_SOCK_RELEASE,
};

use super::SteeringError;

/// The program type behind a hook, which decides how it is loaded and attached.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `cgroup/connect4`, `sendmsg6`, `getpeername4`, ...: the section names the attach type.
    SockAddr,
    /// `sockops`.
    SockOps,
    /// `cgroup/sock_create`, `cgroup/sock_release`.
    Sock,
}

/// One hook: the program's name in the object, the name its link is pinned under, its kind.
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    /// The program's name in the object.
    pub program: &'static str,
    /// The file name of the hook's pinned link in a cgroup's link directory.
    pub pin: &'static str,
    /// The kernel's attach type (`enum bpf_attach_type`), which the hook's link reports.
    pub attach_type: u32,
    kind: Kind,
}

/// Every hook veil attaches, in attach order, with its `BPF_CGROUP_*` attach type.
pub const HOOKS: [Hook; 11] = [
    Hook::new(PROG_SOCK_CREATE, "sock_create", 2, Kind::Sock),
    Hook::new(PROG_CONNECT4, "connect4", 10, Kind::SockAddr),
    Hook::new(PROG_CONNECT6, "connect6", 11, Kind::SockAddr),
    Hook::new(PROG_SENDMSG4, "sendmsg4", 14, Kind::SockAddr),
    Hook::new(PROG_SENDMSG6, "sendmsg6", 15, Kind::SockAddr),
    Hook::new(PROG_RECVMSG4, "recvmsg4", 19, Kind::SockAddr),
    Hook::new(PROG_RECVMSG6, "recvmsg6", 20, Kind::SockAddr),
    Hook::new(PROG_GETPEERNAME4, "getpeername4", 29, Kind::SockAddr),
    Hook::new(PROG_GETPEERNAME6, "getpeername6", 30, Kind::SockAddr),
    Hook::new(PROG_SOCK_OPS, "sock_ops", 3, Kind::SockOps),
    Hook::new(PROG_SOCK_RELEASE, "sock_release", 34, Kind::Sock),
];

impl Hook {
    const fn new(program: &'static str, pin: &'static str, attach_type: u32, kind: Kind) -> Self {
        Self {
            program,
            pin,
            attach_type,
            kind,
        }
    }

    /// Loads the hook's program into the kernel.
    pub fn load(&self, ebpf: &mut Ebpf) -> Result<(), SteeringError> {
        let wrap = |source| SteeringError::Program {
            what: format!("loading {}", self.program),
            source: Box::new(source),
        };
        match self.kind {
            Kind::SockAddr => program::<CgroupSockAddr>(ebpf, self.program)?
                .load()
                .map_err(wrap),
            Kind::SockOps => program::<SockOps>(ebpf, self.program)?.load().map_err(wrap),
            Kind::Sock => program::<CgroupSock>(ebpf, self.program)?
                .load()
                .map_err(wrap),
        }
    }

    /// Attaches the hook's (loaded) program to `cgroup` and returns the link, for pinning.
    pub fn attach(&self, ebpf: &mut Ebpf, cgroup: &File) -> Result<FdLink, SteeringError> {
        let what = || format!("attaching {} to cgroup", self.program);
        let wrap = |source: ProgramError| SteeringError::Program {
            what: what(),
            source: Box::new(source),
        };
        let link_err = |source: LinkError| SteeringError::Link {
            what: what(),
            source: Box::new(source),
        };
        match self.kind {
            Kind::SockAddr => {
                let prog: &mut CgroupSockAddr = program(ebpf, self.program)?;
                let id = prog
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(wrap)?;
                prog.take_link(id)
                    .map_err(wrap)?
                    .try_into()
                    .map_err(link_err)
            }
            Kind::SockOps => {
                let prog: &mut SockOps = program(ebpf, self.program)?;
                let id = prog
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(wrap)?;
                prog.take_link(id)
                    .map_err(wrap)?
                    .try_into()
                    .map_err(link_err)
            }
            Kind::Sock => {
                let prog: &mut CgroupSock = program(ebpf, self.program)?;
                let id = prog
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(wrap)?;
                prog.take_link(id)
                    .map_err(wrap)?
                    .try_into()
                    .map_err(link_err)
            }
        }
    }
}

/// The program called `name` in `ebpf`, as type `T`.
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, SteeringError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| super::missing_program(name))?;
    prog.try_into().map_err(|source| SteeringError::Program {
        what: format!("program {name}"),
        source: Box::new(source),
    })
}
