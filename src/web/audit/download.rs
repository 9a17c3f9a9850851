//! The audit trail as a file: every entry matching the page's filters, oldest first, streamed as
//! the store is read.

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use super::AuditQuery;
use crate::service::audit;
use crate::state::AppState;
use crate::store::Store;
use crate::store::audit::{AuditEntry, AuditFilter};
use crate::stream::{ChunkSink, JsonWriter, StreamError, scan_permit, stream_body};
use crate::web::error::WebError;
use crate::web::session::SignedIn;

/// A download of the entries matching the query's filters: refused as a page when they don't
/// parse or too many scans run, else streamed by `write` as an attachment.
fn download<F>(
    signed_in: &SignedIn,
    state: &AppState,
    query: &AuditQuery,
    (content_type, file_name): (&str, &str),
    write: F,
) -> Result<HttpResponse, WebError>
where
    F: FnOnce(&Store, &AuditFilter, &mut ChunkSink) -> Result<(), StreamError> + Send + 'static,
{
    signed_in.require_admin()?;
    audit::require_reader(&signed_in.principal)?;
    let filter = query.filter().map_err(WebError::BadRequest)?;
    let permit = scan_permit(state).ok_or(WebError::Busy {
        retry_after_secs: 1,
    })?;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ));
    Ok(stream_body(state, permit, response, move |store, sink| {
        write(store, &filter, sink)
    }))
}

/// Every matching entry, oldest first, as one JSON array of the store's entries.
pub(super) async fn json(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    let file = ("application/json", "roost-audit-trail.json");
    download(&signed_in, &state, &query, file, |store, filter, sink| {
        let mut out = JsonWriter::new(sink);
        out.raw("[")?;
        let mut first = true;
        store.visit_audit(filter, |entry| -> Result<(), StreamError> {
            if !std::mem::take(&mut first) {
                out.raw(",")?;
            }
            out.value(&JsonEntry::of(&entry))
        })?;
        out.raw("]")?;
        Ok(())
    })
}

/// An entry of the JSON download: every field, the time both as unix seconds and RFC 3339.
#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    id: u64,
    at: u64,
    time: String,
    action_type: &'a str,
    message: &'a str,
    actor: &'a str,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    language: Option<&'a str>,
    flock_id: Option<&'a str>,
    target: Option<&'a str>,
    details: &'a serde_json::Value,
}

impl<'a> JsonEntry<'a> {
    fn of(entry: &'a AuditEntry) -> JsonEntry<'a> {
        JsonEntry {
            id: entry.id,
            at: entry.at,
            time: crate::timestamps::rfc3339(entry.at),
            action_type: &entry.action_type,
            message: &entry.message,
            actor: &entry.actor,
            ip: entry.ip.as_deref(),
            user_agent: entry.user_agent.as_deref(),
            language: entry.language.as_deref(),
            flock_id: entry.flock_id.as_deref(),
            target: entry.target.as_deref(),
            details: &entry.details,
        }
    }
}

const CSV_HEADER: &str =
    "id,time,action_type,message,actor,ip,user_agent,language,flock_id,target,details\r\n";

/// Every matching entry, oldest first, as CSV (RFC 4180, times in RFC 3339 UTC).
pub(super) async fn csv(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    let file = ("text/csv; charset=utf-8", "roost-audit-trail.csv");
    download(&signed_in, &state, &query, file, |store, filter, sink| {
        use std::io::Write;
        sink.write_all(CSV_HEADER.as_bytes())?;
        store.visit_audit(filter, |entry| -> Result<(), StreamError> {
            sink.write_all(csv_row(&entry).as_bytes())?;
            Ok(())
        })?;
        Ok(())
    })
}

fn csv_row(entry: &AuditEntry) -> String {
    let time = crate::timestamps::rfc3339(entry.at);
    let details = if entry.details.is_null() {
        String::new()
    } else {
        entry.details.to_string()
    };
    let fields = [
        entry.id.to_string(),
        time,
        entry.action_type.clone(),
        entry.message.clone(),
        entry.actor.clone(),
        entry.ip.clone().unwrap_or_default(),
        entry.user_agent.clone().unwrap_or_default(),
        entry.language.clone().unwrap_or_default(),
        entry.flock_id.clone().unwrap_or_default(),
        entry.target.clone().unwrap_or_default(),
        details,
    ];
    let mut row = fields
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

/// One CSV field: quoted when it holds a separator, a quote or a line break; and a field a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`,
/// since names, notes and user agents are typed by whoever acts.
fn csv_field(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1+2"), "'-1+2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }
}
