//! Strings from the network, made safe to print: a peer's endpoint or
//! service may hold newlines or control characters, and printed as they are
//! they would forge lines (`DELIVER ...`, `STATUS ...`) on our output or in
//! our logs.

use std::fmt;

/// Displays a string with backslashes, control characters and (if
/// `spaces`) spaces escaped as `\\`, `\n`, `\t`, `\r`, `\x20`, `\u{..}`,
/// so that it is always one word or one line and reads back unambiguously
/// ([`unescape`]). Other characters, non-ASCII included, are kept.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

/// Like [`Escaped`], with spaces escaped too: one word.
#[derive(Debug, Clone, Copy)]
pub struct EscapedWord<'a>(pub &'a str);

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, spaces: bool) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            ' ' if spaces => f.write_str("\\x20")?,
            c if c.is_control() || is_line_breaking(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => fmt::Write::write_char(f, c)?,
        }
    }
    Ok(())
}

/// Characters that terminals or log readers may take as line breaks.
fn is_line_breaking(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

impl fmt::Display for EscapedWord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, true)
    }
}

/// Undo [`Escaped`] or [`EscapedWord`]; `None` for a malformed escape.
pub fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forged_lines_stay_on_one_line() {
        let evil = "printer\nDELIVER tcp://evil:1 x\r\nSTATUS 999\u{2028}";
        let shown = Escaped(evil).to_string();
        assert!(!shown.contains(['\n', '\r', '\u{2028}']));
        assert_eq!(
            shown,
            "printer\\nDELIVER tcp://evil:1 x\\r\\nSTATUS 999\\u{2028}"
        );
        assert_eq!(EscapedWord("a b").to_string(), "a\\x20b");
        assert_eq!(Escaped("tcp://café:1").to_string(), "tcp://café:1");
    }

    proptest! {
        #[test]
        fn escaping_reads_back(text in any::<String>()) {
            let line = Escaped(&text).to_string();
            prop_assert!(!line.chars().any(|c| c.is_control()));
            prop_assert_eq!(unescape(&line), Some(text.clone()));
            let word = EscapedWord(&text).to_string();
            prop_assert!(!word.contains(' '));
            prop_assert_eq!(unescape(&word), Some(text.clone()));
        }
    }
}
