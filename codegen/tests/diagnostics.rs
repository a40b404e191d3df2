//! The broken-model corpus: one model per check in `tests/broken/`, each
//! starting with `<!-- expect: LINE:COLUMN: MESSAGE -->`. The generator must
//! report exactly that diagnostic (the message may go on after the expected
//! prefix, e.g. an OS error), and never panic.

use std::path::{Path, PathBuf};

use zproto_codegen::analyse::analyse_any as analyse_file;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

fn expectation(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or("");
    first
        .strip_prefix("<!-- expect: ")
        .and_then(|s| s.strip_suffix(" -->"))
        .unwrap_or_else(|| panic!("{}: no expect comment", path.display()))
        .to_owned()
}

#[test]
fn every_broken_model_gets_its_located_diagnostic() {
    let files = corpus();
    assert!(files.len() >= 40, "corpus has {} models", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let expected = format!("{}:{}", path.display(), expectation(path));
        match analyse_file(path) {
            Ok(_) => failures.push(format!("{}: accepted", path.display())),
            Err(diagnostics) => {
                let lines: Vec<String> = diagnostics.0.iter().map(|d| d.to_string()).collect();
                if !lines.iter().any(|l| l.starts_with(&expected)) {
                    failures.push(format!(
                        "expected {expected}\n  got {}",
                        lines.join("\n      ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_issue_example_reads_as_promised() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/number_size.xml");
    let err = analyse_file(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.ends_with(
            "number_size.xml:4:9: field \"ttl\": number size must be 1, 2, 4 or 8, found 3"
        ),
        "{text}"
    );
}

#[test]
fn all_problems_are_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.xml");
    std::fs::write(
        &path,
        r#"<class name = "p" signature = "99">
    <message name = "A">
        <field name = "a" type = "number" size = "5" />
        <field name = "b" type = "nope" />
    </message>
</class>"#,
    )
    .unwrap();
    let err = analyse_file(&path).unwrap_err();
    assert_eq!(err.0.len(), 3, "{err}");
}

#[test]
fn unreadable_model_is_an_error_not_a_panic() {
    let err = analyse_file(Path::new("/no/such/model.xml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/no/such/model.xml: cannot read model"),
        "{err}"
    );
}
