//! Simple Chat: a fast, self-hostable server for one-to-one conversations.
//!
//! The binary (`main.rs`) only parses the command line and calls into this library; tests start
//! the very same [`App`] on port 0. This file holds what every part shares: the application
//! state ([`Shared`]) and the assembly of the routers; no module below imports another's
//! routes.
//!
//! Modules, by what they own:
//! - [`config`]: the typed configuration; [`cli`]: the `simple-chat` commands.
//! - [`http`]: the JSON API — routes, typed requests and answers, extractors, its OpenAPI
//!   description at `/api/schema/` and reference at `/api/docs/`.
//! - [`admin`]: the admin page at `/admin/` (server-rendered HTML for staff).
//! - [`web`]: the web client at `/` (embedded HTML, CSS and JavaScript modules).
//! - [`server`]: the HTTP server loop (connection limits, timeouts, graceful shutdown).
//! - [`accounts`], [`policy`], [`domain`]: the rules (users, permissions, valid input), shared
//!   by the API, the CLI and the admin page; [`error`]: the errors they raise.
//! - [`store`]: the database, by topic, on SQLite or PostgreSQL; every change and its events in
//!   one transaction.
//! - [`realtime`]: waking WebSocket and long-poll connections when their user's log grows.
//! - [`auth`]: password hashes (bounded), tokens, login throttling, client addresses;
//!   [`limits`]: per-user rate limits on posting and starting threads.
//! - [`media`]: what is done with files' bytes (inline or download, thumbnails).
//! - [`moving`]: `migrate-data` and `import-django`; [`backup`]: `backup`; [`progress`]: the
//!   progress those commands show.
//! - [`telemetry`]: Prometheus metrics on their own listener.
//!
//! `cargo doc` documents private items as well (`.cargo/config.toml`): module docs name the
//! private modules that do the work, for the people who change them.
#![allow(rustdoc::private_intra_doc_links)]

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod limits;
pub mod media;
pub mod moving;
pub mod policy;
pub mod progress;
pub mod realtime;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod web;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;

pub use config::Config;

use crate::{
    accounts::NewAccount,
    auth::{
        checks::PasswordChecks,
        jwt::{TokenKeys, generate_secret},
        throttle::LoginThrottle,
    },
    realtime::Hub,
    store::Store,
};

/// The settings key under which a generated token signing key is kept.
const SIGNING_KEY_SETTING: &str = "jwt_signing_key";
/// The shortest signing key accepted (HS256 wants at least its 256 bits).
const MIN_SIGNING_KEY: usize = 32;

/// What every handler (API, admin page, real time) can reach.
pub struct Shared {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub keys: TokenKeys,
    pub throttle: LoginThrottle,
    pub checks: PasswordChecks,
    pub limits: limits::RateLimits,
    pub presence: realtime::presence::Presence,
    pub config: Config,
}

pub type AppState = Arc<Shared>;

/// Every route of an instance: the API (with its description and reference), the admin page
/// and the web client, behind the layers they all share (request ids, logs, panics).
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(http::router(&state.config))
        .merge(admin::router())
        .merge(web::router())
        .route_layer(axum::middleware::from_fn(telemetry::track))
        .fallback(http::not_found);
    let limits = server::BodyLimits {
        json: state.config.body_limit,
        upload: state.config.max_upload,
    };
    server::with_shared_layers(routes, limits).with_state(state)
}

/// A running instance's shared parts: the store, the token keys, the configuration.
#[derive(Clone)]
pub struct App {
    state: AppState,
}

impl App {
    /// Opens the database (applying pending migrations) and prepares the token keys.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let (store, applied) = Store::open_with(&config.database_url, &config.database)
            .await
            .with_context(|| format!("opening the database {:?}", config.database_url))?;
        for name in applied {
            tracing::info!(migration = name, "applied migration");
        }
        let secret = match &config.secret_key {
            Some(key) if key.len() < MIN_SIGNING_KEY => anyhow::bail!(
                "the token signing key (--secret-key, SIMPLE_CHAT_SECRET_KEY) must be at least \
                 {MIN_SIGNING_KEY} bytes; it is {} (leave it unset to have one generated)",
                key.len()
            ),
            Some(key) => key.clone(),
            None => {
                store
                    .setting_or_insert(SIGNING_KEY_SETTING, generate_secret())
                    .await?
            }
        };
        let keys = TokenKeys::new(
            secret.as_bytes(),
            config.access_token_lifetime,
            config.refresh_token_lifetime,
        );
        let throttle = LoginThrottle::new(
            config.login_failures_allowed,
            config.login_failures_per_address,
            config.login_throttle_window,
        );
        let checks = PasswordChecks::new(config.max_password_checks);
        let limits = limits::RateLimits::new(config.post_rate, config.thread_rate);
        let hub = Arc::new(Hub::default());
        let wake = hub.clone();
        store.on_commit(move |commit| wake.on_commit(commit));
        Ok(App {
            state: Arc::new(Shared {
                store,
                hub,
                keys,
                throttle,
                checks,
                limits,
                presence: realtime::presence::Presence::default(),
                config,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The bounded password hashing of this instance.
    pub fn password_checks(&self) -> &PasswordChecks {
        &self.state.checks
    }

    /// Creates an active user through the account rules (password rules apply).
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        is_staff: bool,
        is_superuser: bool,
    ) -> anyhow::Result<i64> {
        let user = accounts::create(
            self.store(),
            &self.state.checks,
            NewAccount {
                username: username.to_owned(),
                password: password.to_owned(),
                is_active: true,
                is_staff,
                is_superuser,
                ..NewAccount::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!(cli::describe(&e)))?;
        Ok(user.id)
    }

    /// Deletes the events older than the configured retention now (the server also does this
    /// every ten minutes); returns how many went.
    pub async fn prune_events_now(&self) -> anyhow::Result<usize> {
        prune_old_events(self.store(), self.state.config.event_retention).await
    }

    /// Deletes uploads never attached that are older than the configured time now (the server
    /// also does this every ten minutes); returns how many went.
    pub async fn expire_uploads_now(&self) -> anyhow::Result<usize> {
        expire_unattached_files(&self.state).await
    }

    /// Serves Prometheus metrics (`GET /metrics`) on `listener` until the process ends.
    pub async fn serve_metrics(&self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        telemetry::install();
        axum::serve(listener, telemetry::router(self.state.clone()))
            .await
            .context("serving metrics")
    }

    /// Serves until `shutdown` resolves; in-flight requests are finished first and WebSocket
    /// clients are told to reconnect. Old events are pruned in the background.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let pruner = tokio::spawn(housekeeping(self.state.clone()));
        let follower = self.state.store.follow_other_instances();
        self.state.presence.start(&self.state.store).await;
        let presence = {
            let state = self.state.clone();
            tokio::spawn(async move { state.presence.keep_alive(state.store.clone()).await })
        };
        let served = server::serve(self.state.clone(), listener, shutdown).await;
        pruner.abort();
        presence.abort();
        self.state.presence.write_last_seen(&self.state.store).await;
        if let Some(follower) = follower {
            follower.abort();
        }
        served
    }
}

/// Now and every ten minutes: deletes events older than the retention period and blacklisted
/// tokens that have expired anyway, and forgets rate-limit state that is full again.
async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        if let Err(error) = prune_old_events(&state.store, state.config.event_retention).await {
            tracing::warn!(%error, "pruning old events failed");
        }
        if let Err(error) = state.store.prune_blacklist(clock::Timestamp::now()).await {
            tracing::warn!(%error, "pruning the token blacklist failed");
        }
        if let Err(error) = expire_unattached_files(&state).await {
            tracing::warn!(%error, "deleting expired uploads failed");
        }
        state.limits.sweep();
    }
}

/// Deletes uploads never attached to a message once they are older than the configured time;
/// returns how many went.
async fn expire_unattached_files(state: &AppState) -> anyhow::Result<usize> {
    let age = i64::try_from(state.config.unattached_files_ttl.as_micros()).unwrap_or(i64::MAX);
    let before = clock::Timestamp(clock::Timestamp::now().micros().saturating_sub(age));
    Ok(state.store.expire_unattached_files(before).await?)
}

/// Deletes events older than `retention`, in batches so that no single write holds the
/// database for long; returns how many went.
async fn prune_old_events(store: &Store, retention: Duration) -> anyhow::Result<usize> {
    const BATCH: i64 = 5_000;
    let age = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    let cutoff = clock::Timestamp(clock::Timestamp::now().micros().saturating_sub(age));
    let mut total = 0;
    loop {
        let deleted = store.prune_events(cutoff, BATCH).await?;
        total += deleted;
        if (deleted as i64) < BATCH {
            return Ok(total);
        }
    }
}
