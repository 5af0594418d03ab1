//! Authentication: password hashing (bounded: [`checks`]), simplejwt-compatible tokens, login
//! throttling, and who a client is ([`address`]).

pub mod address;
pub mod checks;
pub mod jwt;
pub mod password;
pub mod throttle;
pub mod verified;
