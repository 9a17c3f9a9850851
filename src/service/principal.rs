//! Who asks: a console user with their session, an API key, the command line, Roost itself, or
//! somebody not signed in; and from where. Every action in `service` takes one, decides with
//! `require` whether it may go on (the one permission table, below), and records it as the actor
//! of its audit entry.

use crate::domain::{AccessLevel, ApiKeyType, Email, FlockId, FlockKeyType, FlockRole, Refusal};
use crate::store::audit::Actor;
use crate::store::{ApiKeyScope, UserDetails};

/// Where a request came from, as the audit trail keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub language: Option<String>,
}

impl Origin {
    /// The client's address, as the sign-in limits key it (`None` when there is none to key by).
    pub fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.ip.as_deref().and_then(|ip| ip.parse().ok())
    }
}

/// Longest header value kept in the trail.
const HEADER_CHARS: usize = 256;

/// How much of an API key's note its name carries: enough to recognise it, not a 10,000-character
/// note repeated in every entry the key writes (the key id names it exactly).
const NOTE_IN_NAME_CHARS: usize = 60;

/// An API key's note as part of its name: on one line, cut with an ellipsis.
fn note_for_name(note: &str) -> String {
    let one_line: String = note
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= NOTE_IN_NAME_CHARS {
        one_line
    } else {
        let cut: String = one_line.chars().take(NOTE_IN_NAME_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

impl Origin {
    /// An origin from raw header values, cut and cleaned of control characters.
    pub fn new(ip: Option<String>, user_agent: Option<&[u8]>, language: Option<&[u8]>) -> Origin {
        let clean = |raw: &[u8]| -> String {
            String::from_utf8_lossy(raw)
                .chars()
                .filter(|c| !c.is_control())
                .take(HEADER_CHARS)
                .collect()
        };
        Origin {
            ip,
            user_agent: user_agent.map(clean).filter(|v| !v.is_empty()),
            language: language.map(clean).filter(|v| !v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A signed-in console user, with their roles as read for this request.
    ConsoleUser {
        id: u64,
        email: Email,
        level: AccessLevel,
        managed: Vec<FlockId>,
        watched: Vec<FlockId>,
    },
    ApiKey {
        key_id: String,
        note: String,
        scope: ApiKeyScope,
    },
    Cli,
    System,
    /// Not signed in (a login, a forgot-password request, a one-time link); `claimed` is the
    /// address they typed, if it is one.
    Anonymous {
        claimed: Option<Email>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub who: Who,
    pub origin: Origin,
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
    /// Read console-wide data: users, every flock, settings, API key lists.
    ReadAll,
    /// Change anything, and read what only admins read (mail queue, sessions, audit trail).
    Administer,
    /// Read one flock and its members.
    ReadFlock(&'a FlockId),
    /// Change the memberships of these flocks.
    ChangeMembers(&'a [FlockId]),
    /// Act on one's own console account.
    OwnAccount(u64),
}

impl Principal {
    pub fn new(who: Who, origin: Origin) -> Principal {
        Principal { who, origin }
    }

    pub fn system() -> Principal {
        Principal::new(Who::System, Origin::default())
    }

    pub fn cli() -> Principal {
        Principal::new(Who::Cli, Origin::default())
    }

    /// A console user from their details as read for this request.
    pub fn console_user(details: &UserDetails, origin: Origin) -> Principal {
        Principal::new(
            Who::ConsoleUser {
                id: details.user.id,
                email: details.user.email.clone(),
                level: details.user.access_level,
                managed: details.managed_flocks.clone(),
                watched: details.watched_flocks.clone(),
            },
            origin,
        )
    }

    /// Whether this principal may do what `permission` guards. The one table of who may do what
    /// (API.md, "Access"); `tests` check it row by row.
    pub fn may(&self, permission: Permission<'_>) -> bool {
        use Permission::*;
        match (&self.who, permission) {
            (Who::Cli | Who::System, _) => true,
            (Who::Anonymous { .. }, _) => false,
            (Who::ConsoleUser { id, .. }, OwnAccount(account)) => *id == account,
            (Who::ConsoleUser { level, .. }, _) if *level == AccessLevel::Admin => true,
            (Who::ConsoleUser { .. }, ReadAll | Administer) => false,
            (
                Who::ConsoleUser {
                    managed, watched, ..
                },
                ReadFlock(flock),
            ) => managed.contains(flock) || watched.contains(flock),
            (Who::ConsoleUser { managed, .. }, ChangeMembers(flocks)) => {
                !flocks.is_empty() && flocks.iter().all(|flock| managed.contains(flock))
            }
            (Who::ApiKey { .. }, OwnAccount(_)) => false,
            (Who::ApiKey { scope, .. }, permission) => match (scope, permission) {
                (ApiKeyScope::Global { .. }, ReadAll | ReadFlock(_)) => true,
                (ApiKeyScope::Global { key_type }, Administer | ChangeMembers(_)) => {
                    *key_type == ApiKeyType::Admin
                }
                (ApiKeyScope::Flock { flock_id, .. }, ReadFlock(flock)) => flock_id == flock,
                (
                    ApiKeyScope::Flock {
                        flock_id,
                        key_type: FlockKeyType::Admin,
                    },
                    ChangeMembers(flocks),
                ) => !flocks.is_empty() && flocks.iter().all(|flock| flock == flock_id),
                (ApiKeyScope::Flock { .. }, _) => false,
                (_, OwnAccount(_)) => false,
            },
        }
    }

    /// `Ok` if `may`, else the refusal.
    pub fn require(&self, permission: Permission<'_>) -> Result<(), Refusal> {
        if self.may(permission) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed)
        }
    }

    /// The console user's id, if this is one.
    pub fn user_id(&self) -> Option<u64> {
        match &self.who {
            Who::ConsoleUser { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The flock an API key is bound to, if this is a flock key.
    pub fn bound_flock(&self) -> Option<&FlockId> {
        match &self.who {
            Who::ApiKey {
                scope: ApiKeyScope::Flock { flock_id, .. },
                ..
            } => Some(flock_id),
            _ => None,
        }
    }

    /// The console user's role in `flock`, if this is a console user who holds one.
    pub fn role_in(&self, flock: &FlockId) -> Option<FlockRole> {
        match &self.who {
            Who::ConsoleUser {
                managed, watched, ..
            } => {
                if managed.contains(flock) {
                    Some(FlockRole::Manager)
                } else if watched.contains(flock) {
                    Some(FlockRole::Watcher)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The name the trail and `created_by` give this principal: a console user's email,
    /// `API key <note> (<key id>)`, `cli`, `system`, or for somebody not signed in the address
    /// they typed (else `anonymous`).
    pub fn name(&self) -> String {
        match &self.who {
            Who::ConsoleUser { email, .. } => email.to_string(),
            Who::ApiKey { key_id, note, .. } => {
                format!("API key {} ({key_id})", note_for_name(note))
            }
            Who::Cli => "cli".to_string(),
            Who::System => "system".to_string(),
            Who::Anonymous { claimed } => claimed
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), Email::to_string),
        }
    }

    /// This principal as the store records the actor of a change.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.name(),
            ip: self.origin.ip.clone(),
            user_agent: self.origin.user_agent.clone(),
            language: self.origin.language.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flock(n: u8) -> FlockId {
        FlockId::parse(&format!("flock:{n:032x}")).unwrap()
    }

    fn console(level: AccessLevel, managed: Vec<FlockId>, watched: Vec<FlockId>) -> Principal {
        Principal::new(
            Who::ConsoleUser {
                id: 7,
                email: Email::parse("ann@x.io").unwrap(),
                level,
                managed,
                watched,
            },
            Origin::default(),
        )
    }

    fn key(scope: ApiKeyScope) -> Principal {
        Principal::new(
            Who::ApiKey {
                key_id: "k".into(),
                note: "n".into(),
                scope,
            },
            Origin::default(),
        )
    }

    #[test]
    fn a_keys_name_carries_the_start_of_its_note_on_one_line() {
        let named = |note: &str| {
            Principal::new(
                Who::ApiKey {
                    key_id: "0123456789abcdef".into(),
                    note: note.into(),
                    scope: ApiKeyScope::Global {
                        key_type: ApiKeyType::Admin,
                    },
                },
                Origin::default(),
            )
            .name()
        };
        assert_eq!(named("deploy bot"), "API key deploy bot (0123456789abcdef)");
        assert_eq!(named("two\nlines"), "API key two lines (0123456789abcdef)");
        let long = named(&"x".repeat(10_000));
        assert_eq!(
            long,
            format!("API key {}… (0123456789abcdef)", "x".repeat(59))
        );
    }

    fn global(key_type: ApiKeyType) -> Principal {
        key(ApiKeyScope::Global { key_type })
    }

    fn flock_key(flock_id: FlockId, key_type: FlockKeyType) -> Principal {
        key(ApiKeyScope::Flock { flock_id, key_type })
    }

    /// API.md, "Access": one row per kind of principal, one column per permission.
    #[test]
    fn the_permission_table() {
        let (own, other) = (flock(1), flock(2));
        let own_only = [own.clone()];
        let both = [own.clone(), other.clone()];
        let columns = |p: &Principal| {
            [
                p.may(Permission::ReadAll),
                p.may(Permission::Administer),
                p.may(Permission::ReadFlock(&own)),
                p.may(Permission::ReadFlock(&other)),
                p.may(Permission::ChangeMembers(&own_only)),
                p.may(Permission::ChangeMembers(&both)),
                p.may(Permission::OwnAccount(7)),
                p.may(Permission::OwnAccount(8)),
            ]
        };
        let t = true;
        let f = false;
        let rows: Vec<(&str, Principal, [bool; 8])> = vec![
            (
                "global admin key",
                global(ApiKeyType::Admin),
                [t, t, t, t, t, t, f, f],
            ),
            (
                "global analyst key",
                global(ApiKeyType::Analyst),
                [t, f, t, t, f, f, f, f],
            ),
            (
                "global read-only key",
                global(ApiKeyType::ReadOnly),
                [t, f, t, t, f, f, f, f],
            ),
            (
                "flock admin key",
                flock_key(own.clone(), FlockKeyType::Admin),
                [f, f, t, f, t, f, f, f],
            ),
            (
                "flock read-only key",
                flock_key(own.clone(), FlockKeyType::ReadOnly),
                [f, f, t, f, f, f, f, f],
            ),
            (
                "console admin",
                console(AccessLevel::Admin, vec![], vec![]),
                [t, t, t, t, t, t, t, f],
            ),
            (
                "console manager of one flock",
                console(AccessLevel::User, vec![own.clone()], vec![]),
                [f, f, t, f, t, f, t, f],
            ),
            (
                "console watcher of one flock",
                console(AccessLevel::User, vec![], vec![own.clone()]),
                [f, f, t, f, f, f, t, f],
            ),
            (
                "console user in no flock",
                console(AccessLevel::User, vec![], vec![]),
                [f, f, f, f, f, f, t, f],
            ),
            ("command line", Principal::cli(), [t, t, t, t, t, t, t, t]),
            (
                "Roost itself",
                Principal::system(),
                [t, t, t, t, t, t, t, t],
            ),
            (
                "not signed in",
                Principal::new(Who::Anonymous { claimed: None }, Origin::default()),
                [f, f, f, f, f, f, f, f],
            ),
        ];
        for (name, principal, expected) in rows {
            assert_eq!(columns(&principal), expected, "{name}");
        }
        // Changing the members of no flock at all is nobody's business but the CLI's.
        assert!(!global(ApiKeyType::Analyst).may(Permission::ChangeMembers(&[])));
        assert!(
            !console(AccessLevel::User, vec![own.clone()], vec![])
                .may(Permission::ChangeMembers(&[]))
        );
    }

    #[test]
    fn names_in_the_trail() {
        assert_eq!(
            console(AccessLevel::User, vec![], vec![]).name(),
            "ann@x.io"
        );
        assert_eq!(global(ApiKeyType::Admin).name(), "API key n (k)");
        assert_eq!(Principal::cli().name(), "cli");
        assert_eq!(Principal::system().name(), "system");
        let origin = Origin::new(
            Some("203.0.113.9".into()),
            Some(b"curl/8\x07\n"),
            Some(b"en"),
        );
        assert_eq!(origin.user_agent.as_deref(), Some("curl/8"));
        let anonymous = Principal::new(
            Who::Anonymous {
                claimed: Some(Email::parse("bob@x.io").unwrap()),
            },
            origin,
        );
        assert_eq!(anonymous.name(), "bob@x.io");
        assert_eq!(anonymous.actor().ip.as_deref(), Some("203.0.113.9"));
    }
}
