//! Reader for the golden frame captures in `shared/spec/golden/*.frames.txt`.
//!
//! The format: `#` comment lines; a line per message, `LABEL frames=N`; then
//! N lines `  frame I (L bytes): HEX`.

/// One captured message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The label before `frames=N`.
    pub label: String,
    /// Its frames, in order.
    pub frames: Vec<Vec<u8>>,
}

/// Load a capture file from [`crate::GOLDEN_DIR`].
#[cfg(shared_models)]
pub fn load(file: &str) -> Result<Vec<Capture>, String> {
    let path = std::path::Path::new(crate::GOLDEN_DIR).join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parse the capture format.
pub fn parse(text: &str) -> Result<Vec<Capture>, String> {
    let mut out: Vec<(Capture, usize)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.trim_start().strip_prefix("frame ") {
            let (capture, _) = out
                .last_mut()
                .ok_or(format!("line {n}: frame before any message"))?;
            let (head, hex) = rest.split_once("): ").ok_or(format!("line {n}: no hex"))?;
            let declared: usize = head
                .split_once('(')
                .and_then(|(_, l)| l.trim_end_matches(" bytes").parse().ok())
                .ok_or(format!("line {n}: no length"))?;
            let bytes = decode_hex(hex.trim()).ok_or(format!("line {n}: bad hex"))?;
            if bytes.len() != declared {
                return Err(format!(
                    "line {n}: {declared} bytes declared, {} given",
                    bytes.len()
                ));
            }
            capture.frames.push(bytes);
        } else {
            let (label, count) = line
                .rsplit_once(" frames=")
                .ok_or(format!("line {n}: no frames="))?;
            let count = count
                .trim()
                .parse()
                .map_err(|_| format!("line {n}: bad count"))?;
            out.push((
                Capture {
                    label: label.trim().to_owned(),
                    frames: Vec::new(),
                },
                count,
            ));
        }
    }
    out.into_iter()
        .map(|(c, count)| {
            if c.frames.len() == count {
                Ok(c)
            } else {
                Err(format!(
                    "{}: {count} frames declared, {} given",
                    c.label,
                    c.frames.len()
                ))
            }
        })
        .collect()
}

/// Bytes from a string of hex digits (whitespace ignored).
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_format_and_checks_counts() {
        let text = "# c\nA frames=2\n  frame 0 (2 bytes): aaa0\n  frame 1 (0 bytes): \n";
        let caps = parse(text).unwrap();
        assert_eq!(caps[0].label, "A");
        assert_eq!(caps[0].frames, vec![vec![0xaa, 0xa0], vec![]]);
        assert!(parse("A frames=2\n  frame 0 (2 bytes): aaa0\n").is_err());
        assert!(parse("A frames=1\n  frame 0 (3 bytes): aaa0\n").is_err());
    }
}
