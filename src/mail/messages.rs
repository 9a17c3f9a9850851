//! The text of each message Roost sends: a plain-text and an HTML template per message, under
//! `templates/mail/`.

use askama::Template;

use super::MailError;
use crate::store::MailContent;

/// A plain-text message ready for a transport; `kind` names it in logs instead of its content.
pub struct OutgoingMail {
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
}

impl From<OutgoingMail> for MailContent {
    fn from(mail: OutgoingMail) -> MailContent {
        MailContent {
            kind: mail.kind.to_string(),
            subject: mail.subject,
            text: mail.text,
            html: None,
        }
    }
}

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
    template
        .render()
        .map_err(|error| MailError::Build(error.to_string()))
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
}
