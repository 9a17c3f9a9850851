//! Roost: a self-hosted user and two-factor management console.

pub mod api;
pub mod auth;
pub mod background;
pub mod backups;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error_chain;
pub mod health;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod private_files;
pub mod request_limits;
pub mod review;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod stream;
pub mod summaries;
pub mod timestamps;
pub mod tls;
pub mod web;
pub mod webhooks;
