//! Containers as sandboxes: the pure parts of veil's OCI runtime hook and runtime wrapper.
//!
//! An OCI runtime (runc, crun) hands a hook the container's [`State`] on standard input at each
//! lifecycle stage. veil's hook registers the container as a sandbox at `createRuntime` (its
//! namespaces exist, its process has not run a single instruction of the workload yet) and
//! removes it at `poststop`. Docker runs no hooks.d files, so veil also wraps the runtime: the
//! wrapper ([`invocation`]) finds the bundle of a `create`, and [`spec`] adds veil's hooks to
//! its `config.json` before the real runtime reads it.
//!
//! - [`state`]: the state JSON a hook reads (`id`, `pid`, `bundle`, `annotations`).
//! - [`spec`]: what veil reads and changes in a bundle's `config.json`: the network namespace,
//!   the capabilities that would let a workload around the proxy, veil's hooks.
//! - [`invocation`]: a runtime command line (`runc [global options] create --bundle B ID`).
//! - [`naming`]: the sandbox name a container gets.

pub mod invocation;
pub mod naming;
pub mod spec;
pub mod state;

pub use invocation::Invocation;
pub use naming::{sandbox_name, SANDBOX_ANNOTATION};
pub use spec::{forbidden_in_mask, Hook, Network, Spec, SpecError, FORBIDDEN_CAPABILITIES};
pub use state::{State, StateError};

#[cfg(test)]
mod tests;
