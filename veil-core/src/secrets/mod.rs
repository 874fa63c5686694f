//! Secrets' pure parts: the plaintext value type, validation of what the API is given, and
//! the live set the data path reads. Storage and encryption live in the daemon.
//!
//! - `value.rs`: [`SecretValue`], the plaintext, zeroized on drop and never formatted.
//! - `validate.rs`: API request bodies into checked values ([`NewSecret`], [`SecretPatch`]),
//!   with errors that name the field; the placeholder [`Prefix`].
//! - `set.rs`: [`SecretSet`], the live secrets the proxy reads, and [`SecretInfo`], what the
//!   API shows.
//! - `aws.rs`: secrets of kind `aws` (an AWS access key veil re-signs requests with): their
//!   value, placeholders, variables and the proxy's table of them.

pub mod aws;
mod set;
mod validate;
mod value;

pub use set::{LiveSecret, SecretInfo, SecretSet};
pub use validate::{is_posix_name, FieldError, NewSecret, Prefix, SecretPatch};
pub use value::{SecretValue, ValueError};
