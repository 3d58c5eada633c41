//! The part of Synapse's configuration the portal writes, the same for every driver: the
//! listener (the whole `listeners` list, since later configuration files override only
//! top-level keys), the public URL, and the customer's settings with the plan's limits.

use super::{provisioner::Deployment, settings::Registration};

/// Where Synapse listens and where clients reach it.
pub struct Listener<'a> {
    pub port: u16,
    /// The one address it binds.
    pub bind: &'a str,
    /// Its public URL, without the final `/`.
    pub public_url: &'a str,
}

/// The portal's settings as top-level YAML keys.
pub fn portal_settings(deployment: &Deployment, listener: &Listener) -> String {
    let settings = &deployment.settings;
    // Federation off: no federation listener, and no server allowed to federate either way.
    let (resources, federation) = if settings.federation {
        ("[client, federation]", "")
    } else {
        ("[client]", "federation_domain_whitelist: []\n")
    };
    let registration = match settings.registration {
        Registration::Closed => "enable_registration: false\nregistration_requires_token: false\n",
        Registration::Token => "enable_registration: true\nregistration_requires_token: true\n",
        // Synapse refuses open registration without this explicit acknowledgement.
        Registration::Open => {
            "enable_registration: true\nregistration_requires_token: false\n\
             enable_registration_without_verification: true\n"
        }
    };
    let mau = match settings.max_monthly_active_users {
        Some(limit) => format!("limit_usage_by_mau: true\nmax_mau_value: {limit}\n"),
        None => "limit_usage_by_mau: false\n".to_string(),
    };
    // Behind a public URL on port 443, other servers learn from
    // `/.well-known/matrix/server` to federate there rather than on 8448.
    let well_known = if deployment.public_url.is_some() {
        "serve_server_wellknown: true\n"
    } else {
        ""
    };
    format!(
        "listeners:\n\
         \x20 - port: {port}\n\
         \x20   bind_addresses: ['{bind}']\n\
         \x20   type: http\n\
         \x20   tls: false\n\
         \x20   x_forwarded: true\n\
         \x20   resources:\n\
         \x20     - names: {resources}\n\
         \x20       compress: false\n\
         public_baseurl: \"{public}/\"\n\
         {well_known}\
         {registration}\
         allow_guest_access: {guests}\n\
         {federation}\
         {mau}\
         report_stats: false\n\
         # Servers' keys are fetched from the servers themselves, not through a key server.\n\
         trusted_key_servers: []\n\
         suppress_key_server_warning: true\n\
         # {name}\n",
        port = listener.port,
        bind = listener.bind,
        public = listener.public_url,
        guests = settings.guest_access,
        name = deployment.server_name,
    )
}

/// `registration_shared_secret` of a Synapse configuration (a double-quoted string of
/// letters, digits and symbols that need no escaping).
pub fn registration_secret(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let value = line.strip_prefix("registration_shared_secret:")?.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::super::settings::Settings;
    use super::*;

    fn listener() -> Listener<'static> {
        Listener {
            port: 20001,
            bind: "127.0.0.1",
            public_url: "http://127.0.0.1:20001",
        }
    }

    #[test]
    fn the_registration_secret_is_read_from_a_configuration() {
        let config = "server_name: \"a.localhost\"\n\
                      registration_shared_secret: \"0cA.0VtB^=sQ*2I~#@&\"\n\
                      report_stats: false\n";
        assert_eq!(
            registration_secret(config).as_deref(),
            Some("0cA.0VtB^=sQ*2I~#@&")
        );
        assert_eq!(registration_secret("report_stats: false\n"), None);
    }

    #[test]
    fn the_settings_hold_the_whole_listener_list() {
        let deployment = Deployment::example("alpha.localhost", Some(20001));
        let settings = portal_settings(&deployment, &listener());
        assert!(settings.contains("listeners:\n  - port: 20001\n    bind_addresses: ['127.0.0.1']"));
        assert!(settings.contains("public_baseurl: \"http://127.0.0.1:20001/\""));
        assert!(settings.contains("enable_registration: false"));
        assert!(settings.contains("- names: [client, federation]"));
        assert!(!settings.contains("federation_domain_whitelist"));
        assert!(settings.contains("allow_guest_access: false"));
    }

    #[test]
    fn the_customers_settings_and_the_plans_limit_are_written() {
        let deployment = Deployment {
            settings: Settings {
                registration: Registration::Open,
                federation: false,
                guest_access: true,
                max_monthly_active_users: Some(25),
            },
            ..Deployment::example("alpha.localhost", Some(20001))
        };
        let settings = portal_settings(&deployment, &listener());
        assert!(settings.contains("- names: [client]\n"));
        assert!(settings.contains("federation_domain_whitelist: []"));
        assert!(settings.contains("enable_registration: true"));
        assert!(settings.contains("enable_registration_without_verification: true"));
        assert!(settings.contains("allow_guest_access: true"));
        assert!(settings.contains("limit_usage_by_mau: true\nmax_mau_value: 25\n"));
        let token = Deployment {
            settings: Settings {
                registration: Registration::Token,
                ..Settings::default()
            },
            ..deployment
        };
        let settings = portal_settings(&token, &listener());
        assert!(settings.contains("registration_requires_token: true"));
        assert!(!settings.contains("enable_registration_without_verification"));
    }
}
