//! Emit stage for the ABNF grammar of a codec model (a tera template), as
//! zproto writes `<name>.bnf` next to its codecs.

use serde::Serialize;

use crate::error::Error;
use crate::model::codec::*;
use crate::names;

const TEMPLATE: &str = include_str!("../../templates/codec.abnf.tera");

#[derive(Serialize)]
struct Context {
    class: String,
    title: Option<String>,
    source: String,
    grammar: String,
    signature: u8,
    signature_hex: String,
    messages: Vec<MessageRule>,
    types: Vec<TypeRule>,
    uses: Uses,
}

#[derive(Serialize)]
struct MessageRule {
    name: String,
    id: u8,
    description: Vec<String>,
    terms: Vec<String>,
    fields: Vec<FieldRule>,
}

#[derive(Serialize)]
struct FieldRule {
    rule: String,
    definition: String,
    comment: String,
}

#[derive(Serialize)]
struct TypeRule {
    name: String,
    rule: String,
    description: String,
    fields: Vec<String>,
}

#[derive(Serialize, Default)]
struct Uses {
    string: bool,
    longstr: bool,
    strings: bool,
    hash: bool,
    chunk: bool,
    uuid: bool,
    frame: bool,
    msg: bool,
}

/// The ABNF grammar of a codec model.
pub fn emit(model: &CodecModel) -> Result<String, Error> {
    let mut uses = Uses::default();
    let class_rule = names::abnf_rule(&model.class);
    let mut defined: Vec<String> = Vec::new();
    let messages = model
        .messages
        .iter()
        .map(|m| {
            let mut terms = Vec::new();
            let mut fields = Vec::new();
            let mut optional = 0;
            for f in &m.fields {
                mark(&mut uses, f.kind);
                let (term, rule, definition) = match &f.origin {
                    Origin::Composite { field, type_name } => {
                        let term = names::abnf_rule(field);
                        (term.clone(), term, names::abnf_rule(type_name))
                    }
                    _ => {
                        let term = names::abnf_rule(&f.name);
                        (term.clone(), term, definition(f.kind))
                    }
                };
                if terms.last() != Some(&term) {
                    // Optional fields nest: each may be absent, and then so
                    // are the ones after it.
                    if f.optional {
                        optional += 1;
                        terms.push(format!("[ {term}"));
                    } else {
                        // Only frames follow optional fields: close them.
                        if let Some(last) = terms.last_mut() {
                            last.push_str(&" ]".repeat(optional));
                        }
                        optional = 0;
                        terms.push(term);
                    }
                }
                // Each rule is written once, where it is first used.
                if !defined.contains(&rule) {
                    defined.push(rule.clone());
                    let comment = match (&f.constant, &f.origin) {
                        (Some(Constant::Number(n)), _) => format!("constant {n}"),
                        (Some(Constant::String(s)), _) => format!("constant {s:?}"),
                        (None, Origin::Composite { type_name, .. }) => {
                            format!("composite type {type_name}")
                        }
                        (None, _) => f.description.lines().next().unwrap_or("").to_owned(),
                    };
                    fields.push(FieldRule {
                        rule,
                        definition,
                        comment,
                    });
                }
            }
            if let Some(last) = terms.last_mut() {
                last.push_str(&" ]".repeat(optional));
            }
            MessageRule {
                name: names::abnf_message(&m.name),
                id: m.id,
                description: m.description.lines().map(str::to_owned).collect(),
                terms,
                fields,
            }
        })
        .collect();
    let types = model
        .types
        .iter()
        .map(|t| TypeRule {
            name: t.name.clone(),
            rule: names::abnf_rule(&t.name),
            description: t.description.lines().next().unwrap_or("").to_owned(),
            fields: t
                .fields
                .iter()
                .map(|(_, kind, _)| definition(*kind))
                .collect(),
        })
        .collect();
    let grammar = match &model.grammar {
        // zproto copies the grammar as written; add the class rule name when
        // the first line does not define one, so the result stays ABNF.
        Some(g) if g.lines().next().is_some_and(|l| l.contains('=')) => g.clone(),
        Some(g) => format!("{class_rule} = {g}"),
        None => {
            let alternatives: Vec<String> = model
                .messages
                .iter()
                .map(|m| {
                    let name = names::abnf_message(&m.name);
                    match m.role {
                        Some(Role::Client) => format!("C:{name}"),
                        Some(Role::Server) => format!("S:{name}"),
                        None => name,
                    }
                })
                .collect();
            format!("{class_rule} = *( {} )", alternatives.join(" / "))
        }
    };
    let context = Context {
        class: model.class.clone(),
        title: model.title.clone(),
        source: super::source_name(&model.sources),
        grammar,
        signature: model.signature,
        signature_hex: format!("{:02X}", 0xA0 | model.signature),
        messages,
        types,
        uses,
    };
    super::render("codec.abnf", TEMPLATE, &context)
}

fn definition(kind: FieldKind) -> String {
    match kind {
        FieldKind::Number(n) => format!("number-{n}"),
        FieldKind::Octets(n) => format!("{n}OCTET"),
        other => other.model_name().to_owned(),
    }
}

fn mark(uses: &mut Uses, kind: FieldKind) {
    match kind {
        FieldKind::String => uses.string = true,
        FieldKind::Longstr => uses.longstr = true,
        FieldKind::Strings => uses.strings = true,
        FieldKind::Hash => uses.hash = true,
        FieldKind::Chunk => uses.chunk = true,
        FieldKind::Uuid => uses.uuid = true,
        FieldKind::Frame => uses.frame = true,
        FieldKind::Msg => uses.msg = true,
        FieldKind::Number(_) | FieldKind::Octets(_) => {}
    }
}
