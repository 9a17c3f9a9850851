//! Credentials: API keys, one-time links and passwords. Secrets live only in memory on their way
//! to the caller; what is stored is a hash.

pub mod api_keys;
pub mod client_address;
pub mod links;
pub mod login_throttle;
pub mod passwords;
pub mod recovery_codes;
mod secrets;
pub mod throttle;
pub mod totp;
pub mod webauthn;

pub use secrets::{constant_time_eq, random_hex, sha256_hex};
