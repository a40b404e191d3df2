//! Name normalisation, as zproto does it, and the Rust spellings derived
//! from it.
//!
//! zproto turns every non-alphanumeric character into `_` and lower-cases the
//! result, so `PING-OK`, `ping ok` and `Ping_Ok` are the same name. From that
//! canonical form we derive `snake_case` for fields, `UpperCamel` for types
//! and `SCREAMING_CASE` for constants.

/// zproto's canonical identifier: letters and digits kept, everything else
/// `_`, a non-letter first character `_`, all lower case.
pub fn canonical(name: &str) -> String {
    name.trim()
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The name as zproto's `command()` and log lines show it: canonical, upper
/// case (`PING_OK`).
pub fn upper(name: &str) -> String {
    canonical(name).to_ascii_uppercase()
}

/// The name as the ABNF grammar shows a message: upper case with hyphens.
pub fn abnf_message(name: &str) -> String {
    upper(name).replace('_', "-")
}

/// The name as the ABNF grammar shows a field or rule: lower case with
/// hyphens, since ABNF rule names may not hold `_`.
pub fn abnf_rule(name: &str) -> String {
    canonical(name)
        .replace('_', "-")
        .trim_matches('-')
        .to_owned()
}

/// `UpperCamelCase` for a type or enum variant.
pub fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in canonical(name).split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'X');
    }
    out
}

/// `SCREAMING_SNAKE_CASE` for a constant.
pub fn screaming(name: &str) -> String {
    let s = upper(name).trim_matches('_').to_owned();
    if s.is_empty() {
        "_".to_owned()
    } else {
        s
    }
}

/// `snake_case` for a field or function, safe to use as a Rust identifier:
/// keywords become raw identifiers (`r#type`), the few that cannot be raw get
/// a trailing `_`.
pub fn snake(name: &str) -> String {
    let s = canonical(name);
    rust_ident(&s)
}

/// Make `s` usable as a Rust identifier.
pub fn rust_ident(s: &str) -> String {
    match s {
        "self" | "super" | "crate" | "Self" | "_" => format!("{s}_"),
        _ if is_keyword(s) => format!("r#{s}"),
        _ => s.to_owned(),
    }
}

fn is_keyword(s: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
        "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
        "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async",
        "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
        "typeof", "unsized", "virtual", "yield", "try", "gen",
    ];
    KEYWORDS.contains(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zproto_rules() {
        assert_eq!(canonical("PING-OK"), "ping_ok");
        assert_eq!(canonical("Connection Open"), "connection_open");
        assert_eq!(canonical("public key"), "public_key");
        assert_eq!(canonical("9lives"), "_lives");
        assert_eq!(upper("ping ok"), "PING_OK");
        assert_eq!(abnf_message("CONNECTION OPEN"), "CONNECTION-OPEN");
    }

    #[test]
    fn rust_spellings() {
        assert_eq!(camel("CONNECTION OPEN"), "ConnectionOpen");
        assert_eq!(camel("zproto_example"), "ZprotoExample");
        assert_eq!(camel("ZYRE_ENTER"), "ZyreEnter");
        assert_eq!(camel("--"), "X");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("self"), "self_");
        assert_eq!(snake("public key"), "public_key");
        assert_eq!(screaming("max keys"), "MAX_KEYS");
    }
}
