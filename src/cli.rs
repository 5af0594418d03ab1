//! The `simple-chat` command line: `serve`, `migrate`, and the account commands that Django's
//! `manage.py` offered (`createsuperuser`, `createuser`, `changepassword`).

use std::{
    io::{BufRead, IsTerminal, Write},
    net::SocketAddr,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::{
    App, Config,
    accounts::{self, AccountChanges, NewAccount},
    config::{DEFAULT_DATABASE_URL, redact_url},
    error::Error,
    store::Store,
};

#[derive(Debug, Parser)]
#[command(
    name = "simple-chat",
    version,
    about = "A fast, self-hostable one-to-one chat server"
)]
struct Cli {
    /// Database URL: sqlite://path (the default is a file in the working directory).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,

    /// Log format.
    #[arg(long, env = "SIMPLE_CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API.
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate,
    /// Create a superuser (asks for the details, or takes them from flags and environment).
    Createsuperuser {
        #[arg(long, env = "SIMPLE_CHAT_SUPERUSER_USERNAME")]
        username: Option<String>,
        #[arg(long, env = "SIMPLE_CHAT_SUPERUSER_EMAIL")]
        email: Option<String>,
        /// Ask nothing; the password comes from SIMPLE_CHAT_SUPERUSER_PASSWORD.
        #[arg(long)]
        noinput: bool,
    },
    /// Create a user (the password is asked twice, or comes from SIMPLE_CHAT_USER_PASSWORD).
    Createuser {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the user staff (may use the admin page and manage users).
        #[arg(long)]
        staff: bool,
        #[arg(long)]
        noinput: bool,
    },
    /// Set a user's password (asked twice, or from SIMPLE_CHAT_USER_PASSWORD).
    Changepassword {
        username: String,
        #[arg(long)]
        noinput: bool,
    },
    /// Copy a whole database into an empty one (e.g. SQLite to PostgreSQL), ids preserved,
    /// then verify every row. Stop the servers on the source first.
    MigrateData {
        /// The database to copy (default: DATABASE_URL).
        #[arg(long)]
        from: Option<String>,
        /// The empty database to copy into.
        #[arg(long)]
        to: String,
    },
    /// Import the original Django app's users, threads and messages from its db.sqlite3 into
    /// DATABASE_URL. Safe to run again: nothing is imported twice.
    ImportDjango {
        /// Path to the original's db.sqlite3.
        path: std::path::PathBuf,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SIMPLE_CHAT_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Token signing key; when unset one is generated once and kept in the database.
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
    /// Answer a new refresh token on every refresh.
    #[arg(long, env = "SIMPLE_CHAT_ROTATE_REFRESH_TOKENS")]
    rotate_refresh_tokens: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SIMPLE_CHAT_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Days each user's event log is kept.
    #[arg(long, env = "SIMPLE_CHAT_EVENT_RETENTION_DAYS", default_value_t = 30)]
    event_retention_days: u64,
    /// PostgreSQL: connections in the pool (default: four per core, 8 to 32).
    #[arg(long, env = "SIMPLE_CHAT_DATABASE_POOL_SIZE")]
    database_pool_size: Option<usize>,
    /// PostgreSQL: seconds a request waits for a pooled connection before answering 503.
    #[arg(long, env = "SIMPLE_CHAT_DATABASE_POOL_WAIT", default_value_t = 5)]
    database_pool_wait: u64,
    /// PostgreSQL: the longest a statement may run, in seconds.
    #[arg(long, env = "SIMPLE_CHAT_STATEMENT_TIMEOUT", default_value_t = 10)]
    statement_timeout: u64,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::new(cli.database_url);
    match cli.command {
        Command::Serve(args) => {
            config.secret_key = args.secret_key;
            config.access_token_lifetime = Duration::from_secs(args.access_token_lifetime);
            config.refresh_token_lifetime = Duration::from_secs(args.refresh_token_lifetime);
            config.rotate_refresh_tokens = args.rotate_refresh_tokens;
            config.body_limit = args.body_limit;
            config.event_retention = Duration::from_secs(args.event_retention_days * 86_400);
            config.database = crate::store::StoreOptions {
                pool_size: args.database_pool_size,
                pool_wait: Duration::from_secs(args.database_pool_wait),
                statement_timeout: Duration::from_secs(args.statement_timeout),
            };
            let app = App::build(config).await?;
            let listener = tokio::net::TcpListener::bind(args.bind)
                .await
                .with_context(|| format!("binding {}", args.bind))?;
            tracing::info!(address = %listener.local_addr()?, "serving");
            app.serve(listener, shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let (_, applied) = Store::open(&config.database_url).await?;
            if applied.is_empty() {
                println!("No migrations to apply.");
            }
            for name in applied {
                println!("Applied {name}");
            }
            Ok(())
        }
        Command::Createsuperuser {
            username,
            email,
            noinput,
        } => {
            let app = App::build(config).await?;
            let (username, email, password) = if noinput {
                let Some(username) = username else {
                    bail!(
                        "--username (or SIMPLE_CHAT_SUPERUSER_USERNAME) is required with --noinput"
                    );
                };
                let password = std::env::var("SIMPLE_CHAT_SUPERUSER_PASSWORD").context(
                    "SIMPLE_CHAT_SUPERUSER_PASSWORD must hold the password with --noinput",
                )?;
                (username, email.unwrap_or_default(), password)
            } else {
                let username = match username {
                    Some(username) => username,
                    None => prompt_line("Username: ")?,
                };
                let email = match email {
                    Some(email) => email,
                    None => prompt_line("Email address: ")?,
                };
                let password = prompt_new_password(&username)?;
                (username, email, password)
            };
            let user = accounts::create(
                app.store(),
                NewAccount {
                    username,
                    password,
                    email,
                    is_active: true,
                    is_staff: true,
                    is_superuser: true,
                    ..NewAccount::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
            println!("Superuser {:?} created successfully.", user.username);
            Ok(())
        }
        Command::Createuser {
            username,
            email,
            staff,
            noinput,
        } => {
            let app = App::build(config).await?;
            let password = new_password(&username, noinput)?;
            let user = accounts::create(
                app.store(),
                NewAccount {
                    username,
                    password,
                    email: email.unwrap_or_default(),
                    is_active: true,
                    is_staff: staff,
                    ..NewAccount::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
            println!("User {:?} created successfully.", user.username);
            Ok(())
        }
        Command::MigrateData { from, to } => {
            let from = from.unwrap_or(config.database_url);
            let (source, _) = Store::open(&from)
                .await
                .with_context(|| format!("opening the source {}", redact_url(&from)))?;
            let (target, _) = Store::open(&to)
                .await
                .with_context(|| format!("opening the target {}", redact_url(&to)))?;
            let copied = crate::moving::migrate_data(&source, &target).await?;
            for (table, count) in copied {
                println!("{}: {count} rows copied and verified", table.name());
            }
            Ok(())
        }
        Command::ImportDjango { path } => {
            let (store, _) = Store::open(&config.database_url).await?;
            let report = crate::moving::import_django(&store, &path).await?;
            println!(
                "Imported {} users ({} already there), {} threads ({} already there), \
                 {} messages ({} already there).",
                report.users,
                report.users_already_there,
                report.threads,
                report.threads_already_there,
                report.messages,
                report.messages_already_there
            );
            for problem in &report.problems {
                println!("Not imported: {problem}");
            }
            Ok(())
        }
        Command::Changepassword { username, noinput } => {
            let app = App::build(config).await?;
            let Some(user) = app.store().user_by_username(&username).await? else {
                bail!("user {username:?} does not exist");
            };
            let password = new_password(&username, noinput)?;
            accounts::update(
                app.store(),
                &user,
                AccountChanges {
                    password: Some(password),
                    ..AccountChanges::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
            println!("Password changed successfully for user {username:?}.");
            Ok(())
        }
    }
}

/// A password from SIMPLE_CHAT_USER_PASSWORD (`--noinput`) or asked twice.
fn new_password(username: &str, noinput: bool) -> anyhow::Result<String> {
    if noinput {
        std::env::var("SIMPLE_CHAT_USER_PASSWORD")
            .context("SIMPLE_CHAT_USER_PASSWORD must hold the password with --noinput")
    } else {
        prompt_new_password(username)
    }
}

fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("no input: use --noinput with the documented environment variables");
    }
    Ok(line.trim().to_owned())
}

/// Asks for a password twice until both match and the rules hold (like Django's commands).
fn prompt_new_password(username: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("cannot ask for a password without a terminal: use --noinput");
    }
    loop {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password (again): ")?;
        if first != second {
            eprintln!("Error: Your passwords didn't match.");
            continue;
        }
        let problems = crate::domain::password_problems(&first, username);
        if problems.is_empty() {
            return Ok(first);
        }
        for problem in problems {
            eprintln!("Error: {problem}");
        }
    }
}

/// An API error as lines a person reads (`username: A user with that username already exists.`).
pub fn describe(error: &Error) -> String {
    match error {
        Error::Invalid(Value::Object(fields)) => fields
            .iter()
            .flat_map(|(field, messages)| {
                let messages: Vec<String> = match messages {
                    Value::Array(list) => list
                        .iter()
                        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                        .collect(),
                    other => vec![other.to_string()],
                };
                messages.into_iter().map(move |m| format!("{field}: {m}"))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
