//! The audit trail page (admins): newest first, filtered by action, actor, target and date range,
//! in cursor pages, and downloadable as JSON or CSV with the same filters (`download`).

mod download;

use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::error::{WebError, encode_query_value};
use super::page::{PageContext, PageResult, ok};
use super::session::SignedIn;
use crate::service::audit;
use crate::state::AppState;
use crate::store::audit::{AuditEntry, AuditFilter, AuditFrom, is_action_type};
use crate::stream::scan_permit;

/// Entries per page.
const PAGE_SIZE: usize = 50;
/// The longest filter text kept; the trail's fields are short.
const MAX_FILTER_CHARS: usize = 200;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(page))
        .route("/audit/download.json", web::get().to(download::json))
        .route("/audit/download.csv", web::get().to(download::csv));
}

/// The filters as the form sends them: every field may be absent or empty.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    /// `older.<id>` or `newer.<id>`.
    #[serde(default)]
    cursor: String,
}

impl AuditQuery {
    /// The store's filter, or the message for the form.
    pub(super) fn filter(&self) -> Result<AuditFilter, String> {
        let text = |raw: &str, field: &str| -> Result<Option<String>, String> {
            let trimmed = raw.trim();
            if trimmed.chars().count() > MAX_FILTER_CHARS {
                return Err(format!("{field}: at most {MAX_FILTER_CHARS} characters."));
            }
            Ok(Some(trimmed.to_string()).filter(|t| !t.is_empty()))
        };
        let action = text(&self.action, "Action")?;
        if action.as_deref().is_some_and(|a| !is_action_type(a)) {
            return Err("Action: choose one from the list.".into());
        }
        let since = day_start(&self.since, "From")?;
        let until = day_start(&self.until, "To")?.map(|start| start + 24 * 3600 - 1);
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err("Dates: “From” is after “To”.".into());
        }
        Ok(AuditFilter {
            action,
            actor: text(&self.actor, "Actor")?,
            target: text(&self.target, "Target")?,
            since,
            until,
        })
    }

    fn from(&self) -> Result<AuditFrom, String> {
        let raw = self.cursor.trim();
        if raw.is_empty() {
            return Ok(AuditFrom::Newest);
        }
        let bad = || "This page link is broken; start from the newest entries.".to_string();
        let (direction, id) = raw.split_once('.').ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        match direction {
            "older" => Ok(AuditFrom::OlderThan(id)),
            "newer" => Ok(AuditFrom::NewerThan(id)),
            _ => Err(bad()),
        }
    }

    /// The query string of these filters (without the cursor), for links and downloads.
    fn filters_query(&self) -> String {
        [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| format!("{name}={}", encode_query_value(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn href(&self, path: &str, cursor: Option<&str>) -> String {
        let mut query = self.filters_query();
        if let Some(cursor) = cursor {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str("cursor=");
            query.push_str(cursor);
        }
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }
}

/// Unix seconds of the start of a `YYYY-MM-DD` day in UTC; empty is no bound.
fn day_start(raw: &str, field: &str) -> Result<Option<u64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    crate::timestamps::utc_day_start(raw)
        .map(Some)
        .ok_or_else(|| format!("{field}: enter a date such as 2026-12-01."))
}

pub struct EntryRow {
    pub id: u64,
    pub at: String,
    pub action: String,
    pub message: String,
    pub actor: String,
    pub ip: String,
    pub user_agent: String,
    pub target: String,
    pub flock_id: String,
    /// The structured details as JSON, for the row's tooltip-free disclosure.
    pub details: String,
}

impl From<&AuditEntry> for EntryRow {
    fn from(entry: &AuditEntry) -> EntryRow {
        EntryRow {
            id: entry.id,
            at: crate::timestamps::console_second(entry.at),
            action: entry.action_type.clone(),
            message: entry.message.clone(),
            actor: entry.actor.clone(),
            ip: entry.ip.clone().unwrap_or_default(),
            user_agent: entry.user_agent.clone().unwrap_or_default(),
            target: entry.target.clone().unwrap_or_default(),
            flock_id: entry.flock_id.clone().unwrap_or_default(),
            details: if entry.details.is_null() {
                String::new()
            } else {
                entry.details.to_string()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPageView {
    page: PageContext,
    action: String,
    actor: String,
    target: String,
    since: String,
    until: String,
    /// The action types the trail holds, for the filter's list.
    actions: Vec<String>,
    entries: Vec<EntryRow>,
    total: u64,
    filtered: bool,
    error: Option<String>,
    newest_href: Option<String>,
    newer_href: Option<String>,
    older_href: Option<String>,
    json_href: String,
    csv_href: String,
}

async fn page(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> PageResult {
    signed_in.require_admin()?;
    let query = query.into_inner();
    let actions = audit::actions(&state, &signed_in.principal)?;
    let mut view = AuditPageView {
        page: PageContext::signed_in(&signed_in, "Audit trail"),
        action: query.action.trim().to_string(),
        actor: query.actor.trim().to_string(),
        target: query.target.trim().to_string(),
        since: query.since.trim().to_string(),
        until: query.until.trim().to_string(),
        actions,
        entries: Vec::new(),
        total: 0,
        filtered: !query.filters_query().is_empty(),
        error: None,
        newest_href: None,
        newer_href: None,
        older_href: None,
        json_href: query.href("/audit/download.json", None),
        csv_href: query.href("/audit/download.csv", None),
    };
    let parsed = query
        .filter()
        .and_then(|filter| Ok((filter, query.from()?)));
    let (filter, from) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            view.error = Some(error);
            return super::page::render(actix_web::http::StatusCode::BAD_REQUEST, &view);
        }
    };
    let _permit = scan_permit(&state).ok_or(WebError::Busy {
        retry_after_secs: 1,
    })?;
    let page = audit::page(&state, &signed_in.principal, filter, from, PAGE_SIZE).await?;
    view.total = page.total;
    view.entries = page.entries.iter().map(EntryRow::from).collect();
    if page.has_newer {
        view.newest_href = Some(query.href("/audit", None));
        view.newer_href = page
            .entries
            .first()
            .map(|entry| query.href("/audit", Some(&format!("newer.{}", entry.id))));
    }
    if page.has_older {
        view.older_href = page
            .entries
            .last()
            .map(|entry| query.href("/audit", Some(&format!("older.{}", entry.id))));
    }
    ok(&view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_filter_whole_days_in_utc() {
        let query = AuditQuery {
            since: "2026-12-01".into(),
            until: "2026-12-01".into(),
            ..AuditQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.since, Some(1_796_083_200));
        assert_eq!(filter.until, Some(1_796_083_200 + 86_399));
        let backwards = AuditQuery {
            since: "2026-12-02".into(),
            until: "2026-12-01".into(),
            ..AuditQuery::default()
        };
        assert!(backwards.filter().is_err());
        let nonsense = AuditQuery {
            since: "yesterday".into(),
            ..AuditQuery::default()
        };
        assert_eq!(
            nonsense.filter().unwrap_err(),
            "From: enter a date such as 2026-12-01."
        );
    }

    #[test]
    fn links_keep_the_filters_and_encode_them() {
        let query = AuditQuery {
            actor: "ann@x.io".into(),
            action: "user_login".into(),
            ..AuditQuery::default()
        };
        assert_eq!(
            query.href("/audit", Some("older.7")),
            "/audit?action=user_login&actor=ann%40x.io&cursor=older.7"
        );
        assert_eq!(AuditQuery::default().href("/audit", None), "/audit");
    }
}
