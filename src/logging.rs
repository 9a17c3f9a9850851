//! Logs through `tracing`: written to stderr by a thread of its own, so a request never waits for
//! the terminal or a pipe (when the writer falls behind, lines are dropped, not requests
//! slowed). One line per request names the client, the method, the path with any one-time
//! secret redacted, the status and the time taken; never a query string (it may hold an
//! `auth_token`), a header or a body.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::state::AppState;

/// Starts logging to stderr in `format`, filtered by `RUST_LOG` (default `info`). Keep the guard
/// for the life of the process: dropping it flushes and stops the writer.
pub fn init(format: LogFormat) -> WorkerGuard {
    // The writer thread flushes whenever it has written every line waiting for it: under load
    // many lines go out in one write instead of one system call each.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking(stderr);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Err(error) = installed {
        eprintln!("logging was already set up: {error}");
    }
    guard
}

/// When the request began, for the time its line reports.
struct Started(Instant);

/// The request's line, written when it ends: the client, the method, the redacted path, the
/// status and the time taken. No span is opened for the request: recording its fields when it
/// starts cost a tenth of `user/get`'s throughput; a warning logged while a request runs names
/// what it is about itself.
pub struct RedactedRequestSpan;

impl RootSpanBuilder for RedactedRequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        Span::none()
    }

    fn on_request_end<B: MessageBody>(_span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        match outcome {
            Ok(response) => {
                let request = response.request();
                let ms = request
                    .extensions()
                    .get::<Started>()
                    .map_or(0.0, |started| started.0.elapsed().as_secs_f64() * 1000.0);
                let client = request
                    .app_data::<actix_web::web::Data<AppState>>()
                    .and_then(|state| state.client_address(request))
                    .map_or_else(|| "-".to_string(), |ip| ip.to_string());
                let status = response.status().as_u16();
                let ms = (ms * 100.0).round() / 100.0;
                tracing::info!(
                    client = %client,
                    method = %request.method(),
                    path = %crate::web::redact_path(request.path()),
                    status,
                    ms,
                    "answered"
                );
            }
            Err(error) => {
                let status = error.as_response_error().status_code().as_u16();
                tracing::info!(status, "answered with an error");
            }
        }
    }
}
