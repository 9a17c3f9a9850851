//! How long a console session lasts, and what one client can make the server hold.

use std::time::Duration;

use clap::Args;

use super::parse;

/// How long a console session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct SessionLimits {
    /// A console session unused for this long ends (e.g. 30m, 2h)
    #[arg(
        long = "session-idle",
        value_name = "SESSION_IDLE",
        env = "ROOST_SESSION_IDLE",
        default_value = "30m",
        value_parser = parse::seconds("--session-idle"),
        global = true
    )]
    pub idle_secs: u64,
    /// A console session ends this long after login, however busy (e.g. 12h, 7d)
    #[arg(
        long = "session-lifetime",
        value_name = "SESSION_LIFETIME",
        env = "ROOST_SESSION_LIFETIME",
        default_value = "12h",
        value_parser = parse::seconds("--session-lifetime"),
        global = true
    )]
    pub absolute_secs: u64,
}

impl SessionLimits {
    /// `last_seen` is only rewritten when older than this (a minute, or less for short idle
    /// limits), to spare a store write on every request.
    pub fn seen_granularity_secs(&self) -> u64 {
        (self.idle_secs / 4).clamp(1, 60)
    }
}

/// What one client can make the server hold: how long a request body may take to arrive, how
/// long a response may wait for a client that stops reading, how many connections one address
/// may keep open, and how many large scans run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct RequestLimits {
    /// The longest wait for the next piece of a request body; a late body is answered 408
    #[arg(
        long = "body-timeout",
        value_name = "BODY_TIMEOUT",
        env = "ROOST_BODY_TIMEOUT",
        default_value = "5s",
        value_parser = parse::duration("--body-timeout"),
        global = true
    )]
    pub body_chunk_timeout: Duration,
    /// The longest a whole request body may take
    #[arg(
        long,
        env = "ROOST_BODY_TOTAL_TIMEOUT",
        default_value = "30s",
        value_parser = parse::duration("--body-total-timeout"),
        global = true
    )]
    pub body_total_timeout: Duration,
    /// An idle connection between requests is closed after this
    #[arg(
        long,
        env = "ROOST_KEEP_ALIVE",
        default_value = "15s",
        value_parser = parse::duration("--keep-alive"),
        global = true
    )]
    pub keep_alive: Duration,
    // Data sent and not acknowledged for this long ends the connection (TCP_USER_TIMEOUT).
    /// A client that stops reading a response for this long loses the connection
    #[arg(
        long,
        env = "ROOST_WRITE_TIMEOUT",
        default_value = "30s",
        value_parser = parse::duration("--write-timeout"),
        global = true
    )]
    pub write_timeout: Duration,
    // Trusted proxies are exempt because every client behind them shares their address.
    /// Open connections per client address; more are refused at once (0: no limit). Trusted
    /// proxies are exempt
    #[arg(
        long = "max-connections-per-client",
        value_name = "MAX_CONNECTIONS_PER_CLIENT",
        env = "ROOST_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 128,
        global = true
    )]
    pub connections_per_client: usize,
    /// Lists, filters and exports running at once; more are answered 503 [default: the number
    /// of cores, at least 2]
    #[arg(
        long = "max-concurrent-scans",
        value_name = "MAX_CONCURRENT_SCANS",
        env = "ROOST_MAX_CONCURRENT_SCANS",
        default_value_t = default_concurrent_scans(),
        hide_default_value = true,
        value_parser = parse::at_least_one("--max-concurrent-scans"),
        global = true
    )]
    pub concurrent_scans: usize,
}

fn default_concurrent_scans() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

impl Default for RequestLimits {
    fn default() -> Self {
        parse::defaults()
    }
}
