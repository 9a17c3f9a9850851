//! Integration tests for the JSON API (`/api/v1`) and the `roost` command line, one module per
//! resource, all in one test binary.

mod api_keys;
mod audit;
mod auth;
mod backup;
mod browser;
pub mod cli;
mod concurrency;
mod console;
mod console_audit;
mod console_flocks;
mod console_settings;
mod console_users;
mod endpoints;
mod export;
mod flocks;
mod harness;
mod health;
mod helpers;
mod logs;
mod mail;
mod memberships;
mod metrics;
mod notes;
mod offboarding;
mod packaging;
mod params;
mod password_path;
mod read_cache;
mod resource_limits;
mod settings;
mod streaming;
mod summaries;
mod tls;
mod two_factor;
mod upgrade;
mod users;
