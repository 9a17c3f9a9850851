use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::changes::{record_change, record_role_change};
use super::records::{FlockRecord, decode, encode};
use super::tables::{API_KEYS, FLOCKS, ROLES_BY_FLOCK, ROLES_BY_USER, USER_ID_BY_EMAIL, USERS};
use super::users::{read_user, user_id_of, user_ids_of};
use super::{ApiKeyRecord, Flock, FlockMembers, Store, StoreError, StoreResult, now_unix};
use crate::domain::{AccessLevel, Email, FlockId, FlockName, FlockRole, Refusal};

pub(super) fn ensure_default_flock(txn: &WriteTransaction) -> StoreResult<()> {
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
        let txn = self.db.begin_read()?;
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
        let txn = self.db.begin_read()?;
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
        let txn = self.db.begin_read()?;
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
        name: FlockName,
        managers: &[Email],
        watchers: &[Email],
    ) -> StoreResult<Flock> {
        if let Some(both) = managers
            .iter()
            .find(|m| watchers.iter().any(|w| w.key() == m.key()))
        {
            return Err(StoreError::Refused(Refusal::TwoRolesInOneFlock(
                both.clone(),
            )));
        }
        let id = FlockId::generate();
        let record = FlockRecord {
            name: name.into_string(),
            created: now_unix(),
        };
        let txn = self.db.begin_write()?;
        {
            let by_email = txn.open_table(USER_ID_BY_EMAIL)?;
            let manager_ids = user_ids_of(&by_email, managers)?;
            let watcher_ids = user_ids_of(&by_email, watchers)?;
            txn.open_table(FLOCKS)?
                .insert(id.as_str(), encode(&record)?.as_slice())?;
            record_change(&txn, format!("flock {} created", record.name))?;
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            for (ids, emails, role) in [
                (manager_ids, managers, FlockRole::Manager),
                (watcher_ids, watchers, FlockRole::Watcher),
            ] {
                for (user, email) in ids.into_iter().zip(emails) {
                    by_user.insert((user, id.as_str()), role.to_byte())?;
                    by_flock.insert((id.as_str(), user), role.to_byte())?;
                    record_role_change(&txn, email, &id, None, Some(role))?;
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

    pub fn rename_flock(&self, id: &FlockId, name: FlockName) -> StoreResult<Flock> {
        let txn = self.db.begin_write()?;
        let flock = {
            let mut table = txn.open_table(FLOCKS)?;
            let mut record: FlockRecord = match table.get(id.as_str())? {
                Some(bytes) => decode(bytes.value())?,
                None => return Err(StoreError::Refused(Refusal::FlockNotFound)),
            };
            let old_name = std::mem::replace(&mut record.name, name.into_string());
            table.insert(id.as_str(), encode(&record)?.as_slice())?;
            if old_name != record.name {
                record_change(&txn, format!("flock {old_name} renamed to {}", record.name))?;
            }
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
    pub fn delete_flock(&self, id: &FlockId) -> StoreResult<()> {
        if id.is_default() {
            return Err(StoreError::Refused(Refusal::DefaultFlock));
        }
        let txn = self.db.begin_write()?;
        {
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
            record_change(&txn, format!("flock {} deleted", record.name))?;
            txn.open_table(API_KEYS)?.retain(|_, bytes| {
                serde_json::from_slice::<ApiKeyRecord>(bytes)
                    .map(|key| key.scope.flock_id() != Some(id))
                    .unwrap_or(true)
            })?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn flock_members(&self, id: &FlockId) -> StoreResult<FlockMembers> {
        let txn = self.db.begin_read()?;
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
    /// flock is unknown, changes nothing.
    pub fn assign_role(
        &self,
        email: &Email,
        flocks: &[FlockId],
        role: FlockRole,
    ) -> StoreResult<()> {
        self.change_roles(email, flocks, |_| Some(role))
    }

    /// Takes `role` away in every listed flock where the user holds it; other roles stay.
    pub fn unassign_role(
        &self,
        email: &Email,
        flocks: &[FlockId],
        role: FlockRole,
    ) -> StoreResult<()> {
        self.change_roles(email, flocks, |current| match current {
            Some(held) if held == role => None,
            other => other,
        })
    }

    fn change_roles(
        &self,
        email: &Email,
        flocks: &[FlockId],
        next_role: impl Fn(Option<FlockRole>) -> Option<FlockRole>,
    ) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        {
            let user = user_id_of(&txn.open_table(USER_ID_BY_EMAIL)?, email)?;
            {
                let table = txn.open_table(FLOCKS)?;
                for flock in flocks {
                    if table.get(flock.as_str())?.is_none() {
                        return Err(StoreError::Refused(Refusal::FlockNotFound));
                    }
                }
            }
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            for flock in flocks {
                let current = by_user
                    .get((user, flock.as_str()))?
                    .and_then(|v| FlockRole::from_byte(v.value()));
                let next = next_role(current);
                record_role_change(&txn, email, flock, current, next)?;
                match next {
                    Some(role) => {
                        by_user.insert((user, flock.as_str()), role.to_byte())?;
                        by_flock.insert((flock.as_str(), user), role.to_byte())?;
                    }
                    None => {
                        by_user.remove((user, flock.as_str()))?;
                        by_flock.remove((flock.as_str(), user))?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Makes `emails` exactly the holders of `role` in the flock: listed users get the role
    /// (leaving the other one), unlisted holders lose it.
    pub fn replace_role_holders(
        &self,
        flock: &FlockId,
        role: FlockRole,
        emails: &[Email],
    ) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        {
            if txn.open_table(FLOCKS)?.get(flock.as_str())?.is_none() {
                return Err(StoreError::Refused(Refusal::FlockNotFound));
            }
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
            for user in current_holders.into_iter().filter(|u| !wanted.contains(u)) {
                by_user.remove((user, flock.as_str()))?;
                by_flock.remove((flock.as_str(), user))?;
                let email = read_user(&users, user)?.email;
                record_role_change(&txn, &email, flock, Some(role), None)?;
            }
            for (user, email) in wanted.into_iter().zip(emails) {
                let current = by_user
                    .get((user, flock.as_str()))?
                    .and_then(|v| FlockRole::from_byte(v.value()));
                by_user.insert((user, flock.as_str()), role.to_byte())?;
                by_flock.insert((flock.as_str(), user), role.to_byte())?;
                record_role_change(&txn, email, flock, current, Some(role))?;
            }
        }
        txn.commit()?;
        Ok(())
    }
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
