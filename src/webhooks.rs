//! The webhook sender: delivers the queued events (`store::webhooks`) to their targets, signs
//! each body, retries failures with exponential backoff like mail, and never follows a redirect.
//! Targets on loopback, private, link-local and other non-public addresses are refused unless
//! `--webhooks-allow-private`; the address checked is the address connected to (the name is
//! resolved once and the connection pinned to it), so a name that changes its answer between
//! the check and the request (DNS rebinding) can't reach inside.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::background::Worker;
use crate::mail::queue::retry_delay;
use crate::store::webhooks::{QueuedDelivery, Webhook, WebhookEvent, WebhookFormat};
use crate::store::{Store, StoreError, now_unix};

/// How long a receiver gets to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// With nothing due, the queue is looked at this often (an event queued by any change is sent
/// within it).
const POLL: Duration = Duration::from_secs(1);
/// Deliveries tried per round.
const ROUND: usize = 16;

pub const SIGNATURE_HEADER: &str = "X-Roost-Signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the target's secret>`: a
/// receiver recomputes it, and refuses an old `t` (a replay).
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// The body for `format`.
pub fn body(format: WebhookFormat, event: &WebhookEvent, console_url: &str) -> Value {
    let by = format!("{} (by {})", event.message, event.actor);
    match format {
        WebhookFormat::Generic => json!({
            "console": console_url,
            "event": {
                "id": event.id,
                "at": crate::timestamps::rfc3339(event.at),
                "action_type": event.action_type,
                "message": event.message,
                "actor": event.actor,
                "target": event.target,
                "flock_id": event.flock_id,
                "details": event.details,
            },
        }),
        WebhookFormat::Slack => json!({ "text": format!("Roost: {by}") }),
        WebhookFormat::Teams => json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": event.message,
            "themeColor": "1F4E79",
            "title": format!("Roost: {}", event.action_type),
            "text": by,
        }),
    }
}

/// Whether `ip` is a public unicast address (what a target may resolve to by default).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Why a target can't be sent to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL is not an http or https URL with a host")]
    NotHttp,
    #[error("{0} does not resolve")]
    Unresolved(String),
    #[error("{host} is {ip}, not a public address (--webhooks-allow-private allows it)")]
    Private { host: String, ip: IpAddr },
}

/// The host and the address to connect to for `url`, checked.
pub async fn resolve_target(
    url: &str,
    allow_private: bool,
) -> Result<(reqwest::Url, String, SocketAddr), TargetError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| TargetError::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::NotHttp);
    }
    let host = parsed
        .host_str()
        .ok_or(TargetError::NotHttp)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().ok_or(TargetError::NotHttp)?;
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| TargetError::Unresolved(host.clone()))?
            .collect(),
    };
    let first = *addresses
        .first()
        .ok_or_else(|| TargetError::Unresolved(host.clone()))?;
    if !allow_private && let Some(bad) = addresses.iter().find(|address| !is_public(address.ip())) {
        return Err(TargetError::Private { host, ip: bad.ip() });
    }
    Ok((parsed, host, first))
}

/// Sends one delivery; `Ok` with the receiver's status when it accepted (2xx).
async fn send(
    webhook: &Webhook,
    secret: &str,
    delivery: &QueuedDelivery,
    console_url: &str,
    allow_private: bool,
) -> Result<String, String> {
    let (url, host, address) = resolve_target(&webhook.url, allow_private)
        .await
        .map_err(|error| error.to_string())?;
    let body = serde_json::to_vec(&body(webhook.format, &delivery.event, console_url))
        .map_err(|error| error.to_string())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .resolve(&host, address)
        .user_agent(concat!("Roost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| error.to_string())?;
    let timestamp = now_unix();
    let answer = client
        .post(url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, signature(secret, timestamp, &body))
        .header("X-Roost-Event", delivery.event.action_type.as_str())
        .header("X-Roost-Delivery", delivery.id.to_string())
        .body(body)
        .send()
        .await
        // Without the URL: a Slack or Teams URL carries its secret.
        .map_err(|error| error.without_url().to_string())?;
    let status = answer.status();
    if status.is_success() {
        Ok(format!("HTTP {}", status.as_u16()))
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

fn now_ms() -> u64 {
    now_unix().saturating_mul(1000)
}

/// Starts the sender; the handle stops it between two deliveries (graceful shutdown: a delivery
/// under way is finished and recorded, so it isn't sent again after the restart).
pub fn spawn_sender(
    store: Store,
    console_url: String,
    allow_private: bool,
    retry_base: Duration,
) -> Worker {
    let sender = Worker::default();
    let handle = sender.clone();
    tokio::spawn(async move {
        let _running = handle.running();
        while !handle.is_stopping() {
            let round = deliver_due(&store, &console_url, allow_private, retry_base, &handle);
            if let Err(error) = round.await {
                tracing::error!("webhooks: {}", crate::error_chain::error_chain(&error));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = handle.stop_requested() => {}
            }
        }
        tracing::info!("webhook sender stopped");
    });
    sender
}

async fn deliver_due(
    store: &Store,
    console_url: &str,
    allow_private: bool,
    retry_base: Duration,
    sender: &Worker,
) -> Result<(), StoreError> {
    loop {
        let now = now_ms();
        let due = store
            .off_async(move |store| store.due_deliveries(now, ROUND))
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let webhooks = store.off_async(|store| store.webhooks()).await?;
        for delivery in due {
            if sender.is_stopping() {
                // Left queued: delivered after the next start.
                return Ok(());
            }
            let Some(webhook) = webhooks.iter().find(|w| w.id == delivery.webhook_id) else {
                continue;
            };
            let outcome = match store.webhook_secret(webhook) {
                Ok(secret) => send(webhook, &secret, &delivery, console_url, allow_private).await,
                Err(error) => Err(format!("the secret can't be opened: {error}")),
            };
            match &outcome {
                Ok(status) => tracing::info!(
                    "webhook {} delivered event {} ({status})",
                    webhook.id,
                    delivery.event.id
                ),
                Err(error) => tracing::warn!(
                    "webhook {} could not deliver event {}: {error}",
                    webhook.id,
                    delivery.event.id
                ),
            }
            let retry_at = now_ms()
                + u64::try_from(retry_delay(retry_base, delivery.attempts + 1).as_millis())
                    .unwrap_or(u64::MAX);
            let now = now_unix();
            store
                .write_async(move |store| {
                    store.finish_delivery(&delivery, outcome.clone(), retry_at, now)
                })
                .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2, through the header's format.
    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            expected,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let signed = signature("Jefe", 7, b"{}");
        assert!(signed.starts_with("t=7,v1="));
        assert_eq!(signed.len(), "t=7,v1=".len() + 64);
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
