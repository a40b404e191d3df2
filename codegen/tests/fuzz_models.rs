//! No model, however broken, makes the generator panic; and every model that
//! passes analysis generates Rust that parses and an ABNF grammar.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use zproto_codegen::analyse::{self, LoadedClass};
use zproto_codegen::{emit, xml, Config};

/// Seeds: our zgossip model and a model using every field type.
const SEEDS: &[&str] = &[
    include_str!("../../protocol/zgossip_msg.xml"),
    r#"<class name = "all" signature = "5">
    <define name = "VERSION" value = "2" />
    <header><field name = "seq" type = "number" size = "2" /></header>
    <message name = "A" id = "9">
        <field name = "v" type = "number" size = "2" value = "ALL_VERSION" />
        <field name = "tag" type = "string" value = "ALL" />
        <field name = "n1" type = "number" size = "1" /><field name = "n4" type = "number" size = "4" />
        <field name = "n8" type = "number" size = "8" /><field name = "o" type = "octets" size = "40" />
        <field name = "s" type = "string" /><field name = "l" type = "longstr" />
        <field name = "list" type = "strings"><test>a</test></field>
        <field name = "h" type = "hash"><test name = "k">v</test></field>
        <field name = "c" type = "chunk" /><field name = "u" type = "uuid" />
        <field name = "who" type = "person"><test name = "name">x</test></field>
        <field name = "f" type = "frame" /><field name = "m" type = "msg" />
    </message>
    <message name = "type" role = "server" />
    <type name = "person"><field name = "name" type = "string" /><field name = "age" type = "number" /></type>
</class>"#,
];

const SNIPPETS: &[&str] = &[
    "<",
    ">",
    "\"",
    "=",
    "/>",
    "</field>",
    "<field name = \"x\" type = \"string\" />",
    " size = \"9\"",
    " type = \"msg\"",
    " id = \"300\"",
    "<message name = \"B\" />",
    "<include filename = \"x.xml\" />",
    "&amp;",
    "&bogus;",
    "<![CDATA[x]]>",
    "\u{e9}",
    "\0",
];

fn mutate(seed: &str, cut: (usize, usize), insert: &str) -> String {
    let bytes = seed.as_bytes();
    let start = cut.0 % (bytes.len() + 1);
    let end = (start + cut.1 % 40).min(bytes.len());
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(insert.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    String::from_utf8_lossy(&out).into_owned()
}

fn generate(text: &str) {
    let Ok(root) = xml::parse_str(text, Arc::from(Path::new("fuzz.xml"))) else {
        return;
    };
    let loaded = LoadedClass {
        root,
        sources: vec!["fuzz.xml".into()],
    };
    if let Ok(model) = analyse::codec::analyse(loaded) {
        Config::new()
            .generate_codec(&model)
            .expect("a valid model generates parseable Rust");
        emit::abnf::emit(&model).expect("a valid model has a grammar");
    }
}

#[test]
fn seeds_are_valid() {
    for seed in SEEDS {
        let root = xml::parse_str(seed, Arc::from(Path::new("seed.xml"))).unwrap();
        let model = analyse::codec::analyse(LoadedClass {
            root,
            sources: vec![],
        })
        .unwrap();
        Config::new().generate_codec(&model).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn mutated_models_never_panic(
        seed in prop::sample::select(SEEDS),
        cuts in prop::collection::vec((any::<usize>(), any::<usize>(), prop::sample::select(SNIPPETS)), 1..4),
    ) {
        let mut text = seed.to_owned();
        for (at, len, snippet) in cuts {
            text = mutate(&text, (at, len), snippet);
        }
        generate(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        generate(&text);
    }
}
