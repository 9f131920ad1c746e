//! Quoting for POSIX shells: the one way a value goes into a script the charm renders.

/// `value` in single quotes, each `'` written as `'\''`, so the shell takes it as one
/// word with no expansion at all.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_a_real_shell() {
        for value in ["plain", "it's", "$(id) `id` $HOME", "a b\tc\nd", "", "'\\'"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }
}
