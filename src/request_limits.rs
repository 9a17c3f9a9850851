//! What one client can make the server hold, bounded as `config::RequestLimits` says: how long a
//! request body may take to arrive, how long a response may wait for a client that stops
//! reading, how many connections one address may keep open, and how many large scans run at
//! once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::config::{RequestLimits, TrustedProxies, canonical};

/// The message of the I/O error a late body ends with: handlers that read bodies answer 408 on
/// it (`is_body_timeout`).
const BODY_TIMEOUT: &str = "the request body did not arrive in time";

pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// Wraps every request body so that it fails with a timeout when a piece takes longer than
/// `body_chunk_timeout` or the whole longer than `body_total_timeout`: whatever reads the body
/// (forms, the API's parameters, JSON) gets an error instead of waiting forever.
pub async fn body_deadlines(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = req
        .app_data::<actix_web::web::Data<RequestLimits>>()
        .map(|limits| *limits.get_ref())
        .unwrap_or_default();
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        // No body to wait for (a GET): no timer to set.
        req.set_payload(payload);
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let deadline = DeadlinePayload {
        inner: payload,
        chunk_timeout: limits.body_chunk_timeout,
        total_deadline: Instant::now() + limits.body_total_timeout,
        timer: Box::pin(tokio::time::sleep(limits.body_chunk_timeout)),
        finished: false,
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(deadline);
    req.set_payload(Payload::from(boxed));
    Ok(next.call(req).await?.map_into_boxed_body())
}

struct DeadlinePayload {
    inner: Payload,
    chunk_timeout: Duration,
    total_deadline: Instant,
    timer: Pin<Box<Sleep>>,
    finished: bool,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = (Instant::now() + self.chunk_timeout).min(self.total_deadline);
                self.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                self.finished = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.finished = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        BODY_TIMEOUT,
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Open connections per client address. Each accepted connection carries a `ConnectionSlot` in
/// its extensions, which gives its place back when the connection ends.
pub struct ConnectionTracker {
    limit: usize,
    trusted: Arc<TrustedProxies>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

pub struct ConnectionSlot {
    tracker: Arc<ConnectionTracker>,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.tracker.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

impl ConnectionTracker {
    pub fn new(limit: usize, trusted: Arc<TrustedProxies>) -> Arc<ConnectionTracker> {
        Arc::new(ConnectionTracker {
            limit,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `address`; `None` if the address already holds its limit.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<ConnectionSlot> {
        let address = canonical(address);
        let unlimited = self.limit == 0 || self.trusted.trusts(address);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if !unlimited && *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            tracker: Arc::clone(self),
            address,
        })
    }

    /// Connections open now from `address`.
    pub fn open_from(&self, address: IpAddr) -> usize {
        let address = canonical(address);
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&address).copied().unwrap_or(0)
    }
}

/// What `HttpServer::on_connect` runs for each accepted connection: the connection limit per
/// address (an excess connection is shut down at once, before it can send anything) and the
/// write timeout.
pub fn on_connect(
    tracker: &Arc<ConnectionTracker>,
    limits: &RequestLimits,
    connection: &dyn std::any::Any,
    extensions: &mut actix_web::dev::Extensions,
) {
    // Plain, or the TCP stream under TLS (the handshake is done by now).
    let stream = connection
        .downcast_ref::<actix_web::rt::net::TcpStream>()
        .or_else(|| {
            connection
                .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
                .map(|tls| tls.get_ref().0)
        });
    let Some(stream) = stream else {
        tracing::warn!("a connection of an unknown kind: its limits are not applied");
        return;
    };
    set_write_timeout(stream, limits.write_timeout);
    // A streamed answer (lists, filters, exports) goes out in several writes: with Nagle's
    // algorithm on, the last one waits for the client's delayed ACK, 40 ms on Linux.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {error}");
    }
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    match tracker.admit(peer.ip()) {
        Some(slot) => {
            extensions.insert(slot);
        }
        None => {
            tracing::warn!(
                "{} holds {} connections already: refused another",
                peer.ip(),
                tracker.limit
            );
            shut_down(stream);
        }
    }
}

#[cfg(target_os = "linux")]
fn set_write_timeout(stream: &actix_web::rt::net::TcpStream, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let millis = libc::c_uint::try_from(timeout.as_millis()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: the fd is the live socket of `stream`; setsockopt reads `millis` for its size.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&millis as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if result != 0 {
        tracing::debug!(
            "TCP_USER_TIMEOUT not set: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn set_write_timeout(_: &actix_web::rt::net::TcpStream, _: Duration) {}

fn shut_down(stream: &actix_web::rt::net::TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the fd is the live socket of `stream`; shutdown ends the connection without
        // closing the fd, which its owner still closes.
        unsafe {
            libc::shutdown(stream.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_limit_and_slots_come_back() {
        let tracker = ConnectionTracker::new(2, Arc::new(TrustedProxies::default()));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = tracker.admit(a).unwrap();
        let _second = tracker.admit(a).unwrap();
        assert!(tracker.admit(a).is_none());
        assert!(tracker.admit(b).is_some());
        drop(first);
        assert_eq!(tracker.open_from(a), 1);
        let _third = tracker.admit(a).unwrap();
        // IPv4-mapped IPv6 is the same address.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(tracker.admit(mapped).is_none());
    }

    #[test]
    fn trusted_proxies_are_not_limited() {
        let trusted = Arc::new(TrustedProxies::parse("10.0.0.9").unwrap());
        let tracker = ConnectionTracker::new(1, trusted);
        let proxy: IpAddr = [10, 0, 0, 9].into();
        let slots: Vec<_> = (0..10).map(|_| tracker.admit(proxy).unwrap()).collect();
        assert_eq!(tracker.open_from(proxy), 10);
        drop(slots);
        assert_eq!(tracker.open_from(proxy), 0);
    }
}
