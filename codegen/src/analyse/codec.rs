//! Codec models: `<class>` to [`CodecModel`], with every check zproto makes
//! and the ones it should (duplicate names and ids, ranges, sizes).

use std::collections::HashMap;
use std::path::Path;

use super::{class_name, parse_decimal, LoadedClass, Problems};
use crate::error::Diagnostics;
use crate::model::codec::*;
use crate::names;
use crate::xml::{Element, Location};

/// The C generator's default self-test text.
const DEFAULT_TEXT: &str = "Life is short but Now lasts for ever";
/// The C generator's default chunk, frame and msg content.
const DEFAULT_BYTES: &[u8] = b"Captcha Diem";

/// Load, resolve and validate the codec model at `path`.
pub fn analyse_file(path: &Path) -> Result<CodecModel, Diagnostics> {
    analyse_file_in(path, &[])
}

/// [`analyse_file`], looking for includes in `search` too.
pub fn analyse_file_in(
    path: &Path,
    search: &[std::path::PathBuf],
) -> Result<CodecModel, Diagnostics> {
    analyse(super::load_class_in(path, search)?)
}

/// Validate a loaded `<class>` as a codec model.
pub fn analyse(loaded: LoadedClass) -> Result<CodecModel, Diagnostics> {
    let LoadedClass { root, sources } = loaded;
    let mut p = Problems::default();

    let class = class_name(&root, &mut p);
    let signature = match root.attr("signature") {
        None => 0,
        Some(s) => match parse_decimal(s) {
            Some(n) if n <= 15 => n as u8,
            _ => {
                p.push(root.location.error(format!(
                    "signature must be a number from 0 to 15, found \"{s}\""
                )));
                0
            }
        },
    };
    let pubsub = root.attr("pubsub").map(str::trim) == Some("1");
    let is_virtual = root.attr("virtual").map(str::trim) == Some("1");

    let defines = defines(&root, &mut p);
    let types = composite_types(&root, &mut p);
    let mut ctx = FieldContext {
        class: &class,
        defines: &defines,
        types: &types,
    };
    let header: Vec<(Field, Location)> = root
        .elements()
        .filter(|e| e.name == "header")
        .flat_map(|h| h.elements().filter(|e| e.name == "field"))
        .flat_map(|f| ctx.field(f, Origin::Header, &mut p))
        .collect();
    let messages = messages(&root, &header, &mut ctx, &mut p);
    let license = root
        .elements()
        .find(|e| e.name == "license")
        .map(Element::text);
    let grammar = root
        .elements()
        .find(|e| e.name == "grammar")
        .map(Element::text);

    if messages.is_empty() && p.0.is_empty() {
        p.push(
            root.location
                .error(format!("class \"{class}\" defines no messages")),
        );
    }
    check_rust_names(&class, &root, &messages, &defines, &mut p);

    let model = CodecModel {
        title: root.attr("title").map(str::to_owned),
        description: root.text(),
        license,
        signature,
        is_virtual,
        pubsub,
        defines: defines.into_iter().map(|(d, _)| d).collect(),
        grammar,
        messages,
        types: types.into_values().map(|(t, _, _)| t).collect(),
        sources,
        class,
    };
    p.finish(model)
}

type Defines = Vec<(Define, Location)>;
/// Composite types by canonical name: the type, its elements, where it is.
type Types<'a> = HashMap<String, (CompositeType, Vec<&'a Element>, Location)>;

fn defines(root: &Element, p: &mut Problems) -> Defines {
    let mut out: Defines = Vec::new();
    for e in root.elements().filter(|e| e.name == "define") {
        let (Some(name), Some(value)) = (e.attr("name"), e.attr("value")) else {
            p.push(e.location.error("<define> needs name and value attributes"));
            continue;
        };
        let name = names::canonical(name);
        if let Some((_, at)) = out.iter().find(|(d, _)| d.name == name) {
            p.push(e.location.error(format!(
                "define \"{name}\" is already defined at line {}",
                at.line
            )));
            continue;
        }
        let value = match parse_decimal(value) {
            Some(n) => DefineValue::Integer(n),
            None => DefineValue::Text(value.to_owned()),
        };
        out.push((
            Define {
                name,
                value,
                description: e.text(),
            },
            e.location.clone(),
        ));
    }
    out
}

fn composite_types<'a>(root: &'a Element, p: &mut Problems) -> Types<'a> {
    let mut out: Types<'a> = HashMap::new();
    for e in root.elements().filter(|e| e.name == "type") {
        let Some(name) = e.attr("name") else {
            p.push(e.location.error("<type> needs a name attribute"));
            continue;
        };
        let name = names::canonical(name);
        if let Some((_, _, at)) = out.get(&name) {
            p.push(e.location.error(format!(
                "type \"{name}\" is already defined at line {}",
                at.line
            )));
            continue;
        }
        let fields: Vec<&Element> = e.elements().filter(|f| f.name == "field").collect();
        if fields.is_empty() {
            p.push(e.location.error(format!("type \"{name}\" has no fields")));
        }
        let ty = CompositeType {
            name: name.clone(),
            description: e.text(),
            fields: Vec::new(),
        };
        out.insert(name, (ty, fields, e.location.clone()));
    }
    // Resolve sub-field types now that every composite name is known.
    let composite_names: Vec<String> = out.keys().cloned().collect();
    for (ty, fields, _) in out.values_mut() {
        for f in fields.iter() {
            let fname = names::canonical(f.attr("name").unwrap_or(""));
            match f.attr("type") {
                Some(t) if composite_names.contains(&names::canonical(t)) => p.push(f.location.error(format!(
                    "type \"{}\": field \"{fname}\" has composite type \"{t}\"; composite types cannot nest",
                    ty.name
                ))),
                _ => {
                    if let Some(kind) = builtin_kind(f, &fname, p) {
                        ty.fields.push((fname, kind, f.text()));
                    }
                }
            }
        }
    }
    out
}

/// The built-in field types, as models write them.
const BUILTIN_TYPES: &[&str] = &[
    "number", "octets", "string", "longstr", "strings", "hash", "chunk", "uuid", "frame", "msg",
];

/// The built-in type of a `<field>`, with its size checks.
fn builtin_kind(f: &Element, name: &str, p: &mut Problems) -> Option<FieldKind> {
    if name.trim_matches('_').is_empty() {
        p.push(f.location.error("<field> needs a name attribute"));
        return None;
    }
    let Some(ty) = f.attr("type") else {
        p.push(
            f.location
                .error(format!("field \"{name}\" needs a type attribute")),
        );
        return None;
    };
    let size = f.attr("size");
    let kind = match ty.trim() {
        "number" => {
            let size = size.unwrap_or("1");
            match parse_decimal(size) {
                Some(n @ (1 | 2 | 4 | 8)) => FieldKind::Number(n as u8),
                _ => {
                    p.push(f.location.error(format!(
                        "field \"{name}\": number size must be 1, 2, 4 or 8, found {size}"
                    )));
                    return None;
                }
            }
        }
        "octets" => match size.and_then(parse_decimal) {
            Some(n) if (1..=65_535).contains(&n) => FieldKind::Octets(n as usize),
            _ => {
                p.push(f.location.error(format!(
                    "field \"{name}\": octets needs a size from 1 to 65535 bytes, found {}",
                    size.unwrap_or("none")
                )));
                return None;
            }
        },
        "string" => FieldKind::String,
        "longstr" => FieldKind::Longstr,
        "strings" => FieldKind::Strings,
        "hash" => FieldKind::Hash,
        "chunk" => FieldKind::Chunk,
        "uuid" => FieldKind::Uuid,
        "frame" => FieldKind::Frame,
        "msg" => FieldKind::Msg,
        other => {
            p.push(f.location.error(format!(
                "field \"{name}\": unknown type \"{other}\"{} (types: {}, or a <type> of the model)",
                super::schema::suggestion(other, BUILTIN_TYPES, ""),
                BUILTIN_TYPES.join(", ")
            )));
            return None;
        }
    };
    Some(kind)
}

struct FieldContext<'a, 'e> {
    class: &'a str,
    defines: &'a Defines,
    types: &'a Types<'e>,
}

impl FieldContext<'_, '_> {
    /// One `<field>` of a header or message: one field, or several for a
    /// composite type.
    fn field(&mut self, f: &Element, origin: Origin, p: &mut Problems) -> Vec<(Field, Location)> {
        let name = names::canonical(f.attr("name").unwrap_or(""));
        if let Some(ty) = f.attr("type") {
            if let Some((composite, _, _)) = self.types.get(&names::canonical(ty)) {
                return self.expand(f, &name, composite, origin, p);
            }
        }
        let Some(kind) = builtin_kind(f, &name, p) else {
            return Vec::new();
        };
        let constant = f
            .attr("value")
            .and_then(|v| self.constant(f, &name, kind, v, p));
        let tests: Vec<(Option<&str>, String)> = f
            .elements()
            .filter(|t| t.name == "test")
            .map(|t| (t.attr("name"), t.text()))
            .collect();
        let test = if constant.is_some() {
            TestValue::None
        } else {
            test_value(f, &name, kind, &tests, p)
        };
        let optional = match f.attr("optional").map(str::trim) {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                p.push(f.location.error(format!(
                    "field \"{name}\": optional must be \"0\" or \"1\", found \"{other}\""
                )));
                false
            }
        };
        if optional && (!matches!(kind, FieldKind::Number(_)) || constant.is_some()) {
            p.push(f.location.error(format!(
                "field \"{name}\": only number fields without a value can be optional, not {kind}"
            )));
        } else if optional && origin == Origin::Header {
            p.push(f.location.error(format!(
                "field \"{name}\": header fields cannot be optional"
            )));
        }
        vec![(
            Field {
                name,
                kind,
                constant,
                description: f.text(),
                test,
                origin,
                bytes: false,
                optional,
            },
            f.location.clone(),
        )]
    }

    /// A composite-typed field becomes one field per sub-field, named
    /// `outer_sub`; `<test name="sub">` values go to the sub-field.
    fn expand(
        &self,
        f: &Element,
        name: &str,
        composite: &CompositeType,
        origin: Origin,
        p: &mut Problems,
    ) -> Vec<(Field, Location)> {
        if origin == Origin::Header {
            p.push(f.location.error(format!(
                "header field \"{name}\": composite types are not allowed in the header"
            )));
            return Vec::new();
        }
        let tests: Vec<(&str, String)> = f
            .elements()
            .filter(|t| t.name == "test")
            .filter_map(|t| Some((t.attr("name")?, t.text())))
            .collect();
        let mut out = Vec::new();
        for (sub, kind, description) in &composite.fields {
            let sub_tests: Vec<(Option<&str>, String)> = tests
                .iter()
                .filter(|(n, _)| names::canonical(n) == *sub)
                .map(|(_, v)| (None, v.clone()))
                .collect();
            let test = test_value(f, &format!("{name}_{sub}"), *kind, &sub_tests, p);
            out.push((
                Field {
                    name: format!("{name}_{sub}"),
                    kind: *kind,
                    constant: None,
                    description: description.clone(),
                    test,
                    origin: Origin::Composite {
                        field: name.to_owned(),
                        type_name: composite.name.clone(),
                    },
                    bytes: false,
                    optional: false,
                },
                f.location.clone(),
            ));
        }
        out
    }

    fn constant(
        &self,
        f: &Element,
        name: &str,
        kind: FieldKind,
        value: &str,
        p: &mut Problems,
    ) -> Option<Constant> {
        match kind {
            FieldKind::Number(size) => {
                let n = parse_decimal(value).or_else(|| self.define_number(value));
                let Some(n) = n else {
                    p.push(f.location.error(format!(
                        "field \"{name}\": value \"{value}\" is neither a decimal number nor a numeric <define>"
                    )));
                    return None;
                };
                if size < 8 && n >> (8 * u32::from(size)) != 0 {
                    p.push(f.location.error(format!(
                        "field \"{name}\": value {n} does not fit in a number of {size} byte{}",
                        if size == 1 { "" } else { "s" }
                    )));
                    return None;
                }
                Some(Constant::Number(n))
            }
            FieldKind::String => {
                if value.len() > 255 {
                    p.push(f.location.error(format!(
                        "field \"{name}\": constant string is {} bytes, a string carries at most 255",
                        value.len()
                    )));
                    return None;
                }
                Some(Constant::String(value.to_owned()))
            }
            other => {
                p.push(f.location.error(format!(
                    "field \"{name}\": a value (constant) is only allowed on number and string fields, not {}",
                    other.model_name()
                )));
                None
            }
        }
    }

    /// A `value` that names a define: `FMQ_MSG_VERSION` or `VERSION`.
    fn define_number(&self, value: &str) -> Option<u64> {
        let wanted = names::screaming(value);
        let prefix = format!("{}_", names::screaming(self.class));
        self.defines.iter().find_map(|(d, _)| {
            let own = names::screaming(&d.name);
            let matches = own == wanted || format!("{prefix}{own}") == wanted;
            match (&d.value, matches) {
                (DefineValue::Integer(n), true) => Some(*n),
                _ => None,
            }
        })
    }
}

/// A field's self-test value from its `<test>` children, or zproto's default.
fn test_value(
    f: &Element,
    name: &str,
    kind: FieldKind,
    tests: &[(Option<&str>, String)],
    p: &mut Problems,
) -> TestValue {
    let first = tests.first().map(|(_, v)| v.as_str());
    let mut bad = |what: &str| {
        p.push(
            f.location
                .error(format!("field \"{name}\": test value {what}")),
        );
        TestValue::None
    };
    match kind {
        FieldKind::Number(size) => match first {
            None => TestValue::Number(123),
            Some(t) => match parse_decimal(t) {
                Some(n) if size == 8 || n >> (8 * u32::from(size)) == 0 => TestValue::Number(n),
                _ => bad(&format!(
                    "\"{t}\" is not a number that fits in {size} byte(s)"
                )),
            },
        },
        FieldKind::String => match first {
            Some(t) if t.len() > 255 => bad("is longer than 255 bytes"),
            Some(t) => TestValue::Text(t.to_owned()),
            None => TestValue::Text(DEFAULT_TEXT.to_owned()),
        },
        FieldKind::Longstr => TestValue::Text(first.unwrap_or(DEFAULT_TEXT).to_owned()),
        FieldKind::Octets(size) => match first {
            None => TestValue::Bytes(vec![123; size]),
            Some(t) if t.len() > size => bad(&format!(
                "is {} bytes, longer than the octets size {size}",
                t.len()
            )),
            Some(t) => {
                let mut bytes = t.as_bytes().to_vec();
                bytes.resize(size, 0);
                TestValue::Bytes(bytes)
            }
        },
        FieldKind::Chunk | FieldKind::Frame => {
            TestValue::Bytes(first.map_or(DEFAULT_BYTES.to_vec(), |t| t.as_bytes().to_vec()))
        }
        FieldKind::Msg => TestValue::Frames(vec![
            first.map_or(DEFAULT_BYTES.to_vec(), |t| t.as_bytes().to_vec())
        ]),
        FieldKind::Uuid => match first {
            // zproto uses a random UUID; a fixed one keeps generated tests
            // reproducible.
            None => TestValue::Uuid(
                *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef",
            ),
            Some(t) => match parse_uuid(t) {
                Some(u) => TestValue::Uuid(u),
                None => bad(&format!("\"{t}\" is not a UUID of 32 hex digits")),
            },
        },
        FieldKind::Strings => {
            if tests.is_empty() {
                TestValue::List(vec!["Name: Brutus".into(), "Age: 43".into()])
            } else {
                TestValue::List(tests.iter().map(|(_, v)| v.clone()).collect())
            }
        }
        FieldKind::Hash => {
            if tests.is_empty() {
                return TestValue::Hash(vec![("Name".into(), "Brutus".into())]);
            }
            let mut pairs: Vec<(String, String)> = Vec::new();
            for (key, value) in tests {
                match key {
                    None => return bad("of a hash needs a name attribute (the key)"),
                    Some(k) if k.len() > 255 => return bad("key is longer than 255 bytes"),
                    Some(k) if pairs.iter().any(|(x, _)| x == k) => {}
                    Some(k) => pairs.push(((*k).to_owned(), value.clone())),
                }
            }
            TestValue::Hash(pairs)
        }
    }
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn messages(
    root: &Element,
    header: &[(Field, Location)],
    ctx: &mut FieldContext<'_, '_>,
    p: &mut Problems,
) -> Vec<Message> {
    let mut out: Vec<(Message, Location)> = Vec::new();
    // Every field name has one type across the protocol (zproto's rule; we
    // compare sizes too).
    let mut field_types: HashMap<String, ((FieldKind, bool), String)> = HashMap::new();
    for (position, e) in root.elements().filter(|e| e.name == "message").enumerate() {
        let Some(raw_name) = e.attr("name") else {
            p.push(e.location.error("<message> needs a name attribute"));
            continue;
        };
        let name = names::canonical(raw_name);
        if name.trim_matches('_').is_empty() {
            p.push(e.location.error(format!(
                "message name \"{raw_name}\" has no letters or digits"
            )));
            continue;
        }
        let upper = names::upper(&name);
        let id = match e.attr("id") {
            Some(text) => {
                match parse_decimal(text) {
                    Some(n) if n <= 255 => n as u8,
                    _ => {
                        p.push(e.location.error(format!("message \"{upper}\": id must be a number from 0 to 255, found \"{text}\"")));
                        continue;
                    }
                }
            }
            // Implicit ids count every message, explicit ids included.
            None => match u8::try_from(position + 1) {
                Ok(n) => n,
                Err(_) => {
                    p.push(e.location.error(format!(
                        "message \"{upper}\": implicit id {} is over 255; give it an explicit id",
                        position + 1
                    )));
                    continue;
                }
            },
        };
        if let Some((m, at)) = out.iter().find(|(m, _)| m.name == name) {
            p.push(e.location.error(format!(
                "message \"{upper}\" is already defined at line {}",
                at.line
            )));
            let _ = m;
            continue;
        }
        if let Some((m, at)) = out.iter().find(|(m, _)| m.id == id) {
            p.push(e.location.error(format!(
                "message \"{upper}\": id {id} is already used by message \"{}\" at line {}",
                names::upper(&m.name),
                at.line
            )));
            continue;
        }
        let role = match e.attr("role").map(str::trim) {
            None => None,
            Some("client") => Some(Role::Client),
            Some("server") => Some(Role::Server),
            Some(other) => {
                p.push(e.location.error(format!(
                    "message \"{upper}\": role must be \"client\" or \"server\", found \"{other}\""
                )));
                None
            }
        };
        let mut fields: Vec<(Field, Location)> = header.to_vec();
        for f in e.elements().filter(|f| f.name == "field") {
            fields.extend(ctx.field(f, Origin::Message, p));
        }
        for (i, (field, at)) in fields.iter().enumerate() {
            if fields[..i]
                .iter()
                .any(|(other, _)| other.name == field.name)
            {
                p.push(at.error(format!(
                    "message \"{upper}\": field \"{}\" appears twice",
                    field.name
                )));
            }
            // Optional fields end the body: a decoder knows one is absent
            // only because the body frame ends there.
            if !field.optional
                && field.kind.in_body()
                && fields[..i].iter().any(|(f, _)| f.optional)
            {
                p.push(at.error(format!(
                    "message \"{upper}\": field \"{}\" follows an optional field; optional fields must be the last of the body",
                    field.name
                )));
            }
            if field.kind == FieldKind::Msg && i + 1 != fields.len() {
                p.push(at.error(format!(
                    "message \"{upper}\": field \"{}\" of type msg must be the last field",
                    field.name
                )));
            }
            if field.constant.is_some() {
                continue;
            }
            match field_types.get(&field.name) {
                Some(((kind, optional), first))
                    if (*kind, *optional) != (field.kind, field.optional) =>
                {
                    let said = |kind: &FieldKind, optional: bool| {
                        if optional {
                            format!("optional {kind}")
                        } else {
                            kind.to_string()
                        }
                    };
                    p.push(at.error(format!(
                        "field \"{}\" must have the same type everywhere: {} in message \"{upper}\", {} in message \"{first}\"",
                        field.name, said(&field.kind, field.optional), said(kind, *optional)
                    )))
                }
                Some(_) => {}
                None => {
                    field_types.insert(
                        field.name.clone(),
                        ((field.kind, field.optional), upper.clone()),
                    );
                }
            }
        }
        out.push((
            Message {
                name,
                id,
                role,
                description: e.text(),
                fields: fields.into_iter().map(|(f, _)| f).collect(),
            },
            e.location.clone(),
        ));
    }
    out.into_iter().map(|(m, _)| m).collect()
}

/// Names that must stay distinct once spelt in Rust.
fn check_rust_names(
    class: &str,
    root: &Element,
    messages: &[Message],
    defines: &Defines,
    p: &mut Problems,
) {
    let enum_name = names::camel(class);
    let mut types: HashMap<String, &str> = HashMap::new();
    for m in messages {
        let camel = names::camel(&m.name);
        if camel == enum_name {
            p.push(root.location.error(format!(
                "message \"{}\" would be spelt {camel} in Rust, like the protocol's message enum; rename one",
                names::upper(&m.name)
            )));
        }
        if let Some(other) = types.insert(camel.clone(), &m.name) {
            p.push(root.location.error(format!(
                "messages \"{}\" and \"{}\" would both be spelt {camel} in Rust; rename one",
                names::upper(other),
                names::upper(&m.name)
            )));
        }
    }
    let mut consts: HashMap<String, String> = HashMap::new();
    consts.insert("SIGNATURE".into(), "the signature constant".into());
    consts.insert("CLASS".into(), "the class name constant".into());
    for m in messages {
        for f in &m.fields {
            if let FieldKind::Octets(_) = f.kind {
                consts.insert(
                    format!("{}_SIZE", names::screaming(&f.name)),
                    format!("the size of field \"{}\"", f.name),
                );
            }
        }
    }
    for (d, at) in defines {
        let name = names::screaming(&d.name);
        if let Some(what) = consts.get(&name) {
            p.push(at.error(format!(
                "define \"{}\" would be spelt {name} in Rust, like {what}; rename it",
                d.name
            )));
        }
    }
}
