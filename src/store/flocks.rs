use super::WriteTxn;
use redb::ReadableTable;

use super::audit::{self, Actor, AuditLine};
use super::records::{FlockRecord, decode, encode};
use super::tables::{API_KEYS, FLOCKS, ROLES_BY_FLOCK, ROLES_BY_USER, USER_ID_BY_EMAIL, USERS};
use super::users::{UserRef, read_user, resolve, user_ids_of};
use super::{Flock, FlockMembers, Store, StoreError, StoreResult, User, now_unix};
use crate::domain::{AccessLevel, Email, FlockId, FlockName, FlockRole, Refusal, rules};

pub(super) fn ensure_default_flock(txn: &WriteTxn<'_>) -> StoreResult<()> {
    let mut flocks = txn.open_table(FLOCKS)?;
    if flocks.get(FlockId::DEFAULT)?.is_none() {
        let record = FlockRecord {
            name: FlockId::DEFAULT_NAME.to_string(),
            created: now_unix(),
        };
        flocks.insert(FlockId::DEFAULT, encode(&record)?.as_slice())?;
    }
    Ok(())
}

impl Store {
    /// Every flock, the default flock first, then by name.
    pub fn list_flocks(&self) -> StoreResult<Vec<Flock>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(FLOCKS)?;
        let mut flocks = Vec::new();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            flocks.push(flock_from(id.value(), bytes.value())?);
        }
        sort_flocks(&mut flocks);
        Ok(flocks)
    }

    pub fn flock(&self, id: &FlockId) -> StoreResult<Flock> {
        let txn = self.begin_read()?;
        let table = txn.open_table(FLOCKS)?;
        let bytes = table
            .get(id.as_str())?
            .ok_or(StoreError::Refused(Refusal::FlockNotFound))?;
        flock_from(id.as_str(), bytes.value())
    }

    /// The flocks a user may view: all of them for an admin, else those they manage or watch.
    pub fn flocks_visible_to(&self, email: &Email) -> StoreResult<Vec<Flock>> {
        let details = self.user_by_email(email)?;
        if details.user.access_level == AccessLevel::Admin {
            return self.list_flocks();
        }
        let txn = self.begin_read()?;
        let table = txn.open_table(FLOCKS)?;
        let mut flocks = Vec::new();
        for id in details.managed_flocks.iter().chain(&details.watched_flocks) {
            if let Some(bytes) = table.get(id.as_str())? {
                flocks.push(flock_from(id.as_str(), bytes.value())?);
            }
        }
        sort_flocks(&mut flocks);
        Ok(flocks)
    }

    /// Creates a flock with its first managers and watchers; an unknown email creates nothing.
    pub fn create_flock(
        &self,
        actor: &Actor,
        name: FlockName,
        managers: &[Email],
        watchers: &[Email],
    ) -> StoreResult<Flock> {
        rules::distinct_roles(managers, watchers)?;
        let id = FlockId::generate();
        let record = FlockRecord {
            name: name.into_string(),
            created: now_unix(),
        };
        let txn = self.begin_write()?;
        {
            let by_email = txn.open_table(USER_ID_BY_EMAIL)?;
            let manager_ids = user_ids_of(&by_email, managers)?;
            let watcher_ids = user_ids_of(&by_email, watchers)?;
            txn.open_table(FLOCKS)?
                .insert(id.as_str(), encode(&record)?.as_slice())?;
            audit::record(
                &txn,
                actor,
                AuditLine::new("flock_create", format!("Flock ({}) created", record.name))
                    .flock(&id)
                    .details(serde_json::json!({
                        "name": record.name,
                        "managers": managers,
                        "watchers": watchers,
                    })),
            )?;
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            for (ids, role) in [
                (manager_ids, FlockRole::Manager),
                (watcher_ids, FlockRole::Watcher),
            ] {
                for user in ids {
                    by_user.insert((user, id.as_str()), role.to_byte())?;
                    by_flock.insert((id.as_str(), user), role.to_byte())?;
                }
            }
        }
        txn.commit()?;
        Ok(Flock {
            id,
            name: record.name,
            created: record.created,
        })
    }

    pub fn rename_flock(&self, actor: &Actor, id: &FlockId, name: FlockName) -> StoreResult<Flock> {
        let txn = self.begin_write()?;
        let flock = {
            let mut table = txn.open_table(FLOCKS)?;
            let mut record: FlockRecord = match table.get(id.as_str())? {
                Some(bytes) => decode(bytes.value())?,
                None => return Err(StoreError::Refused(Refusal::FlockNotFound)),
            };
            let old_name = std::mem::replace(&mut record.name, name.into_string());
            table.insert(id.as_str(), encode(&record)?.as_slice())?;
            audit::record(
                &txn,
                actor,
                AuditLine::new(
                    "flock_rename",
                    format!("Flock ({old_name}) renamed to ({})", record.name),
                )
                .flock(id)
                .details(serde_json::json!({
                    "before": { "name": old_name },
                    "after": { "name": record.name },
                })),
            )?;
            Flock {
                id: id.clone(),
                name: record.name,
                created: record.created,
            }
        };
        txn.commit()?;
        Ok(flock)
    }

    /// Deletes an empty flock other than the default one, with the API keys bound to it.
    pub fn delete_flock(&self, actor: &Actor, id: &FlockId) -> StoreResult<Flock> {
        if id.is_default() {
            return Err(StoreError::Refused(Refusal::DefaultFlock));
        }
        let txn = self.begin_write()?;
        let deleted = {
            let mut table = txn.open_table(FLOCKS)?;
            let record: FlockRecord = match table.get(id.as_str())? {
                Some(bytes) => decode(bytes.value())?,
                None => return Err(StoreError::Refused(Refusal::FlockNotFound)),
            };
            let by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            if by_flock
                .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))?
                .next()
                .is_some()
            {
                return Err(StoreError::Refused(Refusal::FlockNotEmpty));
            }
            table.remove(id.as_str())?;
            let mut keys_removed = 0;
            txn.open_table(API_KEYS)?.retain(|_, bytes| {
                let keep = super::disk::decode_api_key(bytes)
                    .map(|key| key.scope.flock_id() != Some(id))
                    .unwrap_or(true);
                if !keep {
                    keys_removed += 1;
                }
                keep
            })?;
            audit::record(
                &txn,
                actor,
                AuditLine::new("flock_delete", format!("Flock ({}) deleted", record.name))
                    .flock(id)
                    .details(serde_json::json!({
                        "name": record.name,
                        "api_keys_removed": keys_removed,
                    })),
            )?;
            Flock {
                id: id.clone(),
                name: record.name,
                created: record.created,
            }
        };
        txn.commit()?;
        Ok(deleted)
    }

    pub fn flock_members(&self, id: &FlockId) -> StoreResult<FlockMembers> {
        let txn = self.begin_read()?;
        if txn.open_table(FLOCKS)?.get(id.as_str())?.is_none() {
            return Err(StoreError::Refused(Refusal::FlockNotFound));
        }
        let by_flock = txn.open_table(ROLES_BY_FLOCK)?;
        let users = txn.open_table(USERS)?;
        let mut members = FlockMembers::default();
        for entry in by_flock.range((id.as_str(), 0)..=(id.as_str(), u64::MAX))? {
            let (key, role) = entry?;
            let email = read_user(&users, key.value().1)?.email;
            match FlockRole::from_byte(role.value()) {
                Some(FlockRole::Manager) => members.managers.push(email),
                Some(FlockRole::Watcher) => members.watchers.push(email),
                None => return Err(StoreError::Corrupt(format!("bad role in flock {id}"))),
            }
        }
        members.managers.sort_by_key(Email::key);
        members.watchers.sort_by_key(Email::key);
        Ok(members)
    }

    /// Gives the user `role` in every listed flock (replacing another role there), or, if any
    /// flock is unknown, changes nothing. Returns the user and each flock's role before and after.
    pub fn assign_role(
        &self,
        actor: &Actor,
        user: &UserRef,
        flocks: &[FlockId],
        role: FlockRole,
    ) -> StoreResult<(User, Vec<RoleChange>)> {
        self.change_roles(actor, user, flocks, role, true, None, now_unix())
    }

    /// `assign_role`, the roles ending at `until` (`schedule`); without it they are held until
    /// taken away (an earlier end of those roles is dropped).
    pub fn assign_role_until(
        &self,
        actor: &Actor,
        user: &UserRef,
        flocks: &[FlockId],
        role: FlockRole,
        until: Option<u64>,
        now: u64,
    ) -> StoreResult<(User, Vec<RoleChange>)> {
        if until.is_some_and(|until| until <= now) {
            return Err(StoreError::Refused(Refusal::TimeInThePast));
        }
        self.change_roles(actor, user, flocks, role, true, until, now)
    }

    /// Takes `role` away in every listed flock where the user holds it; other roles stay.
    pub fn unassign_role(
        &self,
        actor: &Actor,
        user: &UserRef,
        flocks: &[FlockId],
        role: FlockRole,
    ) -> StoreResult<(User, Vec<RoleChange>)> {
        self.change_roles(actor, user, flocks, role, false, None, now_unix())
    }

    #[allow(clippy::too_many_arguments)]
    fn change_roles(
        &self,
        actor: &Actor,
        user: &UserRef,
        flocks: &[FlockId],
        role: FlockRole,
        assign: bool,
        until: Option<u64>,
        now: u64,
    ) -> StoreResult<(User, Vec<RoleChange>)> {
        let txn = self.begin_write()?;
        let outcome = {
            let id = resolve(&txn, user)?;
            let mut user = read_user(&txn.open_table(USERS)?, id)?;
            let due_before = user.next_due();
            let expiring_before = user.expiring.clone();
            let names = flock_names(&txn, flocks)?;
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            let mut changes = Vec::new();
            for flock in flocks {
                let before = by_user
                    .get((id, flock.as_str()))?
                    .and_then(|v| FlockRole::from_byte(v.value()));
                let after = if assign {
                    rules::role_after_assign(before, role)
                } else {
                    rules::role_after_unassign(before, role)
                };
                match after {
                    Some(role) => {
                        by_user.insert((id, flock.as_str()), role.to_byte())?;
                        by_flock.insert((flock.as_str(), id), role.to_byte())?;
                    }
                    None => {
                        by_user.remove((id, flock.as_str()))?;
                        by_flock.remove((flock.as_str(), id))?;
                    }
                }
                changes.push(RoleChange {
                    flock: flock.clone(),
                    before,
                    after,
                });
            }
            // Each changed flock's role now ends at `until`, or never; a role taken away takes
            // its end with it.
            for change in &changes {
                let grant = super::Grant::Role {
                    flock: change.flock.clone(),
                    role: change.after.unwrap_or(role),
                };
                let until = if change.after.is_some() && assign {
                    until
                } else if change.after.is_none() {
                    None
                } else {
                    // Unassigning a role the user doesn't hold leaves the one they hold as is.
                    continue;
                };
                super::due::set_grant_expiry(&mut user, grant, until, &actor.name, now);
            }
            if user.expiring != expiring_before {
                super::users::write_user(&mut txn.open_table(USERS)?, &user)?;
                if user.next_due() != due_before {
                    super::due::index_schedule(&txn, &user)?;
                }
            }
            let action = if assign {
                "flock_assign"
            } else {
                "flock_unassign"
            };
            let what: Vec<String> = changes
                .iter()
                .zip(&names)
                .map(|(change, name)| describe_role_change(change, role, name))
                .collect();
            let mut line =
                AuditLine::new(action, format!("User ({}) {}", user.email, what.join("; ")))
                    .target(&user.email)
                    .details(serde_json::json!({
                        "role": role.as_str(),
                        "changes": changes,
                        "expires_at": until.filter(|_| assign).map(crate::timestamps::rfc3339),
                    }));
            if let [single] = flocks {
                line = line.flock(single);
            }
            audit::record(&txn, actor, line)?;
            (user, changes)
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Makes `emails` exactly the holders of `role` in the flock: listed users get the role
    /// (leaving the other one), unlisted holders lose it.
    pub fn replace_role_holders(
        &self,
        actor: &Actor,
        flock: &FlockId,
        role: FlockRole,
        emails: &[Email],
    ) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let names = flock_names(&txn, std::slice::from_ref(flock))?;
            let wanted = user_ids_of(&txn.open_table(USER_ID_BY_EMAIL)?, emails)?;
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            let mut current_holders = Vec::new();
            for entry in by_flock.range((flock.as_str(), 0)..=(flock.as_str(), u64::MAX))? {
                let (key, held) = entry?;
                if FlockRole::from_byte(held.value()) == Some(role) {
                    current_holders.push(key.value().1);
                }
            }
            let users = txn.open_table(USERS)?;
            let mut removed = Vec::new();
            for user in current_holders.iter().filter(|u| !wanted.contains(u)) {
                by_user.remove((*user, flock.as_str()))?;
                by_flock.remove((flock.as_str(), *user))?;
                removed.push(read_user(&users, *user)?.email);
            }
            let mut added = Vec::new();
            for (user, email) in wanted.into_iter().zip(emails) {
                let current = by_user
                    .get((user, flock.as_str()))?
                    .and_then(|v| FlockRole::from_byte(v.value()));
                by_user.insert((user, flock.as_str()), role.to_byte())?;
                by_flock.insert((flock.as_str(), user), role.to_byte())?;
                if current != Some(role) {
                    added.push(serde_json::json!({
                        "user": email,
                        "before": current.map(FlockRole::as_str),
                    }));
                }
            }
            let action = match role {
                FlockRole::Manager => "flock_assign_managers",
                FlockRole::Watcher => "flock_assign_watchers",
            };
            audit::record(
                &txn,
                actor,
                AuditLine::new(
                    action,
                    format!(
                        "{} of flock ({}) set to {} user(s)",
                        role.as_str(),
                        names.join(", "),
                        emails.len()
                    ),
                )
                .flock(flock)
                .details(serde_json::json!({
                    "role": role.as_str(),
                    "holders": emails,
                    "added": added,
                    "removed": removed,
                })),
            )?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// A flock's role of one user, before and after a change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleChange {
    pub flock: FlockId,
    pub before: Option<FlockRole>,
    pub after: Option<FlockRole>,
}

/// What happened to one user's role in one flock, for people.
fn describe_role_change(change: &RoleChange, asked: FlockRole, flock_name: &str) -> String {
    match (change.before, change.after) {
        (None, Some(after)) => format!("made {} of flock ({flock_name})", after.as_str()),
        (Some(before), None) => format!("no longer {} of flock ({flock_name})", before.as_str()),
        (Some(before), Some(after)) if before != after => format!(
            "changed from {} to {} in flock ({flock_name})",
            before.as_str(),
            after.as_str()
        ),
        (Some(same), Some(_)) => format!("already {} of flock ({flock_name})", same.as_str()),
        (None, None) => format!("not {} of flock ({flock_name})", asked.as_str()),
    }
}

/// The names of `flocks`, in their order; an unknown flock refuses the whole change.
fn flock_names(txn: &WriteTxn<'_>, flocks: &[FlockId]) -> StoreResult<Vec<String>> {
    let table = txn.open_table(FLOCKS)?;
    flocks
        .iter()
        .map(|flock| match table.get(flock.as_str())? {
            Some(bytes) => Ok(decode::<FlockRecord>(bytes.value())?.name),
            None => Err(Refusal::FlockNotFound.into()),
        })
        .collect()
}

fn flock_from(id: &str, bytes: &[u8]) -> StoreResult<Flock> {
    let record: FlockRecord = decode(bytes)?;
    let id = FlockId::parse(id).map_err(|_| StoreError::Corrupt(format!("bad flock id {id}")))?;
    Ok(Flock {
        id,
        name: record.name,
        created: record.created,
    })
}

fn sort_flocks(flocks: &mut [Flock]) {
    flocks.sort_by(|a, b| {
        (!a.id.is_default(), a.name.to_lowercase(), &a.id).cmp(&(
            !b.id.is_default(),
            b.name.to_lowercase(),
            &b.id,
        ))
    });
}
