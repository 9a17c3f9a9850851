//! audit_trail/*: the canary console's audit API, wire-compatible (global admin keys only).

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::caller::ApiCall;
use super::error::ApiError;
use super::users::lists_busy;
use super::{ApiResult, success_msg, success_with};
use crate::service::audit::{self, CanaryEntry};
use crate::state::AppState;
use crate::store::audit::{AuditFilter, AuditFrom, is_action_type};
use crate::stream::{JsonWriter, scan_permit, stream_body};
use crate::timestamps::{self, TimeZone};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `older.<id>` (the next page) or `newer.<id>` (the previous one), as `cursor` hands them out.
fn parse_cursor(raw: &str) -> Result<AuditFrom, ApiError> {
    let bad = || ApiError::bad_request("Parameter 'cursor' is not a cursor of this audit trail.");
    let (direction, id) = raw.trim().split_once('.').ok_or_else(bad)?;
    let id: u64 = id.parse().map_err(|_| bad())?;
    match direction {
        "older" => Ok(AuditFrom::OlderThan(id)),
        "newer" => Ok(AuditFrom::NewerThan(id)),
        _ => Err(bad()),
    }
}

/// An action type the trail records (`store::audit::ACTION_TYPES`).
fn parse_action(raw: &str) -> Result<String, ApiError> {
    let action = raw.trim();
    if is_action_type(action) {
        Ok(action.to_string())
    } else {
        Err(ApiError::bad_request(
            "Parameter 'action_filter' must be an action type such as 'user_login'.",
        ))
    }
}

fn zone(call: &ApiCall) -> Result<TimeZone, ApiError> {
    match call.params.optional("tz") {
        None => Ok(TimeZone::UTC),
        Some(name) => timestamps::time_zone(name.trim()).ok_or_else(|| {
            ApiError::bad_request("Parameter 'tz' is not a time zone such as 'Europe/Berlin'.")
        }),
    }
}

/// `{"audit_trail":[…newest first…],"cursor":{"next":…,"prev":…},"page_count":N,"page_number":K}`.
pub async fn fetch(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    audit::require_reader(&call.principal)?;
    let limit = match call.params.optional("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Parameter 'limit' must be a whole number from 1 to {MAX_LIMIT}."
                )));
            }
        },
    };
    let from = match call.params.optional("cursor") {
        Some(raw) if !raw.trim().is_empty() => parse_cursor(raw)?,
        _ => AuditFrom::Newest,
    };
    let filter = AuditFilter {
        action: call
            .params
            .optional("action_filter")
            .filter(|raw| !raw.trim().is_empty())
            .map(parse_action)
            .transpose()?,
        ..AuditFilter::default()
    };
    let zone = zone(&call)?;
    let _permit = scan_permit(&state).ok_or_else(lists_busy)?;
    let page = audit::page(&state, &call.principal, filter, from, limit).await?;
    let entries: Vec<CanaryEntry> = page
        .entries
        .iter()
        .map(|entry| CanaryEntry::of(entry, &zone))
        .collect();
    let next = page
        .has_older
        .then(|| page.entries.last().map(|e| format!("older.{}", e.id)))
        .flatten();
    let prev = page
        .has_newer
        .then(|| page.entries.first().map(|e| format!("newer.{}", e.id)))
        .flatten();
    let limit = limit as u64;
    success_with(json!({
        "audit_trail": entries,
        "cursor": { "next": next, "prev": prev },
        "page_count": page.total.div_ceil(limit).max(1),
        "page_number": page.newer_than_page / limit + 1,
    }))
}

/// Deletes entry `id` and every older one: `{"msg":"72 logs purged successfully"}`.
pub async fn purge(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let id = call
        .params
        .required("id")?
        .trim()
        .parse::<u64>()
        .map_err(|_| {
            ApiError::bad_request("Parameter 'id' must be the id of an audit trail entry.")
        })?;
    let purged = audit::purge(&state, &call.principal, id).await?;
    success_msg(format!("{purged} logs purged successfully"))
}

/// The whole trail as `canary_audit_trail.json` in a zip, streamed as the store is read.
pub async fn download_json(
    call: ApiCall,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    audit::require_reader(&call.principal)?;
    let zone = zone(&call)?;
    let permit = scan_permit(&state).ok_or_else(lists_busy)?;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((CONTENT_TYPE, "application/x-zip-compressed"))
        .insert_header((
            CONTENT_DISPOSITION,
            "attachment; filename=\"canary_audit_trail.json.zip\"",
        ));
    Ok(stream_body(&state, permit, response, move |store, sink| {
        let mut zip = zip::ZipWriter::new_stream(sink);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("canary_audit_trail.json", options)?;
        let mut out = JsonWriter::new(&mut zip);
        out.raw("[")?;
        let mut first = true;
        store.visit_audit(&AuditFilter::default(), |entry| {
            if !std::mem::take(&mut first) {
                out.raw(",")?;
            }
            out.value(&CanaryEntry::of(&entry, &zone))
        })?;
        out.raw("]")?;
        zip.finish()?;
        Ok(())
    }))
}
