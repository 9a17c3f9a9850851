//! The text of each message Roost sends: a plain-text and an HTML template per message, under
//! `templates/mail/`.

use askama::Template;

use super::MailError;
use crate::store::MailContent;

#[derive(Template)]
#[template(path = "mail/welcome.txt")]
struct WelcomeText<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/welcome.html")]
struct WelcomeHtml<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    link: &'a str,
}

fn render(template: &impl Template) -> Result<String, MailError> {
    template.render().map_err(MailError::Render)
}

/// The welcome mail of a new user, with the link to choose their password.
pub fn welcome(link: &str) -> Result<MailContent, MailError> {
    Ok(MailContent {
        kind: "welcome".to_string(),
        subject: "Welcome to Roost".to_string(),
        text: render(&WelcomeText { link })?,
        html: Some(render(&WelcomeHtml { link })?),
    })
}

/// The password reset mail, with the one-hour link to choose a new password.
pub fn password_reset(link: &str) -> Result<MailContent, MailError> {
    Ok(MailContent {
        kind: "password reset".to_string(),
        subject: "Reset your Roost password".to_string(),
        text: render(&PasswordResetText { link })?,
        html: Some(render(&PasswordResetHtml { link })?),
    })
}

/// The first entries of a list a mail names, and how many it leaves out: a summary stays
/// readable when a thousand users were added in one week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excerpt {
    pub total: usize,
    pub shown: Vec<String>,
    pub more: usize,
}

impl Excerpt {
    pub const SHOWN: usize = 20;

    pub fn of(items: Vec<String>) -> Excerpt {
        let total = items.len();
        let shown: Vec<String> = items.into_iter().take(Self::SHOWN).collect();
        Excerpt {
            total,
            more: total - shown.len(),
            shown,
        }
    }
}

/// What an admin's weekly summary says: the whole console and its past week.
#[derive(Debug, Clone, Default)]
pub struct AdminSummary {
    pub console_url: String,
    pub users: usize,
    pub admins: usize,
    pub disabled: usize,
    pub enabled: usize,
    pub with_factor: usize,
    pub flocks: usize,
    pub new_users: usize,
    pub new_flocks: usize,
    /// The change log of the past week, newest first, each "2026-11-30 12:00 UTC: what".
    pub changes: Excerpt,
    /// Enabled users who log in with a password alone.
    pub without_factor: Excerpt,
    pub globally_enforce_2fa: bool,
    pub api_enabled: bool,
    /// Messages in the outgoing queue after a failed delivery.
    pub undelivered_mail: usize,
    /// The access review's sections, counted (the page lists them).
    pub review: ReviewCounts,
}

/// What the weekly summary says of the access review.
#[derive(Debug, Clone, Default)]
pub struct ReviewCounts {
    pub dormant_after_days: u64,
    pub dormant: usize,
    pub new_admins: usize,
    pub expiring_soon: usize,
    pub stale_api_keys: usize,
    pub locked_recently: usize,
    pub failed_past_week: u64,
    pub failed_week_before: u64,
}

/// One flock in a member's weekly summary.
#[derive(Debug, Clone)]
pub struct FlockLine {
    pub name: String,
    pub role: &'static str,
    pub managers: usize,
    pub watchers: usize,
}

/// What a non-admin's weekly summary says: their flocks.
#[derive(Debug, Clone, Default)]
pub struct MemberSummary {
    pub console_url: String,
    pub flocks: Vec<FlockLine>,
}

// Each summary renders twice (text and HTML) from one view; the wrappers deref to it so the
// templates name its fields directly.
macro_rules! summary_template {
    ($name:ident, $view:ty, $path:literal) => {
        #[derive(Template)]
        #[template(path = $path)]
        struct $name<'a>(&'a $view);

        impl std::ops::Deref for $name<'_> {
            type Target = $view;
            fn deref(&self) -> &$view {
                self.0
            }
        }
    };
}

summary_template!(AdminSummaryText, AdminSummary, "mail/summary_admin.txt");
summary_template!(AdminSummaryHtml, AdminSummary, "mail/summary_admin.html");
summary_template!(MemberSummaryText, MemberSummary, "mail/summary_member.txt");
summary_template!(MemberSummaryHtml, MemberSummary, "mail/summary_member.html");

pub const SUMMARY_SUBJECT: &str = "Your weekly Roost summary";

/// An admin's weekly summary mail.
pub fn admin_summary(summary: &AdminSummary) -> Result<MailContent, MailError> {
    Ok(MailContent {
        kind: "weekly summary".to_string(),
        subject: SUMMARY_SUBJECT.to_string(),
        text: render(&AdminSummaryText(summary))?,
        html: Some(render(&AdminSummaryHtml(summary))?),
    })
}

/// A member's weekly summary mail.
pub fn member_summary(summary: &MemberSummary) -> Result<MailContent, MailError> {
    Ok(MailContent {
        kind: "weekly summary".to_string(),
        subject: SUMMARY_SUBJECT.to_string(),
        text: render(&MemberSummaryText(summary))?,
        html: Some(render(&MemberSummaryHtml(summary))?),
    })
}

/// A notice for the admins: what happened, step by step, and where to look.
#[derive(Template)]
#[template(path = "mail/admin_notice.txt")]
struct AdminNoticeText<'a> {
    intro: &'a str,
    lines: &'a [String],
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/admin_notice.html")]
struct AdminNoticeHtml<'a> {
    subject: &'a str,
    intro: &'a str,
    lines: &'a [String],
    link: &'a str,
    link_label: &'a str,
}

fn admin_notice(
    kind: &str,
    subject: String,
    intro: &str,
    lines: &[String],
    link: &str,
) -> Result<MailContent, MailError> {
    Ok(MailContent {
        kind: kind.to_string(),
        text: render(&AdminNoticeText { intro, lines, link })?,
        html: Some(render(&AdminNoticeHtml {
            subject: &subject,
            intro,
            lines,
            link,
            link_label: "Open the user in Roost",
        })?),
        subject,
    })
}

/// The receipt of an offboarding, for the other admins: each step and its result.
pub fn offboarding_receipt(
    report: &crate::store::OffboardingReport,
    actor: &str,
    user_url: &str,
) -> Result<MailContent, MailError> {
    let email = &report.user.email;
    let flocks = |list: &[(crate::domain::FlockId, String)]| {
        if list.is_empty() {
            "none".to_string()
        } else {
            list.iter()
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let keys = report
        .api_keys
        .iter()
        .map(|key| format!("{} ({})", key.note, key.key_id))
        .collect::<Vec<_>>();
    let keys_line = match (keys.is_empty(), report.api_keys_revoked) {
        (true, _) => "API keys they created: none".to_string(),
        (false, true) => format!("API keys they created, revoked: {}", keys.join(", ")),
        (false, false) => format!(
            "API keys they created, kept as asked (revoke them by hand if they should go): {}",
            keys.join(", ")
        ),
    };
    let lines = vec![
        if report.was_enabled {
            "Account: disabled".to_string()
        } else {
            "Account: was already disabled, stays disabled".to_string()
        },
        format!("Sessions ended: {}", report.sessions_ended),
        format!(
            "Manager role removed in: {}",
            flocks(&report.managed_flocks)
        ),
        format!(
            "Watcher role removed in: {}",
            flocks(&report.watched_flocks)
        ),
        format!(
            "Unused set-password and reset links voided: {}",
            report.links_voided
        ),
        format!("Queued mail to them dropped: {}", report.mails_dropped),
        keys_line,
    ];
    let intro = match &report.scheduled {
        Some(schedule) => format!(
            "{email} was offboarded as {} scheduled it for {}. Every step, and its result:",
            schedule.scheduled_by,
            crate::timestamps::console_minute(schedule.at)
        ),
        None => format!("{actor} offboarded {email}. Every step, and its result:"),
    };
    admin_notice(
        "offboarding receipt",
        format!("Roost: {email} was offboarded"),
        &intro,
        &lines,
        user_url,
    )
}

/// A scheduled offboarding the rules refused at its time, for the admins.
pub fn offboarding_refused(
    email: &crate::domain::Email,
    schedule: &crate::store::ScheduledOffboarding,
    reason: &str,
    user_url: &str,
) -> Result<MailContent, MailError> {
    let intro = format!(
        "The offboarding of {email} that {} scheduled for {} was not carried out: {reason}. The schedule was dropped; nothing was changed.",
        schedule.scheduled_by,
        crate::timestamps::console_minute(schedule.at)
    );
    admin_notice(
        "offboarding refused",
        format!("Roost: the offboarding of {email} was refused"),
        &intro,
        &[],
        user_url,
    )
}

/// Three days before a grant ends: to the user (`to_admins` false) or to the admins, who can
/// extend it on the user's page.
pub fn expiry_reminder(
    user: &crate::store::User,
    grant: &crate::store::ExpiringGrant,
    to_admins: bool,
    user_url: &str,
) -> Result<MailContent, MailError> {
    let what = crate::store::describe_grant(&grant.grant);
    let ends = crate::timestamps::console_minute(grant.expires_at);
    let email = &user.email;
    let (intro, link) = if to_admins {
        (
            format!(
                "{what} of {email} ends at {ends}. To keep it, extend it on their page; otherwise nothing is needed: it is taken back then, and their sessions end."
            ),
            user_url,
        )
    } else {
        (
            format!(
                "Your {} ends at {ends}. If you still need it, ask an admin to extend it.",
                lower_first(&what)
            ),
            user_url.split("/users/").next().unwrap_or(user_url),
        )
    };
    admin_notice(
        "expiry reminder",
        format!("Roost: {what} of {email} ends at {ends}"),
        &intro,
        &[format!("Granted by {}", grant.granted_by)],
        link,
    )
}

/// An expiry kept back: taking the grant would have left no enabled admin.
pub fn expiry_deferred(
    user: &crate::store::User,
    grant: &crate::store::ExpiringGrant,
    user_url: &str,
) -> Result<MailContent, MailError> {
    let what = crate::store::describe_grant(&grant.grant);
    let email = &user.email;
    let intro = format!(
        "{what} of {email} ended at {}, but {email} is the last enabled admin: the access is kept, and taking it back is tried again every day. Make another admin, or extend it.",
        crate::timestamps::console_minute(grant.expires_at)
    );
    admin_notice(
        "expiry deferred",
        format!("Roost: {what} of {email} is kept past its end"),
        &intro,
        &[],
        user_url,
    )
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_link_and_html_is_escaped() {
        let mail = welcome("https://roost.example/welcome/abc?x=1&y=2").expect("render");
        assert!(
            mail.text
                .contains("https://roost.example/welcome/abc?x=1&y=2\n")
        );
        let html = mail.html.expect("html part");
        assert!(
            html.contains("https://roost.example/welcome/abc?x=1&#38;y=2"),
            "{html}"
        );
        assert!(!html.contains("x=1&y=2"), "{html}");
        let reset = password_reset("https://roost.example/reset/abc").expect("render");
        assert!(reset.text.contains("within 1 hour"));
        assert!(
            reset
                .html
                .expect("html")
                .contains("href=\"https://roost.example/reset/abc\"")
        );
    }

    #[test]
    fn excerpts_list_twenty_and_count_the_rest() {
        let names = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
        let short = Excerpt::of(names(3));
        assert_eq!((short.total, short.shown.len(), short.more), (3, 3, 0));
        let long = Excerpt::of(names(25));
        assert_eq!((long.total, long.shown.len(), long.more), (25, 20, 5));
        assert_eq!(long.shown.last().map(String::as_str), Some("u19"));
    }

    #[test]
    fn a_member_summary_escapes_flock_names_in_html_only() {
        let summary = MemberSummary {
            console_url: "https://roost.example".to_string(),
            flocks: vec![FlockLine {
                name: "<b>Ops</b> & co".to_string(),
                role: "manager",
                managers: 1,
                watchers: 2,
            }],
        };
        let mail = member_summary(&summary).expect("render");
        assert!(
            mail.text
                .contains("  - <b>Ops</b> & co (you are manager): 1 manager, 2 watchers"),
            "{}",
            mail.text
        );
        let html = mail.html.expect("html part");
        assert!(
            html.contains("&#60;b&#62;Ops&#60;/b&#62; &#38; co"),
            "{html}"
        );
        let empty = member_summary(&MemberSummary::default()).expect("render");
        assert!(empty.text.contains("You are not in any flock."));
    }
}
