//! Logs through `tracing`: lines go into a buffer in memory that a thread of its own writes to
//! stderr 20 ms after the first of them came, so a request never waits for the terminal or a
//! pipe, nor wakes a thread per line (only the first line into an empty buffer does); when
//! stderr falls behind, lines are dropped and counted, not requests slowed. One line per request names the client, the method, the path with any one-time
//! secret redacted, the status and the time taken; never a query string (it may hold an
//! `auth_token`), a header or a body.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::state::AppState;

/// How long the writer thread lets lines gather after the first one before writing them all.
const WRITE_EVERY: Duration = Duration::from_millis(20);
/// Logged and not yet written, further lines are dropped (and counted) until it has caught up.
const DROP_AT_BYTES: usize = 8 * 1024 * 1024;

/// Starts logging to stderr in `format`, filtered by `RUST_LOG` (default `info`). Keep the guard
/// for the life of the process: dropping it writes what is left and stops the writer.
pub fn init(format: LogFormat) -> LogWriter {
    let writer = LogWriter::start(Box::new(std::io::stderr()));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.lines())
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
    writer
}

/// The lines logged and not yet written, shared by the loggers and the writer thread.
#[derive(Default)]
struct Pending {
    state: Mutex<PendingLines>,
    wake: Condvar,
}

#[derive(Default)]
struct PendingLines {
    bytes: Vec<u8>,
    dropped: u64,
    stopping: bool,
}

/// The thread that writes logged lines out; dropping it writes what is left and ends it.
pub struct LogWriter {
    pending: Arc<Pending>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogWriter {
    fn start(mut out: Box<dyn Write + Send>) -> LogWriter {
        let pending = Arc::new(Pending::default());
        let shared = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("roost-log".into())
            .spawn(move || {
                let mut taken = Vec::new();
                loop {
                    {
                        // Idle until a line comes (no timer ticking while nothing is logged).
                        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                        while state.bytes.is_empty() && !state.stopping {
                            state = shared
                                .wake
                                .wait(state)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                    // Then a moment for more lines to join it: one write for all of them.
                    std::thread::sleep(WRITE_EVERY);
                    let (dropped, stopping) = {
                        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                        std::mem::swap(&mut state.bytes, &mut taken);
                        (std::mem::take(&mut state.dropped), state.stopping)
                    };
                    // Nowhere left to report a failing stderr: its lines are lost.
                    if dropped > 0 {
                        let _ =
                            writeln!(out, "{dropped} log lines dropped: stderr could not keep up");
                    }
                    let _ = out.write_all(&taken);
                    let _ = out.flush();
                    taken.clear();
                    if stopping {
                        break;
                    }
                }
            });
        LogWriter {
            pending,
            // Without the thread, lines pile up to the drop limit and are then counted.
            thread: thread.ok(),
        }
    }

    /// Where `tracing` writes each formatted line.
    fn lines(&self) -> LogLines {
        LogLines(Arc::clone(&self.pending))
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.pending
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopping = true;
        self.pending.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A handle the formatter writes one event (one line) through at a time.
#[derive(Clone)]
struct LogLines(Arc<Pending>);

impl Write for LogLines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let wake = {
            let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.bytes.len() + line.len() > DROP_AT_BYTES {
                state.dropped += 1;
                false
            } else {
                state.bytes.extend_from_slice(line);
                // Only the first line after a write wakes the writer (a system call); the
                // others join it in the buffer.
                state.bytes.len() == line.len()
            }
        };
        if wake {
            self.0.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogLines {
    type Writer = LogLines;

    fn make_writer(&'a self) -> LogLines {
        self.clone()
    }
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
                let state = request.app_data::<actix_web::web::Data<AppState>>();
                let client = state
                    .and_then(|state| state.client_address(request))
                    .map_or_else(|| "-".to_string(), |ip| ip.to_string());
                if let Some(state) = state {
                    let route = request.match_pattern();
                    state.metrics.request(
                        route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE),
                        request.method().as_str(),
                        response.status(),
                        ms / 1000.0,
                    );
                }
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
