//! An error with its causes on one line, for logs and for the command line's last word: the
//! message a layer chooses stays short, and what caused it is still said.

/// The error and each of its causes, joined by `: `. A cause whose words the message already
/// ends with (a `{source}` in the message) isn't said twice.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let said = source.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot open the file")]
        Quiet(#[source] std::io::Error),
        #[error("cannot open the file: {0}")]
        Loud(#[source] std::io::Error),
    }

    #[test]
    fn causes_are_said_once() {
        let cause = || std::io::Error::other("permission denied");
        assert_eq!(
            error_chain(&Outer::Quiet(cause())),
            "cannot open the file: permission denied"
        );
        assert_eq!(
            error_chain(&Outer::Loud(cause())),
            "cannot open the file: permission denied"
        );
    }
}
