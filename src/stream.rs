//! Answers that list (or export) things, written while the store is read: the list is produced on the
//! blocking pool from one read transaction and handed to the client in chunks through a channel
//! of two, so a request holds about `CHUNK_BYTES × 3` of memory however long the list is, and a
//! client that reads slowly slows the producer instead of filling memory. The bytes are those of
//! the whole answer built at once (`serde_json`'s compact output, keys in order).

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc;

use crate::state::AppState;
use crate::store::{Store, StoreError};

/// How much of an answer is handed over at once.
const CHUNK_BYTES: usize = 32 * 1024;

/// Why a streamed answer stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not write the answer")]
    Json(#[from] serde_json::Error),
    #[error("could not write the answer")]
    Io(#[source] std::io::Error),
    #[error("could not write the archive")]
    Zip(#[from] zip::result::ZipError),
    /// The client went away: nothing more to do.
    #[error("the client went away")]
    Gone,
}

impl From<std::io::Error> for StreamError {
    fn from(error: std::io::Error) -> StreamError {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            StreamError::Gone
        } else {
            StreamError::Io(error)
        }
    }
}

/// Where a streamed answer's bytes go: kept until a chunk is full, then handed to the response
/// (waiting while the client is slow). A client that went away is a `BrokenPipe`.
pub struct ChunkSink {
    buffer: Vec<u8>,
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES + 4096),
        ));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// JSON written piece by piece into `out`: keys and punctuation by the caller, in order.
pub struct JsonWriter<W: std::io::Write> {
    out: W,
    /// Whether the list being written has an element already (for the commas).
    first: bool,
}

impl<W: std::io::Write> JsonWriter<W> {
    pub fn new(out: W) -> JsonWriter<W> {
        JsonWriter { out, first: true }
    }

    /// Raw JSON text (punctuation and keys the caller writes in order).
    pub fn raw(&mut self, text: &str) -> Result<(), StreamError> {
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// One value, compact.
    pub fn value(&mut self, value: &impl Serialize) -> Result<(), StreamError> {
        serde_json::to_writer(&mut self.out, value).map_err(|error| match error.io_error_kind() {
            Some(std::io::ErrorKind::BrokenPipe) => StreamError::Gone,
            _ => StreamError::Json(error),
        })
    }

    /// Opens a list: `"name":[`.
    pub fn open_list(&mut self, name: &str) -> Result<(), StreamError> {
        self.first = true;
        self.value(&name)?;
        self.raw(":[")
    }

    /// One element of the open list.
    pub fn element(&mut self, value: &impl Serialize) -> Result<(), StreamError> {
        if !std::mem::take(&mut self.first) {
            self.raw(",")?;
        }
        self.value(value)
    }

    pub fn close_list(&mut self) -> Result<(), StreamError> {
        self.raw("]")
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A permit to run a scan, or `None` (answer 503): at most `--max-concurrent-scans` lists,
/// filters and exports run at once, so a handful of requests can't occupy every core.
pub fn scan_permit(state: &AppState) -> Option<OwnedSemaphorePermit> {
    std::sync::Arc::clone(&state.scans).try_acquire_owned().ok()
}

/// A 200 JSON answer whose body `produce` writes from the store on the blocking pool. Whatever
/// must be refused (a missing flock, a bad parameter) is refused before: once the first byte is
/// out the status is 200.
pub fn stream_json<F>(state: &AppState, permit: OwnedSemaphorePermit, produce: F) -> HttpResponse
where
    F: FnOnce(&Store, &mut JsonWriter<&mut ChunkSink>) -> Result<(), StreamError> + Send + 'static,
{
    stream_body(
        state,
        permit,
        HttpResponse::Ok().content_type("application/json").take(),
        move |store, sink| produce(store, &mut JsonWriter::new(sink)),
    )
}

/// A 200 answer (headers from `response`) whose body `produce` writes into a `ChunkSink` from the
/// store on the blocking pool.
pub fn stream_body<F>(
    state: &AppState,
    permit: OwnedSemaphorePermit,
    mut response: actix_web::HttpResponseBuilder,
    produce: F,
) -> HttpResponse
where
    F: FnOnce(&Store, &mut ChunkSink) -> Result<(), StreamError> + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel(2);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut sink = ChunkSink {
            buffer: Vec::with_capacity(CHUNK_BYTES + 4096),
            chunks: sender.clone(),
        };
        let outcome = produce(&store, &mut sink)
            .and_then(|()| std::io::Write::flush(&mut sink).map_err(StreamError::from));
        match outcome {
            Ok(()) | Err(StreamError::Gone) => {}
            Err(error) => {
                tracing::error!(
                    "a streamed answer failed midway: {}",
                    crate::error_chain::error_chain(&error)
                );
                // The status is sent already: cutting the body short tells the client.
                let _ = sender.blocking_send(Err(std::io::Error::other("the answer failed")));
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    response.streaming(body)
}
