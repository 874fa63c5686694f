//! Method and path scopes of a secret, and the normalised request path they are matched
//! against. Pure.
//!
//! A secret may name the methods (`GET`, `POST`) and the path patterns (`/repos/my-org/*`) it
//! may be injected into, beside its host patterns. A pattern matches a path when its segments
//! match the path's first segments; `*` in a pattern segment matches any characters of one
//! segment. A request path is normalised first ([`RequestPath::parse`]): percent-encoded
//! unreserved characters are decoded, and a path with a `.` or `..` segment, an encoded `/` or
//! `\`, a `\`, or a bad percent escape never matches any pattern, so
//! `/repos/my-org/../other-org` cannot pass for `/repos/my-org/*`.

mod method;
mod path;

pub use method::{Method, MethodError};
pub use path::{PathError, PathPattern, RequestPath};

/// Where in a host's API a secret may go: methods and path patterns; empty lists allow any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteScope {
    /// The methods allowed; empty: any.
    pub methods: Vec<Method>,
    /// The path patterns allowed; empty: any.
    pub paths: Vec<PathPattern>,
}

/// Why a request is outside a [`RouteScope`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// The method is not among the allowed ones.
    Method,
    /// The path matches no allowed pattern (or does not normalise).
    Path,
}

impl RouteScope {
    /// Whether a request with `method` and `path` (`None`: a path that does not normalise or
    /// is unknown) is inside this scope, or which part of it misses.
    pub fn check(&self, method: &str, path: Option<&RequestPath>) -> Result<(), Miss> {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.as_str() == method) {
            return Err(Miss::Method);
        }
        if self.paths.is_empty() {
            return Ok(());
        }
        match path {
            Some(path) if self.paths.iter().any(|p| p.matches(path)) => Ok(()),
            _ => Err(Miss::Path),
        }
    }

    /// Whether this scope allows every method and path.
    pub fn is_any(&self) -> bool {
        self.methods.is_empty() && self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests;
