//! The console's rules as pure functions: what the store enforces inside its transactions and the
//! console shows before asking, decided in one place and tested here.

use super::{AccessLevel, Email, FlockRole, Refusal};

/// Refuses a change that would leave the console without an enabled admin: `enabled_admins` are
/// counted before the change, which turns the subject from `was` to `will_be` (enabled admin or
/// not).
pub fn keeps_an_enabled_admin(
    enabled_admins: u64,
    was: bool,
    will_be: bool,
) -> Result<(), Refusal> {
    if was && !will_be && enabled_admins <= 1 {
        Err(Refusal::LastEnabledAdmin)
    } else {
        Ok(())
    }
}

/// The role held in a flock after `role` is given: one role per flock, so it replaces the other.
pub fn role_after_assign(_current: Option<FlockRole>, role: FlockRole) -> Option<FlockRole> {
    Some(role)
}

/// The role held after `role` is taken away: only that role goes; the other one stays.
pub fn role_after_unassign(current: Option<FlockRole>, role: FlockRole) -> Option<FlockRole> {
    match current {
        Some(held) if held == role => None,
        other => other,
    }
}

/// Whether someone may view a flock: admins all of them, others those they manage or watch.
pub fn may_view_flock(level: AccessLevel, role: Option<FlockRole>) -> bool {
    level == AccessLevel::Admin || role.is_some()
}

/// A new flock can't name one person both manager and watcher.
pub fn distinct_roles(managers: &[Email], watchers: &[Email]) -> Result<(), Refusal> {
    match managers
        .iter()
        .find(|manager| watchers.iter().any(|w| w.key() == manager.key()))
    {
        Some(both) => Err(Refusal::TwoRolesInOneFlock(both.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_enabled_admin_stays() {
        assert_eq!(
            keeps_an_enabled_admin(1, true, false),
            Err(Refusal::LastEnabledAdmin)
        );
        assert_eq!(keeps_an_enabled_admin(2, true, false), Ok(()));
        assert_eq!(keeps_an_enabled_admin(1, true, true), Ok(()));
        assert_eq!(keeps_an_enabled_admin(0, false, false), Ok(()));
        assert_eq!(keeps_an_enabled_admin(1, false, true), Ok(()));
    }

    #[test]
    fn one_role_per_flock() {
        use FlockRole::*;
        assert_eq!(role_after_assign(Some(Watcher), Manager), Some(Manager));
        assert_eq!(role_after_assign(None, Watcher), Some(Watcher));
        assert_eq!(role_after_unassign(Some(Manager), Manager), None);
        assert_eq!(role_after_unassign(Some(Watcher), Manager), Some(Watcher));
        assert_eq!(role_after_unassign(None, Manager), None);
    }

    #[test]
    fn who_may_view_a_flock() {
        assert!(may_view_flock(AccessLevel::Admin, None));
        assert!(may_view_flock(AccessLevel::User, Some(FlockRole::Watcher)));
        assert!(!may_view_flock(AccessLevel::User, None));
    }

    #[test]
    fn nobody_is_manager_and_watcher_of_a_new_flock() {
        let ann = Email::parse("ann@x.io").unwrap();
        let ann_upper = Email::parse("ANN@x.io").unwrap();
        let bob = Email::parse("bob@x.io").unwrap();
        assert_eq!(
            distinct_roles(std::slice::from_ref(&ann), &[bob.clone(), ann_upper]),
            Err(Refusal::TwoRolesInOneFlock(ann.clone()))
        );
        assert_eq!(distinct_roles(&[ann], &[bob]), Ok(()));
    }
}
