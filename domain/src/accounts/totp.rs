//! Two-factor authentication with time-based one-time codes (RFC 6238, via totp-rs), enrolment
//! by QR code (SVG) or key, ten single-use recovery codes stored hashed, and secrets encrypted
//! at rest with a rotatable key ring ([`SecretBox`]).

use crate::random::Random;
use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{aead::Aead, KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Totp};

pub const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;

/// Encrypts small secrets (TOTP keys) under the current key of a key ring; older keys still
/// decrypt, and tell the caller to re-encrypt under the current one.
#[derive(Clone)]
pub struct SecretBox {
    /// (key id, cipher); the first is current.
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretBox").field("key_ids", &ids).finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretBoxError {
    #[error("encryption keys: {0}")]
    Config(String),
    #[error("the secret was encrypted with key {0:?}, which is no longer configured")]
    UnknownKey(String),
    #[error("the secret could not be decrypted (damaged, or the wrong key)")]
    Corrupt,
}

impl SecretBox {
    /// From `id:base64key[,id:base64key…]`, current key first; keys are 32 bytes.
    pub fn from_spec(spec: &str) -> Result<Self, SecretBoxError> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry
                .split_once(':')
                .ok_or_else(|| SecretBoxError::Config(format!("{entry:?} is not id:base64key")))?;
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(SecretBoxError::Config(format!(
                    "key id {id:?}: use letters, digits, - and _"
                )));
            }
            let bytes = STANDARD
                .decode(key)
                .map_err(|_| SecretBoxError::Config(format!("key {id}: not base64")))?;
            if bytes.len() != 32 {
                return Err(SecretBoxError::Config(format!(
                    "key {id}: {} bytes, 32 needed",
                    bytes.len()
                )));
            }
            if keys.iter().any(|(existing, _)| existing == id) {
                return Err(SecretBoxError::Config(format!("key id {id} appears twice")));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| SecretBoxError::Config(id.to_string()))?;
            keys.push((id.to_string(), cipher));
        }
        if keys.is_empty() {
            return Err(SecretBoxError::Config("no key given".into()));
        }
        Ok(Self { keys })
    }

    /// `key id:base64(nonce ‖ ciphertext)`.
    pub fn seal(&self, plaintext: &[u8], random: &dyn Random) -> String {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; 24];
        random.fill(&mut nonce);
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(XNonce::from_slice(&nonce), plaintext)
                .expect("encryption in memory cannot fail"),
        );
        format!("{id}:{}", STANDARD.encode(out))
    }

    /// The plaintext, and whether it should be sealed again under the current key.
    pub fn open(&self, sealed: &str) -> Result<(Vec<u8>, bool), SecretBoxError> {
        let (id, data) = sealed.split_once(':').ok_or(SecretBoxError::Corrupt)?;
        let position = self
            .keys
            .iter()
            .position(|(key_id, _)| key_id == id)
            .ok_or_else(|| SecretBoxError::UnknownKey(id.to_string()))?;
        let data = STANDARD.decode(data).map_err(|_| SecretBoxError::Corrupt)?;
        if data.len() < 24 {
            return Err(SecretBoxError::Corrupt);
        }
        let (nonce, ciphertext) = data.split_at(24);
        let plaintext = self.keys[position]
            .1
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretBoxError::Corrupt)?;
        Ok((plaintext, position != 0))
    }
}

fn totp(secret: &[u8], account_name: &str, issuer: &str) -> Totp {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(account_name.replace(':', ""))
        .with_issuer(Some(issuer.replace(':', "")))
        .build()
        .expect("a 160-bit secret with the RFC 6238 defaults is valid")
}

/// What the enrolment page shows: the key as a QR code and as text.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: Vec<u8>,
    /// Base32, grouped in fours, for typing into an app.
    pub key_text: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

pub fn new_enrolment(random: &dyn Random, account_name: &str, issuer: &str) -> Enrolment {
    let mut secret = vec![0u8; SECRET_BYTES];
    random.fill(&mut secret);
    enrolment_for(secret, account_name, issuer)
}

/// The enrolment view of an existing secret (a page reloaded mid-enrolment shows the same key).
pub fn enrolment_for(secret: Vec<u8>, account_name: &str, issuer: &str) -> Enrolment {
    let t = totp(&secret, account_name, issuer);
    let otpauth_url = t.to_url().expect("account name is set");
    let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    let base32 = base32_encode(&secret);
    let key_text = base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Enrolment {
        secret,
        key_text,
        otpauth_url,
        qr_svg,
    }
}

fn base32_encode(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

/// Checks a code at `unix_seconds`, one step of clock drift either way. Returns the time step it
/// belongs to; a step at or before `last_used_step` is refused, so a code works once.
pub fn verify_code(
    secret: &[u8],
    code: &str,
    unix_seconds: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret, "x", "x").check(&code, unix_seconds)?;
    match last_used_step {
        Some(last) if step <= last => None,
        _ => Some(step),
    }
}

/// The current code, for tests and for showing what an app would show.
pub fn current_code(secret: &[u8], unix_seconds: u64) -> String {
    totp(secret, "x", "x").generate(unix_seconds).to_string()
}

/// Ten recovery codes (`xxxxx-xxxxx`, 50 bits each) to show once, and their hashes to store.
pub fn new_recovery_codes(random: &dyn Random) -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 7];
            random.fill(&mut bytes);
            let text = base32_encode(&bytes).to_ascii_lowercase();
            format!("{}-{}", &text[..5], &text[5..10])
        })
        .collect();
    let hashes = codes.iter().map(|c| hash_recovery_code(c)).collect();
    (codes, hashes)
}

/// Recovery codes are random, so a plain SHA-256 suffices; input is normalised so that case,
/// spaces and the dash do not matter.
pub fn hash_recovery_code(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_secrets_open_and_rotate() {
        let random = SeededRandom::new(1);
        let old = SecretBox::from_spec(&format!("k1:{}", key(1))).unwrap();
        let sealed = old.seal(b"totp secret", &random);
        assert!(sealed.starts_with("k1:"));
        assert!(!sealed.contains("totp secret"));
        assert_eq!(old.open(&sealed).unwrap(), (b"totp secret".to_vec(), false));

        let rotated = SecretBox::from_spec(&format!("k2:{}, k1:{}", key(2), key(1))).unwrap();
        assert_eq!(
            rotated.open(&sealed).unwrap(),
            (b"totp secret".to_vec(), true),
            "old key still opens, asks to reseal"
        );
        assert!(rotated.seal(b"x", &random).starts_with("k2:"));

        let gone = SecretBox::from_spec(&format!("k2:{}", key(2))).unwrap();
        assert_eq!(
            gone.open(&sealed),
            Err(SecretBoxError::UnknownKey("k1".into()))
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(old.open(&tampered), Err(SecretBoxError::Corrupt));
    }

    #[test]
    fn key_ring_configuration_is_checked() {
        assert!(SecretBox::from_spec("").is_err());
        assert!(SecretBox::from_spec("nokey").is_err());
        assert!(
            SecretBox::from_spec(&format!("k1:{}", STANDARD.encode([0u8; 16]))).is_err(),
            "16-byte key"
        );
        assert!(
            SecretBox::from_spec(&format!("k1:{},k1:{}", key(1), key(2))).is_err(),
            "duplicate id"
        );
    }

    #[test]
    fn codes_verify_once_within_one_step_of_drift() {
        let enrolment = new_enrolment(&SeededRandom::new(2), "alice@example.com", "Matrix Hosting");
        assert_eq!(enrolment.secret.len(), SECRET_BYTES);
        assert!(enrolment.otpauth_url.starts_with("otpauth://totp/"));
        assert!(enrolment.qr_svg.contains("<svg"));
        assert_eq!(enrolment.key_text.replace(' ', "").len(), 32);
        let now = 1_800_000_000;
        let code = current_code(&enrolment.secret, now);
        let step = verify_code(&enrolment.secret, &code, now, None).expect("current code");
        assert_eq!(step, now / 30);
        assert_eq!(
            verify_code(&enrolment.secret, &code, now + 30, None),
            Some(step),
            "one step late is fine"
        );
        assert_eq!(
            verify_code(&enrolment.secret, &code, now + 90, None),
            None,
            "three steps late is not"
        );
        assert_eq!(
            verify_code(&enrolment.secret, &code, now, Some(step)),
            None,
            "a code works once"
        );
        assert_eq!(verify_code(&enrolment.secret, "12345", now, None), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(
            verify_code(&enrolment.secret, &spaced, now, None),
            Some(step)
        );
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
    }

    #[test]
    fn recovery_codes_are_distinct_and_hashed() {
        let (codes, hashes) = new_recovery_codes(&SeededRandom::new(3));
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert!(codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        assert_eq!(
            hash_recovery_code(&codes[0].to_uppercase().replace('-', " ")),
            hashes[0]
        );
        assert!(!hashes
            .iter()
            .any(|h| codes.iter().any(|c| h.contains(c.as_str()))));
    }
}
