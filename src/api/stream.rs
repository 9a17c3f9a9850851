//! Answers that list things, written while the store is read: the list is produced on the
//! blocking pool from one read transaction and handed to the client in chunks through a channel
//! of two, so a request holds about `CHUNK_BYTES × 3` of memory however long the list is, and a
//! client that reads slowly slows the producer instead of filling memory. The bytes are those of
//! the whole answer built at once (`serde_json`'s compact output, keys in order).

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// How much of an answer is handed over at once.
const CHUNK_BYTES: usize = 32 * 1024;

/// Why a streamed answer stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not write the answer: {0}")]
    Json(#[from] serde_json::Error),
    /// The client went away: nothing more to do.
    #[error("the client went away")]
    Gone,
}

/// Where a streamed answer is written.
pub struct JsonWriter {
    buffer: Vec<u8>,
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
    /// Whether the list being written has an element already (for the commas).
    first: bool,
}

impl JsonWriter {
    /// Raw JSON text (punctuation and keys the caller writes in order).
    pub fn raw(&mut self, text: &str) -> Result<(), StreamError> {
        self.buffer.extend_from_slice(text.as_bytes());
        self.flush_if_full()
    }

    /// One value, compact.
    pub fn value(&mut self, value: &impl Serialize) -> Result<(), StreamError> {
        serde_json::to_writer(&mut self.buffer, value)?;
        self.flush_if_full()
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
            self.buffer.push(b',');
        }
        self.value(value)
    }

    pub fn close_list(&mut self) -> Result<(), StreamError> {
        self.raw("]")
    }

    fn flush_if_full(&mut self) -> Result<(), StreamError> {
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| StreamError::Gone)
    }
}

/// A permit to run a scan, or the 503 that says to come back: at most `--max-concurrent-scans`
/// lists, filters and exports run at once, so a handful of requests can't occupy every core.
pub fn scan_permit(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    std::sync::Arc::clone(&state.scans)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::busy("Too many lists are being read right now. Try again in a moment.")
        })
}

/// A 200 JSON answer whose body `produce` writes from the store on the blocking pool. Whatever
/// must be refused (a missing flock, a bad parameter) is refused before: once the first byte is
/// out the status is 200.
pub fn stream_json<F>(state: &AppState, permit: OwnedSemaphorePermit, produce: F) -> HttpResponse
where
    F: FnOnce(&Store, &mut JsonWriter) -> Result<(), StreamError> + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel(2);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut writer = JsonWriter {
            buffer: Vec::with_capacity(CHUNK_BYTES + 4096),
            chunks: sender.clone(),
            first: true,
        };
        let outcome = produce(&store, &mut writer).and_then(|()| writer.flush());
        match outcome {
            Ok(()) | Err(StreamError::Gone) => {}
            Err(error) => {
                log::error!("a streamed answer failed midway: {error}");
                // The status is sent already: cutting the body short tells the client.
                let _ = sender.blocking_send(Err(std::io::Error::other("the answer failed")));
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body)
}
