//! Sealing secret values under the master key: AES-256-GCM (ring) with a random nonce per
//! encryption and the secret's id as associated data, so a sealed value copied onto another
//! secret's record does not open. Pure apart from the system's random source.

use ring::{
    aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    rand::{SecureRandom, SystemRandom},
};
use zeroize::Zeroizing;

use super::{SecretError, SecretValue};

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// The first byte of every sealed value: the format, so it can change later.
const FORMAT_V1: u8 = 1;

/// The key secret values are sealed under. ring keeps its own copy of the key schedule, which
/// it does not zeroize; the raw key bytes this is made from are zeroized by the caller.
pub struct MasterKey(LessSafeKey);

impl MasterKey {
    /// The key with these bytes.
    pub fn new(bytes: &[u8; KEY_LEN]) -> Result<Self, SecretError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::Crypto)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Encrypts `value` for the secret `id`: format byte, nonce, ciphertext and tag.
    pub fn seal(&self, id: &str, value: &SecretValue) -> Result<Vec<u8>, SecretError> {
        let nonce: [u8; NONCE_LEN] = random()?;
        let mut in_out = Vec::with_capacity(1 + NONCE_LEN + value.expose().len() + 16);
        in_out.extend_from_slice(value.expose().as_bytes());
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SecretError::Crypto)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`MasterKey::seal`] made for the secret `id`. Fails when the key, the id
    /// or any byte differs.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<SecretValue, SecretError> {
        let undecryptable = || SecretError::Undecryptable { id: id.to_owned() };
        let (&format, rest) = sealed.split_first().ok_or_else(undecryptable)?;
        if format != FORMAT_V1 || rest.len() < NONCE_LEN + aead::MAX_TAG_LEN {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecryptable())?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut in_out)
            .map_err(|_| undecryptable())?;
        SecretValue::from_bytes(plain.to_vec()).map_err(|_| undecryptable())
    }
}

/// Random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Crypto)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::new(&[byte; KEY_LEN]).unwrap()
    }

    fn value(text: &str) -> SecretValue {
        SecretValue::parse(text.to_owned()).unwrap()
    }

    #[test]
    fn round_trips() {
        let sealed = key(1).seal("sec_1", &value("ghp_token")).unwrap();
        assert_eq!(key(1).open("sec_1", &sealed).unwrap().expose(), "ghp_token");
    }

    #[test]
    fn never_contains_the_plaintext_and_never_repeats() {
        let a = key(1).seal("sec_1", &value("ghp_token_ghp_token")).unwrap();
        let b = key(1).seal("sec_1", &value("ghp_token_ghp_token")).unwrap();
        assert_ne!(a, b, "a fresh nonce per encryption");
        assert!(!a.windows(9).any(|w| w == b"ghp_token"));
    }

    #[test]
    fn detects_tampering() {
        let sealed = key(1).seal("sec_1", &value("ghp_token")).unwrap();
        assert!(key(2).open("sec_1", &sealed).is_err(), "wrong key");
        assert!(
            key(1).open("sec_2", &sealed).is_err(),
            "wrong associated data"
        );
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            assert!(key(1).open("sec_1", &flipped).is_err(), "flipped byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(
                key(1).open("sec_1", &sealed[..len]).is_err(),
                "cut to {len}"
            );
        }
    }

    #[test]
    fn errors_do_not_carry_the_value() {
        let sealed = key(1).seal("sec_1", &value("ghp_token")).unwrap();
        let err = key(2).open("sec_1", &sealed).err().unwrap();
        assert!(!err.to_string().contains("ghp_token"));
        assert!(err.to_string().contains("sec_1"));
    }
}
