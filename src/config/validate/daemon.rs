//! The `[daemon]` table.

use super::Validator;
use crate::config::raw::RawDaemon;
use crate::config::{ContainerEndpoint, DaemonSettings, LogFormat};
use crate::env::Environment;
use std::path::PathBuf;

impl Validator<'_> {
    pub(super) fn daemon(&mut self, raw: Option<RawDaemon>, env: &Environment) -> DaemonSettings {
        let mut settings = DaemonSettings::defaults(env);
        let Some(raw) = raw else { return settings };
        if let Some(p) = self.path(raw.credentials_file.as_ref(), "credentials_file", env) {
            settings.credentials_file = p;
        }
        if let Some(p) = self.path(raw.socket.as_ref(), "socket", env) {
            settings.socket = p;
        }
        if let Some(d) = raw.refresh_before {
            if let Some(d) = self.duration(&d, None, "refresh_before") {
                settings.refresh_before = d;
            }
        }
        if let Some(d) = raw.warn_before {
            if let Some(d) = self.duration(&d, None, "warn_before") {
                settings.warn_before = d;
            }
        }
        if let Some(f) = raw.log_format {
            match f.get_ref().as_str() {
                "text" => settings.log_format = LogFormat::Text,
                "json" => settings.log_format = LogFormat::Json,
                other => self.error(
                    f.span(),
                    None,
                    format!("`log_format` = \"{other}\" is not known; use \"text\" or \"json\""),
                ),
            }
        }
        if let Some(a) = &raw.container_endpoint {
            match a.get_ref().parse::<std::net::SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => {
                    let token_file = match &raw.container_token_file {
                        Some(t) => env.expand(t.get_ref()),
                        None => settings
                            .socket
                            .parent()
                            .map(|d| d.join("container-token"))
                            .unwrap_or_else(|| PathBuf::from("container-token")),
                    };
                    settings.container = Some(ContainerEndpoint { addr, token_file });
                }
                Ok(_) => self.error(
                    a.span(),
                    None,
                    "`container_endpoint` must be a loopback address such as \"127.0.0.1:9911\": credentials must not be served to the network".into(),
                ),
                Err(_) => self.error(
                    a.span(),
                    None,
                    format!(
                        "`container_endpoint` = \"{}\" is not an address; write it like \"127.0.0.1:9911\"",
                        a.get_ref()
                    ),
                ),
            }
        } else if let Some(t) = &raw.container_token_file {
            self.error(
                t.span(),
                None,
                "`container_token_file` needs `container_endpoint`; set both or remove it".into(),
            );
        }
        settings
    }
}
