//! The one typed configuration of a Simple Chat instance. The CLI fills it from flags and
//! environment variables (see `cli`); tests build it with `Config::new` and adjust fields.

use std::{fmt, time::Duration};

/// Everything an instance needs to run. Secrets are redacted in `Debug`.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://path/to/file.sqlite3` (the default, `sqlite://simple-chat.sqlite3`).
    pub database_url: String,
    /// The HS256 signing key for tokens. `None`: generated once and kept in the database, so
    /// every instance on one database agrees.
    pub secret_key: Option<String>,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    /// When on, `/api/token/refresh/` also answers a new refresh token.
    pub rotate_refresh_tokens: bool,
    /// Largest accepted request body, in bytes; larger gets 413.
    pub body_limit: usize,
    /// Failed logins allowed per username within `login_throttle_window` before 429.
    pub login_failures_allowed: u32,
    pub login_throttle_window: Duration,
    /// How long events are kept in each user's log.
    pub event_retention: Duration,
    /// PostgreSQL connections: pool size, wait for a free one, statement timeout.
    pub database: crate::store::StoreOptions,
    /// A WebSocket client that does not take a frame within this time is closed (4008) and
    /// resumes with `since`.
    pub websocket_send_timeout: Duration,
    /// The start of every absolute link the server writes (`https://chat.example.org`); without
    /// it links are built from the request's scheme and `Host`.
    pub public_url: Option<String>,
    /// Slow and idle clients, and how many connections are served at once.
    pub connections: crate::server::ConnectionLimits,
    /// Password hashes computed at once (each takes 19 MiB and a core for tens of ms).
    pub max_password_checks: usize,
    /// Failed logins per client address (any usernames) within the throttle window.
    pub login_failures_per_address: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Open WebSockets per user on this instance.
    pub max_websockets_per_user: usize,
    /// Messages a user may post per minute (bursts of 100).
    pub post_rate: u32,
    /// Threads a user may create per hour.
    pub thread_rate: u32,
    /// Largest accepted upload, in bytes.
    pub max_upload: usize,
    /// Uploads never attached to a message are deleted after this long.
    pub unattached_files_ttl: Duration,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://simple-chat.sqlite3";

impl Config {
    /// A configuration with every default, on the given database.
    pub fn new(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            secret_key: None,
            access_token_lifetime: Duration::from_secs(5 * 60),
            refresh_token_lifetime: Duration::from_secs(24 * 60 * 60),
            rotate_refresh_tokens: false,
            body_limit: 1024 * 1024,
            login_failures_allowed: 5,
            login_throttle_window: Duration::from_secs(5 * 60),
            event_retention: Duration::from_secs(30 * 24 * 60 * 60),
            database: crate::store::StoreOptions::default(),
            websocket_send_timeout: Duration::from_secs(10),
            public_url: None,
            connections: crate::server::ConnectionLimits::default(),
            max_password_checks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            login_failures_per_address: 50,
            trusted_proxies: Vec::new(),
            max_websockets_per_user: 20,
            post_rate: 600,
            thread_rate: 100,
            max_upload: 25 * 1024 * 1024,
            unattached_files_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("body_limit", &self.body_limit)
            .field("login_failures_allowed", &self.login_failures_allowed)
            .field("login_throttle_window", &self.login_throttle_window)
            .field("event_retention", &self.event_retention)
            .field("database", &self.database)
            .field("websocket_send_timeout", &self.websocket_send_timeout)
            .field("public_url", &self.public_url)
            .field("connections", &self.connections)
            .field("max_password_checks", &self.max_password_checks)
            .field(
                "login_failures_per_address",
                &self.login_failures_per_address,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_websockets_per_user", &self.max_websockets_per_user)
            .field("post_rate", &self.post_rate)
            .field("thread_rate", &self.thread_rate)
            .field("max_upload", &self.max_upload)
            .field("unattached_files_ttl", &self.unattached_files_ttl)
            .finish()
    }
}

/// Hides the password of a `scheme://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:<redacted>{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut config = Config::new("postgres://chat:hunter2@db/chat");
        config.secret_key = Some("very-secret".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(
            shown.contains("postgres://chat:<redacted>@db/chat"),
            "{shown}"
        );
    }
}
