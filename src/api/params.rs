//! Parameters of an API call, merged from the query string and a form or JSON body, and parsed
//! into domain types with messages that name the parameter.

use std::collections::HashMap;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use super::error::ApiError;
use crate::domain::{Email, FlockId, ParseError};
use crate::request_limits::is_body_timeout;

/// Bodies above this are refused with 413 before they are read to the end.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// The parameters of the query string.
    pub fn from_query(req: &HttpRequest) -> Result<Params, ApiError> {
        let mut params = Params::default();
        params.add_urlencoded(req.query_string().as_bytes(), "query string")?;
        Ok(params)
    }

    /// Adds the parameters of the body. Fails on oversize, late (408), non-UTF-8 or malformed
    /// bodies and on a name given twice with different values.
    pub async fn read_body(
        &mut self,
        req: &HttpRequest,
        mut payload: Payload,
    ) -> Result<(), ApiError> {
        let params = self;
        let declared_length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared_length.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| {
                if is_body_timeout(&error) {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "The request body did not arrive in time.",
                    )
                } else {
                    ApiError::bad_request("Request body could not be read.")
                }
            })?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }

        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-www-form-urlencoded");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media_type == "application/x-www-form-urlencoded" {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::bad_request("Request body is not valid UTF-8."))?;
            params.add_urlencoded(text.as_bytes(), "body")?;
        } else if media_type == "application/json" || media_type.ends_with("+json") {
            params.add_json(&body)?;
        } else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Unsupported Content-Type '{media_type}': send parameters as a query string, a form body or a JSON object."
                ),
            ));
        }
        Ok(())
    }

    fn add_urlencoded(&mut self, raw: &[u8], source: &str) -> Result<(), ApiError> {
        for pair in raw.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let decode = |part: &[u8]| -> Result<String, ApiError> {
                let spaced: Vec<u8> = part
                    .iter()
                    .map(|b| if *b == b'+' { b' ' } else { *b })
                    .collect();
                let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
                String::from_utf8(bytes).map_err(|_| {
                    ApiError::bad_request(format!("The {source} is not valid UTF-8 once decoded."))
                })
            };
            self.insert(decode(name)?, decode(value)?)?;
        }
        Ok(())
    }

    fn add_json(&mut self, body: &[u8]) -> Result<(), ApiError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
            if std::str::from_utf8(body).is_err() {
                ApiError::bad_request("Request body is not valid UTF-8.")
            } else {
                ApiError::bad_request(format!("Request body is not valid JSON: {error}."))
            }
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(ApiError::bad_request("Request body must be a JSON object."));
        };
        for (name, value) in object {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(text) => text,
                serde_json::Value::Bool(flag) => flag.to_string(),
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Array(items) => {
                    let mut parts = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            serde_json::Value::String(text) => parts.push(text),
                            serde_json::Value::Number(number) => parts.push(number.to_string()),
                            _ => return Err(wrong_json_type(&name)),
                        }
                    }
                    parts.join(",")
                }
                serde_json::Value::Object(_) => return Err(wrong_json_type(&name)),
            };
            self.insert(name, text)?;
        }
        Ok(())
    }

    fn insert(&mut self, name: String, value: String) -> Result<(), ApiError> {
        match self.values.get(&name) {
            Some(existing) if *existing != value => Err(ApiError::bad_request(format!(
                "Parameter '{name}' was given more than once with different values."
            ))),
            Some(_) => Ok(()),
            None => {
                self.values.insert(name, value);
                Ok(())
            }
        }
    }

    pub fn optional(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name)
            .ok_or_else(|| ApiError::bad_request(format!("Missing required parameter '{name}'.")))
    }

    /// A required parameter that must not be blank, trimmed.
    pub fn non_empty(&self, name: &str) -> Result<&str, ApiError> {
        let value = self.required(name)?.trim();
        if value.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Parameter '{name}' cannot be empty."
            )));
        }
        Ok(value)
    }

    /// A required parameter parsed into a domain type.
    pub fn parse<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, ApiError> {
        parse(self.required(name)?).map_err(|error| invalid(name, &error))
    }

    /// An optional parameter parsed into a domain type.
    pub fn parse_optional<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, ApiError> {
        self.optional(name)
            .map(|raw| parse(raw).map_err(|error| invalid(name, &error)))
            .transpose()
    }

    /// An optional RFC 3339 time with its offset, as unix seconds.
    pub fn optional_time(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.parse_optional(name, |raw| {
            crate::timestamps::parse_rfc3339(raw).ok_or(ParseError::Time)
        })
    }

    pub fn email(&self, name: &str) -> Result<Email, ApiError> {
        self.parse(name, Email::parse)
    }

    pub fn flock_id(&self, name: &str) -> Result<FlockId, ApiError> {
        self.parse(name, FlockId::parse)
    }

    /// A comma-separated list of one or more flock ids, duplicates collapsed, order kept.
    pub fn flock_ids(&self, name: &str) -> Result<Vec<FlockId>, ApiError> {
        let mut ids: Vec<FlockId> = Vec::new();
        for part in self.required(name)?.split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let id = FlockId::parse(part).map_err(|_| {
                ApiError::bad_request(format!(
                    "Parameter '{name}' contains an invalid flock id: '{part}'."
                ))
            })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Parameter '{name}' must list at least one flock id."
            )));
        }
        Ok(ids)
    }

    /// A comma-separated list of zero or more emails; absent means empty. Duplicates collapsed.
    pub fn emails(&self, name: &str, required: bool) -> Result<Vec<Email>, ApiError> {
        let raw = if required {
            self.required(name)?
        } else {
            self.optional(name).unwrap_or("")
        };
        let mut emails: Vec<Email> = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let email = Email::parse(part).map_err(|_| {
                ApiError::bad_request(format!(
                    "Parameter '{name}' contains an invalid email address: '{part}'."
                ))
            })?;
            if !emails.iter().any(|e| e.key() == email.key()) {
                emails.push(email);
            }
        }
        Ok(emails)
    }

    /// A boolean in any of the accepted spellings; `default` when absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => parse_flag(raw).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Parameter '{name}' must be a boolean (true/false, 1/0, yes/no, on/off)."
                ))
            }),
        }
    }
}

pub fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn invalid(name: &str, error: &ParseError) -> ApiError {
    let text = error.to_string();
    // Some rules already read as a whole sentence (the flock name rules of the contract).
    if text.ends_with('.') {
        ApiError::bad_request(text)
    } else {
        ApiError::bad_request(format!("Parameter '{name}' {text}."))
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body is larger than {} KiB.", MAX_BODY_BYTES / 1024),
    )
}

fn wrong_json_type(name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Parameter '{name}' must be a string, number or boolean."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_accept_documented_spellings_only() {
        for yes in ["true", "True", "1", "YES", "on"] {
            assert_eq!(parse_flag(yes), Some(true));
        }
        for no in ["false", "FALSE", "0", "no", "Off"] {
            assert_eq!(parse_flag(no), Some(false));
        }
        for bad in ["", "maybe", "2", "None"] {
            assert_eq!(parse_flag(bad), None);
        }
    }

    #[test]
    fn urlencoded_pairs_decode_and_duplicates_conflict() {
        let mut params = Params::default();
        params
            .add_urlencoded(b"email=a%40x.io&note=hello+world&email=a@x.io", "query")
            .unwrap();
        assert_eq!(params.optional("email"), Some("a@x.io"));
        assert_eq!(params.optional("note"), Some("hello world"));
        assert!(params.add_urlencoded(b"email=b@x.io", "query").is_err());
        assert!(params.add_urlencoded(b"x=%FF", "query").is_err());
    }

    #[test]
    fn json_bodies_flatten_to_strings() {
        let mut params = Params::default();
        params
            .add_json(br#"{"a": true, "b": 3, "c": ["x", "y"], "d": null}"#)
            .unwrap();
        assert_eq!(params.optional("a"), Some("true"));
        assert_eq!(params.optional("b"), Some("3"));
        assert_eq!(params.optional("c"), Some("x,y"));
        assert_eq!(params.optional("d"), None);
        assert!(params.add_json(br#"{"e": {"nested": 1}}"#).is_err());
        assert!(params.add_json(b"[1]").is_err());
    }
}
