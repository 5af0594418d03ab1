//! `simple-chat serve`: every flag (each with its environment variable) becomes the typed
//! [`Config`]; then the server runs until Ctrl-C or SIGTERM.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use clap::Args;

use crate::{App, Config, server::ConnectionLimits};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SIMPLE_CHAT_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Address to serve Prometheus metrics on (GET /metrics); off when unset. Keep it private.
    #[arg(long, env = "SIMPLE_CHAT_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// Token signing key (at least 32 bytes); when unset one is generated once and kept in the
    /// database.
    #[arg(long, env = "SIMPLE_CHAT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Access token lifetime, in seconds.
    #[arg(long, env = "SIMPLE_CHAT_ACCESS_TOKEN_LIFETIME", default_value_t = 300)]
    access_token_lifetime: u64,
    /// Refresh token lifetime, in seconds.
    #[arg(
        long,
        env = "SIMPLE_CHAT_REFRESH_TOKEN_LIFETIME",
        default_value_t = 86_400
    )]
    refresh_token_lifetime: u64,
    /// Answer a new refresh token on every refresh (the used one stops working).
    #[arg(long, env = "SIMPLE_CHAT_ROTATE_REFRESH_TOKENS")]
    rotate_refresh_tokens: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SIMPLE_CHAT_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// The start of every absolute link the server writes, e.g. `https://chat.example.org`
    /// (default: built from each request's Host header).
    #[arg(long, env = "SIMPLE_CHAT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Days each user's event log is kept.
    #[arg(long, env = "SIMPLE_CHAT_EVENT_RETENTION_DAYS", default_value_t = 30)]
    event_retention_days: u64,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "SIMPLE_CHAT_HEADER_TIMEOUT", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a keep-alive connection may stay idle.
    #[arg(long, env = "SIMPLE_CHAT_IDLE_TIMEOUT", default_value_t = 75)]
    idle_timeout: u64,
    /// Connections served at once (WebSockets included); more wait in the listen queue.
    #[arg(long, env = "SIMPLE_CHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Password hashes computed at once (default: the number of cores).
    #[arg(long, env = "SIMPLE_CHAT_MAX_PASSWORD_CHECKS")]
    max_password_checks: Option<usize>,
    /// Failed logins allowed per client address (any usernames) in 5 minutes.
    #[arg(
        long,
        env = "SIMPLE_CHAT_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 50
    )]
    login_failures_per_address: u32,
    /// Proxies whose X-Forwarded-For is believed (IP addresses or CIDR ranges,
    /// comma-separated); by default the header is ignored.
    #[arg(long, env = "SIMPLE_CHAT_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Open WebSockets per user (per instance); one more is refused with 429.
    #[arg(
        long,
        env = "SIMPLE_CHAT_MAX_WEBSOCKETS_PER_USER",
        default_value_t = 20
    )]
    max_websockets_per_user: usize,
    /// Messages a user may post per minute (bursts of 100).
    #[arg(long, env = "SIMPLE_CHAT_POST_RATE", default_value_t = 600)]
    post_rate: u32,
    /// Threads a user may create per hour.
    #[arg(long, env = "SIMPLE_CHAT_THREAD_RATE", default_value_t = 100)]
    thread_rate: u32,
    /// Largest accepted upload, in bytes.
    #[arg(long, env = "SIMPLE_CHAT_MAX_UPLOAD", default_value_t = 25 * 1024 * 1024)]
    max_upload: usize,
    /// PostgreSQL: connections in the pool (default: four per core, 8 to 32).
    #[arg(long, env = "SIMPLE_CHAT_DATABASE_POOL_SIZE")]
    database_pool_size: Option<usize>,
    /// PostgreSQL: seconds a request waits for a pooled connection before answering 503.
    #[arg(long, env = "SIMPLE_CHAT_DATABASE_POOL_WAIT", default_value_t = 5)]
    database_pool_wait: u64,
    /// PostgreSQL: the longest a statement may run, in seconds.
    #[arg(long, env = "SIMPLE_CHAT_STATEMENT_TIMEOUT", default_value_t = 10)]
    statement_timeout: u64,
    /// SQLite: memory for answers kept while nothing in them changes (thread lists, latest
    /// message pages, existing threads, threads' members, unread totals), in MB; 0 keeps none.
    #[arg(long, env = "SIMPLE_CHAT_KEPT_ANSWERS_MB", default_value_t = 216)]
    kept_answers_mb: usize,
}

impl ServeArgs {
    fn configure(self, config: &mut Config) {
        config.secret_key = self.secret_key;
        config.access_token_lifetime = Duration::from_secs(self.access_token_lifetime);
        config.refresh_token_lifetime = Duration::from_secs(self.refresh_token_lifetime);
        config.rotate_refresh_tokens = self.rotate_refresh_tokens;
        config.body_limit = self.body_limit;
        config.public_url = self.public_url;
        config.event_retention = Duration::from_secs(self.event_retention_days * 86_400);
        config.connections = ConnectionLimits {
            header_timeout: Duration::from_secs(self.header_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_connections: self.max_connections,
        };
        if let Some(checks) = self.max_password_checks {
            config.max_password_checks = checks;
        }
        config.login_failures_per_address = self.login_failures_per_address;
        config.trusted_proxies = self.trusted_proxies;
        config.max_websockets_per_user = self.max_websockets_per_user;
        config.post_rate = self.post_rate;
        config.thread_rate = self.thread_rate;
        config.max_upload = self.max_upload;
        config.database = crate::store::StoreOptions {
            pool_size: self.database_pool_size,
            pool_wait: Duration::from_secs(self.database_pool_wait),
            statement_timeout: Duration::from_secs(self.statement_timeout),
            kept_answers_bytes: self.kept_answers_mb.saturating_mul(1 << 20),
        };
    }
}

pub async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let bind = args.bind;
    let metrics_bind = args.metrics_bind;
    args.configure(&mut config);
    let app = App::build(config).await?;
    if let Some(address) = metrics_bind {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address} for metrics"))?;
        tracing::info!(address = %listener.local_addr()?, "serving metrics");
        let metrics = app.clone();
        tokio::spawn(async move {
            if let Err(error) = metrics.serve_metrics(listener).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    app.serve(listener, super::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
