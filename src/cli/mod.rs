//! The `simple-chat` command line: `serve` ([`serve`]: its flags are the configuration),
//! `migrate`, the account commands that Django's `manage.py` offered (`createsuperuser`,
//! `createuser`, `changepassword`), and moving data in.

mod serve;

use std::{
    io::{BufRead, IsTerminal, Write},
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::{
    App, Config,
    accounts::{self, AccountChanges, NewAccount},
    config::{DEFAULT_DATABASE_URL, redact_url},
    error::Error,
    store::Store,
};

/// `simple-chat --version`: the release and the newest migration it knows.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (schema ",
    env!("SIMPLE_CHAT_SCHEMA"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "simple-chat",
    version = VERSION,
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
    Serve(Box<serve::ServeArgs>),
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
    /// Copy the SQLite database (while it is being served) to PATH, checked; PostgreSQL is
    /// backed up with pg_dump.
    Backup {
        /// The file to write (replaced if it exists).
        path: std::path::PathBuf,
    },
    /// Import the original Django app's users, threads and messages from its db.sqlite3 into
    /// DATABASE_URL. Safe to run again: nothing is imported twice.
    ImportDjango {
        /// Path to the original's db.sqlite3.
        path: std::path::PathBuf,
    },
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
    let config = Config::new(cli.database_url);
    match cli.command {
        Command::Serve(args) => serve::run(config, *args).await,
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
                app.password_checks(),
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
                app.password_checks(),
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
        Command::Backup { path } => {
            let url = config.database_url.clone();
            let report =
                tokio::task::spawn_blocking(move || crate::backup::backup(&url, &path)).await??;
            println!(
                "Backed up to {} ({} bytes, schema {}); integrity check: ok.",
                report.path.display(),
                report.bytes,
                report.schema
            );
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
                app.password_checks(),
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

pub(crate) async fn shutdown_signal() {
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
