//! The one template renderer: `@@NAME@@` placeholders filled in a single pass. A
//! placeholder without a value, a value no placeholder uses, or a stray `@@` is an
//! error, so a template and its caller can never drift apart silently; values are
//! inserted as they are, never scanned again.

/// Why a template could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template has a placeholder no value was given for.
    #[error("placeholder @@{0}@@ has no value")]
    Unfilled(String),
    /// A value was given that no placeholder of the template uses.
    #[error("value {0} is not used by the template")]
    Unused(String),
    /// The same name was given two values.
    #[error("value {0} is given twice")]
    Duplicate(String),
    /// `@@` that does not open a placeholder (`@@` + capitals, digits, `_` + `@@`).
    #[error("stray @@ at byte {0}")]
    Stray(usize),
}

const MARK: &str = "@@";

/// Renders `template` with `values` (`("NAME", value)` for `@@NAME@@`).
pub fn render(template: &str, values: &[(&str, &str)]) -> Result<String, TemplateError> {
    for (i, (name, _)) in values.iter().enumerate() {
        if values[..i].iter().any(|(n, _)| n == name) {
            return Err(TemplateError::Duplicate(name.to_string()));
        }
    }
    let mut used = vec![false; values.len()];
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(MARK) {
        let at = template.len() - rest.len() + open;
        out.push_str(&rest[..open]);
        let after = &rest[open + MARK.len()..];
        let name = after
            .find(MARK)
            .map(|close| &after[..close])
            .filter(|name| is_name(name))
            .ok_or(TemplateError::Stray(at))?;
        let index = values
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| TemplateError::Unfilled(name.to_string()))?;
        used[index] = true;
        out.push_str(values[index].1);
        rest = &after[name.len() + MARK.len()..];
    }
    out.push_str(rest);
    match values.iter().zip(&used).find(|(_, used)| !**used) {
        Some(((name, _), _)) => Err(TemplateError::Unused(name.to_string())),
        None => Ok(out),
    }
}

/// Renders a template compiled into the binary. Its placeholders and the caller's
/// names are both fixed in the source, so a mismatch is a bug that the template's own
/// test finds; it panics naming the mismatch rather than ship a half-filled file.
pub fn fill(template: &'static str, values: &[(&str, &str)]) -> String {
    render(template, values)
        .unwrap_or_else(|e| panic!("a compiled-in template and its values disagree: {e}"))
}

/// A placeholder name: a capital letter, then capitals, digits and underscores.
fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_wherever_it_stands() {
        let out = render(
            "a=@@A@@ b=@@B_2@@ again @@A@@\n",
            &[("A", "1"), ("B_2", "two")],
        );
        assert_eq!(out.unwrap(), "a=1 b=two again 1\n");
        assert_eq!(render("no placeholders", &[]).unwrap(), "no placeholders");
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error() {
        assert_eq!(
            render("x=@@X@@ y=@@Y@@", &[("X", "1")]),
            Err(TemplateError::Unfilled("Y".into()))
        );
    }

    #[test]
    fn a_value_the_template_never_uses_is_an_error() {
        assert_eq!(
            render("x=@@X@@", &[("X", "1"), ("TYPO", "2")]),
            Err(TemplateError::Unused("TYPO".into()))
        );
        assert_eq!(
            render("x=@@X@@", &[("X", "1"), ("X", "2")]),
            Err(TemplateError::Duplicate("X".into()))
        );
    }

    #[test]
    fn a_stray_mark_is_an_error_not_a_leftover() {
        for bad in ["@@", "a @@X", "@@lower@@", "@@ X@@", "@@@@"] {
            assert!(
                matches!(render(bad, &[]), Err(TemplateError::Stray(_))),
                "{bad:?}"
            );
        }
        assert_eq!(render("ab @@", &[]), Err(TemplateError::Stray(3)));
    }

    #[test]
    fn values_are_inserted_once_and_never_expanded() {
        let out = render("@@A@@|@@B@@", &[("A", "@@B@@"), ("B", "@@")]).unwrap();
        assert_eq!(out, "@@B@@|@@");
    }
}
