//! Simple Chat: a fast, self-hostable server for one-to-one conversations.
//!
//! The binary (`main.rs`) only parses the command line and calls into this library; tests start
//! the very same [`App`] on port 0.
//!
//! Modules, by what they own:
//! - [`config`]: the typed configuration; [`cli`]: the `simple-chat` commands.
//! - [`http`]: routes, extractors, middleware — the HTTP contract.
//! - [`admin`]: the admin page at `/admin/` (server-rendered HTML for staff).
//! - [`accounts`], [`policy`], [`domain`]: the rules (users, permissions, valid input), shared
//!   by the API, the CLI and the admin page.
//! - [`store`]: the database seam; every change and its events in one transaction.
//! - [`auth`]: password hashes, tokens, login throttling.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod policy;
pub mod store;

use std::{future::Future, sync::Arc};

use anyhow::Context;

pub use config::Config;

use crate::{
    accounts::NewAccount,
    auth::{
        jwt::{TokenKeys, generate_secret},
        throttle::LoginThrottle,
    },
    http::{AppState, Shared},
    store::Store,
};

/// The settings key under which a generated token signing key is kept.
const SIGNING_KEY_SETTING: &str = "jwt_signing_key";

/// A running instance's shared parts: the store, the token keys, the configuration.
#[derive(Clone)]
pub struct App {
    state: AppState,
}

impl App {
    /// Opens the database (applying pending migrations) and prepares the token keys.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let url = config.database_url.clone();
        let (store, applied) = tokio::task::spawn_blocking(move || Store::open(&url))
            .await?
            .with_context(|| format!("opening the database {:?}", config.database_url))?;
        for name in applied {
            tracing::info!(migration = name, "applied migration");
        }
        let secret = match &config.secret_key {
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
        let throttle =
            LoginThrottle::new(config.login_failures_allowed, config.login_throttle_window);
        Ok(App {
            state: Arc::new(Shared {
                store,
                keys,
                throttle,
                config,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.state.store
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

    /// Serves API until `shutdown` resolves; in-flight requests are finished first.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        http::serve(self.state, listener, shutdown).await
    }
}
