//! The text of each message Roost sends.

/// A message ready for a transport; `kind` names it in logs instead of its content.
pub struct OutgoingMail {
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
}

impl OutgoingMail {
    pub fn welcome(link: &str) -> OutgoingMail {
        OutgoingMail {
            kind: "welcome",
            subject: "Welcome to Roost".to_string(),
            text: format!(
                "Hello,\n\nan account was created for you on Roost.\n\nChoose your password with this link, within 7 days (it works once):\n{link}\n\nIf you did not expect this, you can ignore this message.\n"
            ),
        }
    }

    pub fn password_reset(link: &str) -> OutgoingMail {
        OutgoingMail {
            kind: "password reset",
            subject: "Reset your Roost password".to_string(),
            text: format!(
                "Hello,\n\na password reset was requested for your Roost account.\n\nChoose a new password with this link, within 1 hour (it works once):\n{link}\n\nUntil you use it your current password keeps working. If you did not expect this, tell your administrator.\n"
            ),
        }
    }
}
