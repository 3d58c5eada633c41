//! Secrets the portal cannot run without. In development a missing secret is generated into the
//! data directory (mode 0600) and reused on the next start; in production a missing secret
//! stops the server with the name of the variable to set.

use crate::config::{Config, Environment};
use base64::{engine::general_purpose::STANDARD, Engine};
use domain::random::Random;
use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

pub struct Secrets {
    pub session_key: Vec<u8>,
    pub password_pepper: Vec<u8>,
    /// Encrypts TOTP secrets at rest; the first key is current.
    pub totp_keys: domain::accounts::totp::SecretBox,
}

enum Format {
    /// Base64 of at least this many bytes.
    Base64(usize),
    /// `id:base64key[,id:base64key…]`, 32-byte keys, current first.
    KeyRing,
}

struct Spec {
    variable: &'static str,
    file_name: &'static str,
    format: Format,
}

const SESSION_KEY: Spec = Spec {
    variable: "PORTAL_SESSION_KEY",
    file_name: "session_key",
    format: Format::Base64(64),
};
const PASSWORD_PEPPER: Spec = Spec {
    variable: "PORTAL_PASSWORD_PEPPER",
    file_name: "password_pepper",
    format: Format::Base64(32),
};
const TOTP_KEYS: Spec = Spec {
    variable: "PORTAL_TOTP_KEYS",
    file_name: "totp_keys",
    format: Format::KeyRing,
};

impl Secrets {
    pub fn load(config: &Config, random: &dyn Random) -> Result<Self, String> {
        let base64 = |spec: &Spec, value: Option<&String>, file: Option<&PathBuf>| {
            let (text, source) = resolve(
                spec,
                value.map(String::as_str),
                file.map(PathBuf::as_path),
                config,
                random,
            )?;
            decode(spec, &text, &source)
        };
        let session_key = base64(
            &SESSION_KEY,
            config.session_key.as_ref(),
            config.session_key_file.as_ref(),
        )?;
        let password_pepper = base64(
            &PASSWORD_PEPPER,
            config.password_pepper.as_ref(),
            config.password_pepper_file.as_ref(),
        )?;
        let (text, source) = resolve(
            &TOTP_KEYS,
            config.totp_keys.as_deref(),
            config.totp_keys_file.as_deref(),
            config,
            random,
        )?;
        let totp_keys = domain::accounts::totp::SecretBox::from_spec(text.trim())
            .map_err(|e| format!("{} ({source}): {e}", TOTP_KEYS.variable))?;
        Ok(Self {
            session_key,
            password_pepper,
            totp_keys,
        })
    }
}

/// A base64 secret of at least the spec's length.
fn decode(spec: &Spec, text: &str, source: &str) -> Result<Vec<u8>, String> {
    let Format::Base64(min_bytes) = spec.format else {
        return Err(format!("{} is not a base64 secret", spec.variable));
    };
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{} ({source}) is not valid base64", spec.variable))?;
    if bytes.len() < min_bytes {
        return Err(format!(
            "{} ({source}) is too short: {} bytes, at least {min_bytes} needed (e.g. `openssl rand -base64 {min_bytes}`)",
            spec.variable,
            bytes.len(),
        ));
    }
    Ok(bytes)
}

fn generate(spec: &Spec, random: &dyn Random) -> String {
    let random_base64 = |n: usize| {
        let mut bytes = vec![0u8; n];
        random.fill(&mut bytes);
        STANDARD.encode(bytes)
    };
    match spec.format {
        Format::Base64(n) => random_base64(n),
        Format::KeyRing => format!("k1:{}", random_base64(32)),
    }
}

/// The secret's text and where it came from: the environment, a file, or (in development) the
/// data directory, where a missing one is generated.
fn resolve(
    spec: &Spec,
    value: Option<&str>,
    file: Option<&Path>,
    config: &Config,
    random: &dyn Random,
) -> Result<(String, String), String> {
    if let Some(value) = value {
        return Ok((value.to_string(), "environment".into()));
    }
    if let Some(file) = file {
        let text = fs::read_to_string(file)
            .map_err(|e| format!("{}_FILE {}: {e}", spec.variable, file.display()))?;
        return Ok((text, format!("{}_FILE", spec.variable)));
    }
    if config.environment == Environment::Production {
        return Err(format!(
            "{} is not set. In production every secret must be configured: set {} or {}_FILE",
            spec.variable, spec.variable, spec.variable
        ));
    }
    let path = config.data_dir.join("secrets").join(spec.file_name);
    if path.exists() {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok((text, path.display().to_string()));
    }
    let text = generate(spec, random);
    write_private(&path, &text)?;
    tracing::warn!(
        secret = spec.variable,
        path = %path.display(),
        "generated a new secret for development; set it explicitly in production"
    );
    Ok((text, path.display().to_string()))
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let _ = fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cli;
    use clap::Parser;
    use domain::random::OsRandom;
    use std::os::unix::fs::PermissionsExt;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["server"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().config
    }

    #[test]
    fn development_generates_private_secrets_once() {
        let dir = std::env::temp_dir().join(format!(
            "portal-secrets-{}",
            domain::random::token(&OsRandom, 8)
        ));
        let c = config(&["--data-dir", dir.to_str().unwrap()]);
        let first = Secrets::load(&c, &OsRandom).unwrap();
        let second = Secrets::load(&c, &OsRandom).unwrap();
        assert_eq!(
            first.session_key, second.session_key,
            "reused, not regenerated"
        );
        assert_eq!(first.session_key.len(), 64);
        assert_ne!(first.session_key[..32], first.password_pepper[..32]);
        let mode = fs::metadata(dir.join("secrets/session_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn production_names_the_missing_secret() {
        let c = config(&[
            "--environment",
            "production",
            "--public-url",
            "https://p.example",
        ]);
        let error = Secrets::load(&c, &OsRandom).err().unwrap();
        assert!(error.contains("PORTAL_SESSION_KEY is not set"), "{error}");

        let key = STANDARD.encode([7u8; 64]);
        let c = config(&["--environment", "production", "--session-key", &key]);
        let error = Secrets::load(&c, &OsRandom).err().unwrap();
        assert!(
            error.contains("PORTAL_PASSWORD_PEPPER is not set"),
            "{error}"
        );

        let pepper = STANDARD.encode([8u8; 32]);
        let c = config(&[
            "--environment",
            "production",
            "--session-key",
            &key,
            "--password-pepper",
            &pepper,
        ]);
        let error = Secrets::load(&c, &OsRandom).err().unwrap();
        assert!(error.contains("PORTAL_TOTP_KEYS is not set"), "{error}");
        let ring = format!("k1:{}", STANDARD.encode([9u8; 32]));
        let c = config(&[
            "--environment",
            "production",
            "--session-key",
            &key,
            "--password-pepper",
            &pepper,
            "--totp-keys",
            &ring,
        ]);
        assert!(Secrets::load(&c, &OsRandom).is_ok());
        let c = config(&[
            "--environment",
            "production",
            "--session-key",
            &key,
            "--password-pepper",
            &pepper,
            "--totp-keys",
            "k1:c2hvcnQ=",
        ]);
        assert!(Secrets::load(&c, &OsRandom)
            .err()
            .unwrap()
            .contains("PORTAL_TOTP_KEYS"));

        let c = config(&["--environment", "production", "--session-key", "c2hvcnQ="]);
        assert!(Secrets::load(&c, &OsRandom)
            .err()
            .unwrap()
            .contains("too short"));
    }
}
