//! Black-box HTTP tests for Simple Chat: each test starts its own server on a fresh temporary
//! SQLite database and talks to it over HTTP like any client would.

mod helpers;

mod admin;
mod auth;
mod blocking;
mod cli;
mod concurrency;
mod conventions;
mod durability;
mod export;
mod files;
mod fuzz;
mod instances;
mod limits;
mod message_actions;
mod messages;
mod moving;
mod operations;
mod postgres;
mod presence;
mod read_and_unread;
mod realtime;
mod safety;
mod schema;
mod search;
mod threads;
mod tokens;
mod users;
