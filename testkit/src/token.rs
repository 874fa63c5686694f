//! Throwaway tokens that stand in for real API credentials.

use std::{fs::File, io::Read};

use crate::error::{Context, Error};

/// `prefix` and 24 random lower-case hex digits (12 bytes from /dev/urandom).
pub fn random_token(prefix: &str) -> Result<String, Error> {
    let mut bytes = [0u8; 12];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .doing(|| "reading /dev/urandom".to_owned())?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_hex() {
        let token = random_token("demo_").expect("/dev/urandom is readable");
        assert_eq!(token.len(), "demo_".len() + 24);
        assert!(token["demo_".len()..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(
            token,
            random_token("demo_").expect("/dev/urandom is readable")
        );
    }
}
