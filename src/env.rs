//! The process environment, injected so tests can run with a temporary `HOME` and no globals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Environment variables and the home directory, captured once.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    home: PathBuf,
}

impl Environment {
    /// Captures the real process environment.
    pub fn from_process() -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let home = vars
            .get("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.dir)
            })
            .unwrap_or_else(|| PathBuf::from("/"));
        Environment { vars, home }
    }

    /// Builds an environment from explicit values (tests).
    pub fn new(home: impl Into<PathBuf>, vars: &[(&str, &str)]) -> Self {
        Environment {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: home.into(),
        }
    }

    /// A variable's value; empty values count as unset, as in the AWS SDKs.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The user's home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Expands a leading `~/` (or a lone `~`) to the home directory.
    pub fn expand(&self, path: &str) -> PathBuf {
        if path == "~" {
            self.home.clone()
        } else if let Some(rest) = path.strip_prefix("~/") {
            self.home.join(rest)
        } else {
            PathBuf::from(path)
        }
    }

    /// The shared credentials file: `$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub fn default_credentials_file(&self) -> PathBuf {
        match self.var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(p) => self.expand(p),
            None => self.home.join(".aws").join("credentials"),
        }
    }

    /// The AWS config file: `$AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub fn aws_config_file(&self) -> PathBuf {
        match self.var("AWS_CONFIG_FILE") {
            Some(p) => self.expand(p),
            None => self.home.join(".aws").join("config"),
        }
    }

    /// The config file when none is given: `$CREDFRESH_CONFIG`, else the XDG location.
    pub fn default_config_file(&self) -> PathBuf {
        if let Some(p) = self.var("CREDFRESH_CONFIG") {
            return self.expand(p);
        }
        let base = match self.var("XDG_CONFIG_HOME") {
            Some(p) => PathBuf::from(p),
            None => self.home.join(".config"),
        };
        base.join("credfresh").join("config.toml")
    }

    /// The control socket when none is configured: `$XDG_RUNTIME_DIR/credfresh/credfresh.sock`,
    /// else under `~/.cache/credfresh/`.
    pub fn default_socket(&self) -> PathBuf {
        let base = match self.var("XDG_RUNTIME_DIR") {
            Some(p) => PathBuf::from(p),
            None => self.home.join(".cache"),
        };
        base.join("credfresh").join("credfresh.sock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let env = Environment::new("/home/u", &[]);
        assert_eq!(
            env.default_credentials_file(),
            PathBuf::from("/home/u/.aws/credentials")
        );
        assert_eq!(
            env.default_config_file(),
            PathBuf::from("/home/u/.config/credfresh/config.toml")
        );
        assert_eq!(
            env.default_socket(),
            PathBuf::from("/home/u/.cache/credfresh/credfresh.sock")
        );
        let env = Environment::new(
            "/home/u",
            &[
                ("AWS_SHARED_CREDENTIALS_FILE", "~/creds"),
                ("CREDFRESH_CONFIG", "/etc/c.toml"),
                ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ],
        );
        assert_eq!(
            env.default_credentials_file(),
            PathBuf::from("/home/u/creds")
        );
        assert_eq!(env.default_config_file(), PathBuf::from("/etc/c.toml"));
        assert_eq!(
            env.default_socket(),
            PathBuf::from("/run/user/1000/credfresh/credfresh.sock")
        );
    }
}
