//! Black-box HTTP tests for Simple Chat: each test starts its own server on a fresh temporary
//! SQLite database and talks to it over HTTP like any client would.

mod helpers;

mod admin;
mod auth;
mod cli;
mod concurrency;
mod conventions;
mod durability;
mod fuzz;
mod instances;
mod limits;
mod messages;
mod moving;
mod postgres;
mod read_and_unread;
mod realtime;
mod safety;
mod schema;
mod threads;
mod tokens;
mod users;
