//! How an API key is named where the key itself must never appear (the
//! admin API, the CLI, the console): by the hex of its SHA-256, which is
//! what is stored, so whoever holds the key can compute it
//! (`printf %s "$KEY" | sha256sum`).

use std::fmt;
use std::str::FromStr;

/// An API key's id: the SHA-256 of the key, written as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; 32]);

/// Text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a key id: the 64 hex digits of the key's SHA-256")]
pub struct KeyIdError(pub String);

impl KeyId {
    /// The key's SHA-256, as stored.
    pub fn hash(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = KeyIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(s, &mut hash).map_err(|_| KeyIdError(s.to_owned()))?;
        Ok(Self(hash))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_is_the_64_hex_digits_of_a_sha_256() {
        let hex = "ab".repeat(32);
        let id: KeyId = hex.parse().unwrap();
        assert_eq!(id.hash(), [0xab; 32]);
        assert_eq!(id.to_string(), hex);
        assert_eq!("AB".repeat(32).parse::<KeyId>(), Ok(id));
    }

    #[test]
    fn anything_else_is_refused_naming_what_was_sent() {
        for bad in [
            "",
            "ab",
            &"ab".repeat(31),
            &"ab".repeat(33),
            &"zz".repeat(32),
        ] {
            let e = bad.parse::<KeyId>().unwrap_err();
            assert_eq!(e, KeyIdError(bad.to_owned()));
            assert!(e.to_string().contains("64 hex digits"), "{e}");
        }
    }
}
