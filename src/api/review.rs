//! `GET access/review`: the access review's sections as JSON (admin keys only).

use actix_web::web;
use serde_json::{Value, json};

use super::caller::ApiCall;
use super::{ApiResult, success_with};
use crate::review::{Section, UserLine};
use crate::service::review;
use crate::state::AppState;
use crate::timestamps::rfc3339;

pub async fn get(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let review = review::review(&state, &call.principal).await?;
    let users = |section: &Section<UserLine>| {
        json!({
            "total": section.total,
            "users": section.rows.iter().map(user_line).collect::<Vec<_>>(),
        })
    };
    let failed = &review.failed_logins;
    success_with(json!({
        "review": {
            "generated_at": rfc3339(review.generated_at),
            "dormant_after_days": review.dormant_after_days,
            "two_factor_enforced": review.two_factor_enforced,
            "without_second_factor": users(&review.without_second_factor),
            "dormant": users(&review.dormant),
            "new_admins": {
                "total": review.new_admins.total,
                "admins": review.new_admins.rows.iter().map(|row| json!({
                    "email": row.email,
                    "at": rfc3339(row.at),
                    "by": row.by,
                    "user": user_line(&row.user),
                })).collect::<Vec<_>>(),
            },
            "expiring_soon": {
                "total": review.expiring_soon.total,
                "grants": review.expiring_soon.rows.iter().map(|row| {
                    let (grant, flock_id) = match &row.grant {
                        crate::store::Grant::Admin => ("admin", None),
                        crate::store::Grant::Role { flock, role } => (role.as_str(), Some(flock)),
                    };
                    json!({
                        "user": user_line(&row.user),
                        "grant": grant,
                        "flock_id": flock_id,
                        "expires_at": rfc3339(row.expires_at),
                    })
                }).collect::<Vec<_>>(),
            },
            "stale_api_keys": {
                "total": review.stale_api_keys.total,
                "keys": review.stale_api_keys.rows.iter().map(|row| {
                    let key = &row.key;
                    json!({
                        "key_id": key.key_id,
                        "note": key.note,
                        "auth_token_type": key.scope.type_name(),
                        "flock_id": key.scope.flock_id(),
                        "created": rfc3339(key.created),
                        "created_by": key.created_by,
                        "last_used": key.last_used.map(rfc3339),
                    })
                }).collect::<Vec<_>>(),
            },
            "locked_recently": {
                "total": review.locked_recently.total,
                "locks": review.locked_recently.rows.iter().map(|row| json!({
                    "email": row.email,
                    "user_id": row.user_id,
                    "at": rfc3339(row.at),
                    "step": row.step,
                    "locked_now": row.locked_now,
                })).collect::<Vec<_>>(),
            },
            "failed_logins": {
                "days": failed.days.iter().map(|(day, count)| json!({ "day": day, "count": count })).collect::<Vec<_>>(),
                "past_week": failed.past_week,
                "week_before": failed.week_before,
                "capped": failed.capped,
            },
        },
    }))
}

fn user_line(line: &UserLine) -> Value {
    json!({
        "id": line.id,
        "email": line.email,
        "access_level": line.access_level.as_str(),
        "disabled": line.disabled,
        "last_login": line.last_login.map(rfc3339),
        "created": rfc3339(line.created),
    })
}
