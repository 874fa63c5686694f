//! The ways the load generator reaches the upstream.

use std::fmt;

/// Where a run's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Straight to the upstream.
    Direct,
    /// From inside a veil sandbox, through veil.
    Veil,
    /// Through nginx as a TLS-terminating reverse proxy doing the same swap in a `map`.
    Nginx,
    /// Through mitmproxy doing the same rewrite in an addon.
    Mitmproxy,
}

impl Target {
    /// Every target, in the report's column order.
    pub const ALL: [Self; 4] = [Self::Direct, Self::Veil, Self::Nginx, Self::Mitmproxy];

    /// The name in the report and the results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Veil => "veil",
            Self::Nginx => "nginx",
            Self::Mitmproxy => "mitmproxy",
        }
    }

    /// The position in [`Target::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::Direct => 0,
            Self::Veil => 1,
            Self::Nginx => 2,
            Self::Mitmproxy => 3,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_column_order() {
        for (i, t) in Target::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
        }
        assert_eq!(Target::Mitmproxy.to_string(), "mitmproxy");
        assert_eq!(Target::Nginx.to_string(), "nginx");
    }
}
