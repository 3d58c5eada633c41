//! Secrets the portal cannot run without. In development a missing secret is generated into the
//! data directory (mode 0600) and reused on the next start; in production a missing secret
//! stops the server with the name of the variable to set.

use crate::config::{Config, Environment};
use base64::{engine::general_purpose::STANDARD, Engine};
use domain::random::Random;
use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

pub struct Secrets {
    pub session_key: Vec<u8>,
    pub password_pepper: Vec<u8>,
}

struct Spec {
    variable: &'static str,
    file_name: &'static str,
    min_bytes: usize,
}

const SESSION_KEY: Spec = Spec {
    variable: "PORTAL_SESSION_KEY",
    file_name: "session_key",
    min_bytes: 64,
};
const PASSWORD_PEPPER: Spec = Spec {
    variable: "PORTAL_PASSWORD_PEPPER",
    file_name: "password_pepper",
    min_bytes: 32,
};

impl Secrets {
    pub fn load(config: &Config, random: &dyn Random) -> Result<Self, String> {
        Ok(Self {
            session_key: resolve(
                &SESSION_KEY,
                config.session_key.as_deref(),
                config.session_key_file.as_deref(),
                config,
                random,
            )?,
            password_pepper: resolve(
                &PASSWORD_PEPPER,
                config.password_pepper.as_deref(),
                config.password_pepper_file.as_deref(),
                config,
                random,
            )?,
        })
    }
}

fn decode(spec: &Spec, text: &str, source: &str) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{} ({source}) is not valid base64", spec.variable))?;
    if bytes.len() < spec.min_bytes {
        return Err(format!(
            "{} ({source}) is too short: {} bytes, at least {} needed (e.g. `openssl rand -base64 {}`)",
            spec.variable,
            bytes.len(),
            spec.min_bytes,
            spec.min_bytes
        ));
    }
    Ok(bytes)
}

fn resolve(
    spec: &Spec,
    value: Option<&str>,
    file: Option<&Path>,
    config: &Config,
    random: &dyn Random,
) -> Result<Vec<u8>, String> {
    if let Some(value) = value {
        return decode(spec, value, "environment");
    }
    if let Some(file) = file {
        let text = fs::read_to_string(file)
            .map_err(|e| format!("{}_FILE {}: {e}", spec.variable, file.display()))?;
        return decode(spec, &text, &format!("{}_FILE", spec.variable));
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
        return decode(spec, &text, &path.display().to_string());
    }
    let mut bytes = vec![0u8; spec.min_bytes];
    random.fill(&mut bytes);
    write_private(&path, &STANDARD.encode(&bytes))?;
    tracing::warn!(
        secret = spec.variable,
        path = %path.display(),
        "generated a new secret for development; set it explicitly in production"
    );
    Ok(bytes)
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

        let c = config(&["--environment", "production", "--session-key", "c2hvcnQ="]);
        assert!(Secrets::load(&c, &OsRandom)
            .err()
            .unwrap()
            .contains("too short"));
    }
}
