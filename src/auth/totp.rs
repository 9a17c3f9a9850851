//! TOTP (RFC 6238): 6 digits, 30 s steps, ±1 step of skew, SHA-1 for authenticator-app
//! compatibility. A code is accepted only for a step later than the last one accepted, which the
//! store records in the same transaction (replay protection).

use qrcodegen::{QrCode, QrCodeEcc};
use totp_rs::{Algorithm, Secret};

pub const ISSUER: &str = "Roost";

#[derive(Debug, thiserror::Error)]
#[error("TOTP setup failed: {0}")]
pub struct TotpError(String);

/// A fresh 160-bit secret in base32, as authenticator apps take it.
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

fn totp(secret_base32: &str, account: &str) -> Result<totp_rs::Totp, TotpError> {
    let secret = Secret::try_from_base32(secret_base32).map_err(|e| TotpError(e.to_string()))?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .with_skew(1)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| TotpError(e.to_string()))
}

/// The step a code matches at `unix_time` (±1 step), if any. Malformed codes match nothing.
pub fn matched_step(secret_base32: &str, code: &str, unix_time: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret_base32, "").ok()?.check(&code, unix_time)
}

/// The `otpauth://` URI an authenticator app scans.
pub fn provisioning_uri(secret_base32: &str, account: &str) -> Result<String, TotpError> {
    totp(secret_base32, account)?
        .to_url()
        .map_err(|e| TotpError(e.to_string()))
}

/// The URI as an SVG QR code, drawn here so no image leaves the server.
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let qr = QrCode::encode_text(uri, QrCodeEcc::Medium).map_err(|e| TotpError(e.to_string()))?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="220" height="220" shape-rendering="crispEdges" role="img" aria-label="QR code for the authenticator app"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_with_one_step_of_skew() {
        let secret = new_secret();
        let t = totp(&secret, "a@x.io").unwrap();
        let now = 1_800_000_000;
        let code = t.generate(now).to_string();
        assert_eq!(matched_step(&secret, &code, now), Some(now / 30));
        assert_eq!(matched_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(matched_step(&secret, &code, now + 90), None);
        assert_eq!(matched_step(&secret, "12345", now), None);
        assert_eq!(matched_step(&secret, "abcdef", now), None);
        assert!(
            provisioning_uri(&secret, "a@x.io")
                .unwrap()
                .starts_with("otpauth://totp/")
        );
        assert!(qr_svg("otpauth://totp/x").unwrap().starts_with("<svg"));
    }
}
