//! The access review, for admins only (`crate::review` reads it).

use super::{Permission, Principal, ServiceResult};
use crate::review::{AccessReview, build};
use crate::state::AppState;

/// The review as of the clock's now; a scan of every user, off the async workers and under the
/// scan limit.
pub async fn review(state: &AppState, who: &Principal) -> ServiceResult<AccessReview> {
    who.require(Permission::Administer)?;
    let _permit = crate::stream::scan_permit(state).ok_or(super::ServiceError::ScansBusy)?;
    let now = state.clock.now();
    let dormant_after_days = state.dormant_after_days;
    Ok(state
        .blocking(move |store| build(store, now, dormant_after_days))
        .await?)
}
