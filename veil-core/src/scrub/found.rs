//! What scrubbing found: which secrets, how many times. Never a value.

use std::sync::Arc;

use super::scrubber::SecretRef;

/// The secrets scrubbed from some bytes, in the order first found, each with a count.
///
/// Empty (and allocation-free) when nothing was found. Add up the results of a stream's feeds
/// with [`Found::merge`] to report a whole response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    scrubbed: Vec<Scrubbed>,
}

/// One secret that was scrubbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrubbed {
    /// The secret's id.
    pub secret_id: Arc<str>,
    /// The secret's name.
    pub secret_name: Arc<str>,
    /// How many occurrences, in any form, were replaced.
    pub count: u64,
}

impl Found {
    /// Whether nothing was scrubbed.
    pub fn is_empty(&self) -> bool {
        self.scrubbed.is_empty()
    }

    /// Each secret scrubbed, in the order first found.
    pub fn secrets(&self) -> &[Scrubbed] {
        &self.scrubbed
    }

    /// How many occurrences of all secrets were replaced.
    pub fn total(&self) -> u64 {
        self.scrubbed.iter().map(|scrubbed| scrubbed.count).sum()
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: Found) {
        for scrubbed in other.scrubbed {
            match self
                .scrubbed
                .iter_mut()
                .find(|known| known.secret_id == scrubbed.secret_id)
            {
                Some(known) => known.count += scrubbed.count,
                None => self.scrubbed.push(scrubbed),
            }
        }
    }

    /// Counts one occurrence of `secret`.
    pub(super) fn count(&mut self, secret: &SecretRef) {
        match self
            .scrubbed
            .iter_mut()
            .find(|known| Arc::ptr_eq(&known.secret_id, &secret.id))
        {
            Some(known) => known.count += 1,
            None => self.scrubbed.push(Scrubbed {
                secret_id: Arc::clone(&secret.id),
                secret_name: Arc::clone(&secret.name),
                count: 1,
            }),
        }
    }
}
