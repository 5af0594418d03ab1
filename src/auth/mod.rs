//! Authentication: password hashing, simplejwt-compatible tokens, and login throttling.

pub mod jwt;
pub mod password;
pub mod throttle;
