use super::Email;

/// A new password that satisfies the console's rules: 12 to 1024 characters, not the account's
/// email, typed the same twice. (The upper bound keeps hashing cost bounded.)
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(password: &str, confirmation: &str, email: &Email) -> Result<NewPassword, String> {
        let length = password.chars().count();
        if length < Self::MIN_CHARS {
            return Err(format!(
                "The password must have at least {} characters.",
                Self::MIN_CHARS
            ));
        }
        if length > Self::MAX_CHARS {
            return Err(format!(
                "The password must have at most {} characters.",
                Self::MAX_CHARS
            ));
        }
        if password.trim().eq_ignore_ascii_case(email.as_str()) {
            return Err("The password must not be your email address.".to_string());
        }
        if password != confirmation {
            return Err("The two passwords do not match.".to_string());
        }
        Ok(NewPassword(password.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let email = Email::parse("ann@example.org").unwrap();
        assert!(NewPassword::parse("short", "short", &email).is_err());
        assert!(NewPassword::parse("ann@example.org", "ann@example.org", &email).is_err());
        assert!(NewPassword::parse("ANN@example.org", "ANN@example.org", &email).is_err());
        assert!(NewPassword::parse("long enough pw", "long enough px", &email).is_err());
        assert!(NewPassword::parse("long enough pw", "long enough pw", &email).is_ok());
    }
}
