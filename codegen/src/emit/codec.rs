//! Emit stage for codecs: [`CodecModel`] to Rust source.
//!
//! One struct per message, one enum over them implementing
//! `zproto_runtime::Codec`, constants from `<define>`, and optionally
//! round-trip tests from the model's `<test>` values. All byte-level work is
//! delegated to the runtime crate, so the generated code only lists fields.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote, ToTokens};

use crate::emit::{banner, codec_view, docs, finish, EmitOptions};
use crate::error::Error;
use crate::model::codec::*;
use crate::names;

/// Rust source for one codec model.
pub fn emit(model: &CodecModel, options: &EmitOptions) -> Result<String, Error> {
    let rt = &options.runtime;
    let class = &model.class;
    let enum_ident = ident(&names::camel(class));
    let signature = Literal::u8_unsuffixed(model.signature);

    let mut class_doc = format!("`{class}`");
    if let Some(title) = &model.title {
        class_doc.push_str(&format!(": {title}"));
    }
    if !model.description.is_empty() {
        class_doc.push_str("\n\n");
        class_doc.push_str(&model.description);
    }
    class_doc.push_str(
        "\n\nOne variant per message; encode and decode through `zproto_runtime::Codec`.",
    );
    let class_doc = docs(&class_doc);

    let defines = model.defines.iter().map(|d| {
        let name = ident(&names::screaming(&d.name));
        let doc = docs(if d.description.is_empty() {
            "A constant from the model's `<define>`."
        } else {
            &d.description
        });
        match &d.value {
            DefineValue::Integer(n) => {
                let n = Literal::u64_unsuffixed(*n);
                quote! { #doc pub const #name: u64 = #n; }
            }
            DefineValue::Text(t) => quote! { #doc pub const #name: &str = #t; },
        }
    });
    let mut octet_sizes = Vec::new();
    for m in &model.messages {
        for f in &m.fields {
            if let FieldKind::Octets(n) = f.kind {
                let name = ident(&format!("{}_SIZE", names::screaming(&f.name)));
                if !octet_sizes
                    .iter()
                    .any(|(existing, _): &(Ident, usize)| *existing == name)
                {
                    octet_sizes.push((name, n));
                }
            }
        }
    }
    let octet_consts = octet_sizes.iter().map(|(name, n)| {
        let doc = format!(" Size in bytes of `octets` fields named like this constant ({n}).");
        let n = Literal::usize_unsuffixed(*n);
        quote! { #[doc = #doc] pub const #name: usize = #n; }
    });

    let variants = model.messages.iter().map(|m| {
        let v = ident(&names::camel(&m.name));
        let doc = docs(&first_paragraph(&m.description, &m.name));
        quote! { #doc #v(#v) }
    });
    let structs = model
        .messages
        .iter()
        .map(|m| message_struct(model, m, &enum_ident, rt, &options.attributes));
    let views = model
        .messages
        .iter()
        .map(|m| codec_view::message_view(model, m, rt));
    let view_enum = codec_view::view_enum(model, rt);
    let arms = |body: &dyn Fn(&Ident) -> TokenStream| -> Vec<TokenStream> {
        model
            .messages
            .iter()
            .map(|m| {
                let v = ident(&names::camel(&m.name));
                body(&v)
            })
            .collect()
    };
    let id_arms = arms(&|v| quote! { Self::#v(_) => #v::ID });
    let command_arms = arms(&|v| quote! { Self::#v(_) => #v::NAME });
    let encode_arms = if model.pubsub {
        arms(&|v| quote! { Self::#v(m) => m.encode_frames("", frames) })
    } else {
        arms(&|v| quote! { Self::#v(m) => m.encode_frames(frames) })
    };
    let topic_arms = arms(&|v| quote! { Self::#v(m) => m.encode_frames(topic, &mut frames) });
    let len_arms = arms(&|v| quote! { Self::#v(m) => m.encoded_len() });
    let zpl_name = |m: &Message| {
        format!("{}_{}", names::upper(&model.class), names::upper(&m.name)).replace(' ', "_")
    };
    let zpl_arms: Vec<TokenStream> = model
        .messages
        .iter()
        .map(|m| {
            let v = ident(&names::camel(&m.name));
            let name = zpl_name(m);
            quote! { Self::#v(m) => { m.zpl_content(&mut w); ::std::string::String::from(#name) } }
        })
        .collect();
    let zpl_from_arms: Vec<TokenStream> = model
        .messages
        .iter()
        .map(|m| {
            let v = ident(&names::camel(&m.name));
            let name = zpl_name(m);
            quote! { #name => Self::#v(#v::from_zpl_content(&r)?) }
        })
        .collect();
    let open = if model.pubsub {
        quote!(#rt::codec::open_pubsub(frames, CLASS)?.0)
    } else {
        quote!(#rt::codec::open(frames, CLASS, SIGNATURE)?)
    };
    let pubsub_api = if model.pubsub {
        quote! {
            impl #enum_ident {
                /// Encode for a PUB socket under `topic` (pubsub model): the body
                /// frame is the id, the topic, a NUL, then the fields.
                pub fn encode_with_topic(&self, topic: &str) -> ::std::result::Result<::std::vec::Vec<#rt::Frame>, #rt::EncodeError> {
                    let mut frames = ::std::vec::Vec::with_capacity(1);
                    match self { #(#topic_arms,)* }?;
                    ::std::result::Result::Ok(frames)
                }

                /// Decode a message from a SUB socket, with its topic.
                pub fn decode_with_topic<F: ::std::convert::AsRef<[u8]>>(frames: &[F]) -> ::std::result::Result<(::std::string::String, Self), #rt::DecodeError> {
                    let (opened, topic) = #rt::codec::open_pubsub(frames, CLASS)?;
                    let topic = topic.to_owned();
                    Self::from_opened(opened).map(|m| (topic, m))
                }

                /// The subscription prefix for messages `id` (a message's `ID`)
                /// on `topic` and every topic that starts with it.
                pub fn subscription(id: u8, topic: &str) -> ::std::vec::Vec<u8> {
                    #rt::codec::subscription(id, topic.as_bytes())
                }

                /// A subscription as an XPUB socket receives it.
                pub fn decode_subscription(frame: &[u8]) -> ::std::result::Result<#rt::codec::Subscription, #rt::DecodeError> {
                    #rt::codec::decode_subscription(frame, CLASS)
                }
            }
        }
    } else {
        TokenStream::new()
    };
    let decode_arms = arms(&|v| {
        quote! { #v::ID => #v::decode_body(opened.reader(#v::NAME), &mut opened.frames).map(Self::#v) }
    });

    let tests = if options.tests {
        emit_tests(model, &enum_ident, rt)
    } else {
        TokenStream::new()
    };

    let enum_attrs = options.attributes.for_enum(&model.class);
    let sig_doc =
        format!(" Protocol signature: every body frame starts with `0xAAA0 | {signature}`.");
    let tokens = quote! {
        #[doc = #sig_doc]
        pub const SIGNATURE: u8 = #signature;
        /// The model's class name.
        pub const CLASS: &str = #class;
        #(#defines)*
        #(#octet_consts)*

        #class_doc
        // Variants mirror the model; boxing them would cost an allocation per message.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq)]
        #enum_attrs
        pub enum #enum_ident {
            #(#variants,)*
        }

        impl #rt::Codec for #enum_ident {
            const CLASS: &'static str = CLASS;
            const SIGNATURE: u8 = SIGNATURE;

            fn id(&self) -> u8 {
                match self { #(#id_arms,)* }
            }

            fn command(&self) -> &'static str {
                match self { #(#command_arms,)* }
            }

            fn encode_into<S: #rt::FrameSink>(&self, frames: &mut S) -> ::std::result::Result<(), #rt::EncodeError> {
                match self { #(#encode_arms,)* }
            }

            fn encoded_len(&self) -> usize {
                match self { #(#len_arms,)* }
            }

            fn decode<F: ::std::convert::AsRef<[u8]>>(frames: &[F]) -> ::std::result::Result<Self, #rt::DecodeError> {
                Self::from_opened(#open)
            }
        }

        impl #enum_ident {
            /// zproto's text form of the message (its C codec's `zpl`): a
            /// `message` value naming it, and a `content` section with its
            /// fields (numbers in decimal, bytes in lower-case hex, lists and
            /// hashes as children).
            pub fn to_zpl(&self) -> #rt::zpl::Zpl {
                self.zpl_document(::std::option::Option::None)
            }

            /// [`Self::to_zpl`], with the routing id of a ROUTER message.
            pub fn to_zpl_routed(&self, routing_id: &[u8]) -> #rt::zpl::Zpl {
                self.zpl_document(::std::option::Option::Some(routing_id))
            }

            fn zpl_document(&self, routing_id: ::std::option::Option<&[u8]>) -> #rt::zpl::Zpl {
                let mut w = #rt::zpl::message::Writer::default();
                let name = match self { #(#zpl_arms,)* };
                #rt::zpl::message::document(name, routing_id, w.0)
            }

            /// A message from its text form (the C codec's `new_zpl`), with
            /// the routing id if the text has one. Missing fields are left at
            /// their defaults; malformed ones are errors.
            #[allow(clippy::type_complexity)]
            pub fn from_zpl(zpl: &#rt::zpl::Zpl) -> ::std::result::Result<(::std::option::Option<::std::vec::Vec<u8>>, Self), #rt::zpl::message::ZplMessageError> {
                let opened = #rt::zpl::message::open(zpl)?;
                let r = #rt::zpl::message::Reader(opened.content);
                let message = match opened.name {
                    #(#zpl_from_arms,)*
                    other => return ::std::result::Result::Err(#rt::zpl::message::ZplMessageError::UnknownMessage(other.to_owned())),
                };
                ::std::result::Result::Ok((opened.routing_id, message))
            }

            fn from_opened<F: ::std::convert::AsRef<[u8]>>(mut opened: #rt::codec::Opened<'_, F>) -> ::std::result::Result<Self, #rt::DecodeError> {
                match opened.id {
                    #(#decode_arms,)*
                    id => ::std::result::Result::Err(#rt::DecodeError::UnknownMessage { class: CLASS, id }),
                }
            }
        }

        #pubsub_api

        #(#structs)*

        #view_enum

        #(#views)*

        #tests
    };
    let source = model
        .sources
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    finish(&banner(&source, model.license.as_deref()), tokens, class)
}

pub(crate) fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

fn first_paragraph(text: &str, name: &str) -> String {
    let para = text.split("\n\n").next().unwrap_or("").trim();
    if para.is_empty() {
        format!("The {} message.", names::upper(name))
    } else {
        para.to_owned()
    }
}

/// The Rust type of a `number` field of `size` bytes.
pub(crate) fn number_type(size: u8) -> TokenStream {
    match size {
        1 => quote!(u8),
        2 => quote!(u16),
        4 => quote!(u32),
        _ => quote!(u64),
    }
}

/// The Rust type of a field.
fn rust_type(f: &Field, rt: &TokenStream) -> TokenStream {
    if f.bytes {
        match f.kind {
            FieldKind::Chunk | FieldKind::Frame => return quote!(#rt::bytes::Bytes),
            FieldKind::Msg => return quote!(::std::vec::Vec<#rt::bytes::Bytes>),
            _ => {}
        }
    }
    match f.kind {
        FieldKind::Number(size) if f.optional => {
            let ty = number_type(size);
            quote!(::std::option::Option<#ty>)
        }
        FieldKind::Number(size) => number_type(size),
        FieldKind::Octets(n) => {
            let n = Literal::usize_unsuffixed(n);
            quote!([u8; #n])
        }
        FieldKind::String | FieldKind::Longstr => quote!(::std::string::String),
        FieldKind::Strings => quote!(::std::vec::Vec<::std::string::String>),
        FieldKind::Hash => {
            quote!(::std::collections::BTreeMap<::std::string::String, ::std::string::String>)
        }
        FieldKind::Chunk | FieldKind::Frame => quote!(::std::vec::Vec<u8>),
        FieldKind::Uuid => quote!([u8; 16]),
        FieldKind::Msg => quote!(::std::vec::Vec<::std::vec::Vec<u8>>),
    }
}

fn field_doc(f: &Field) -> String {
    let mut doc = if f.description.is_empty() {
        format!("Field `{}`.", f.name)
    } else {
        f.description.clone()
    };
    let wire = match f.kind {
        FieldKind::Number(n) => format!("{n}-byte unsigned big-endian number"),
        FieldKind::Octets(n) => format!("{n} raw bytes"),
        FieldKind::String => "string of at most 255 bytes (1-byte length)".to_owned(),
        FieldKind::Longstr => "long string (4-byte length)".to_owned(),
        FieldKind::Strings => "list of long strings (4-byte count)".to_owned(),
        FieldKind::Hash => {
            "string-to-long-string map (4-byte count); encoded in key order".to_owned()
        }
        FieldKind::Chunk => "bytes (4-byte length)".to_owned(),
        FieldKind::Uuid => "16-byte UUID".to_owned(),
        FieldKind::Frame => "a ZeroMQ frame of its own, after the body frame".to_owned(),
        FieldKind::Msg => "all frames after the body and frame fields (possibly none)".to_owned(),
    };
    let origin = match &f.origin {
        Origin::Header => " From the protocol header.".to_owned(),
        Origin::Message => String::new(),
        Origin::Composite { field, type_name } => {
            format!(" Part `{field}` of composite type `{type_name}`.")
        }
    };
    doc.push_str(&format!("\n\nWire: {wire}.{origin}"));
    if f.optional {
        doc.push_str(
            " Optional: `None` when the body frame ends before it (a peer built \
             from a model without it); encoded only while every optional field \
             before it is `Some`.",
        );
    }
    doc
}

fn message_struct(
    model: &CodecModel,
    m: &Message,
    enum_ident: &Ident,
    rt: &TokenStream,
    attributes: &crate::emit::Attributes,
) -> TokenStream {
    let struct_attrs = attributes.for_message(&model.class, &m.name);
    let name = ident(&names::camel(&m.name));
    let upper = names::upper(&m.name);
    let id = Literal::u8_unsuffixed(m.id);
    let slots: Vec<&Field> = m.fields.iter().filter(|f| f.constant.is_none()).collect();
    let body_fields: Vec<&Field> = m.fields.iter().filter(|f| f.kind.in_body()).collect();
    let frame_fields: Vec<&Field> = m.fields.iter().filter(|f| !f.kind.in_body()).collect();

    let mut doc = if m.description.is_empty() {
        format!("The {upper} message.")
    } else {
        m.description.clone()
    };
    doc.push_str(&format!("\n\nMessage id {id} on the wire."));
    let constants: Vec<String> = m
        .fields
        .iter()
        .filter_map(|f| match &f.constant {
            Some(Constant::Number(n)) => Some(format!("`{}` = {n}", f.name)),
            Some(Constant::String(s)) => Some(format!("`{}` = {s:?}", f.name)),
            None => None,
        })
        .collect();
    if !constants.is_empty() {
        doc.push_str(&format!(
            " Constant fields, written on encode and checked on decode: {}.",
            constants.join(", ")
        ));
    }
    let doc = docs(&doc);

    let field_decls = slots.iter().map(|f| {
        let fname = ident(&names::rust_ident(&f.name));
        let ty = rust_type(f, rt);
        let doc = docs(&field_doc(f));
        let attrs = attributes.for_field(&model.class, &m.name, &f.name);
        quote! { #doc #attrs pub #fname: #ty }
    });
    let body = if slots.is_empty() {
        quote!(;)
    } else {
        quote!({ #(#field_decls,)* })
    };
    // Arrays over 32 bytes have no Default; write that impl out instead.
    let needs_manual_default = slots
        .iter()
        .any(|f| matches!(f.kind, FieldKind::Octets(n) if n > 32));
    let derives = if needs_manual_default {
        quote!(#[derive(Debug, Clone, PartialEq, Eq)])
    } else {
        quote!(#[derive(Debug, Clone, PartialEq, Eq, Default)])
    };
    let manual_default = if needs_manual_default {
        let inits = slots.iter().map(|f| {
            let fname = ident(&names::rust_ident(&f.name));
            match f.kind {
                FieldKind::Octets(n) => {
                    let n = Literal::usize_unsuffixed(n);
                    quote!(#fname: [0; #n])
                }
                _ => quote!(#fname: ::std::default::Default::default()),
            }
        });
        quote! {
            impl ::std::default::Default for #name {
                fn default() -> Self { Self { #(#inits,)* } }
            }
        }
    } else {
        TokenStream::new()
    };

    // body_len: fixed part folded into one literal. The head is the
    // signature and id, or (pubsub) the id and the empty topic's NUL.
    let mut fixed = if model.pubsub { 2usize } else { 3usize };
    let mut variable = Vec::new();
    for f in &body_fields {
        let fname = ident(&names::rust_ident(&f.name));
        match (&f.constant, f.kind) {
            (_, FieldKind::Number(n)) if f.optional => {
                let n = Literal::usize_unsuffixed(n as usize);
                variable.push(quote!(if self.#fname.is_some() { #n } else { 0 }));
            }
            (_, FieldKind::Number(n)) => fixed += n as usize,
            (_, FieldKind::Octets(n)) => fixed += n,
            (_, FieldKind::Uuid) => fixed += 16,
            (Some(Constant::String(s)), _) => fixed += 1 + s.len(),
            (_, FieldKind::String) => variable.push(quote!(#rt::wire::size::string(&self.#fname))),
            (_, FieldKind::Longstr) => {
                variable.push(quote!(#rt::wire::size::longstr(self.#fname.as_bytes())))
            }
            (_, FieldKind::Chunk) => variable.push(quote!(#rt::wire::size::longstr(&self.#fname))),
            (_, FieldKind::Strings) => {
                variable.push(quote!(#rt::wire::size::strings(&self.#fname)))
            }
            (_, FieldKind::Hash) => variable.push(quote!(#rt::wire::size::hash(&self.#fname))),
            (_, FieldKind::Frame | FieldKind::Msg) => {}
        }
    }
    let fixed = Literal::usize_unsuffixed(fixed);
    let body_len_fn = quote! {
        /// Size of the body frame this message encodes to (under an empty
        /// topic, for a pubsub model).
        pub fn body_len(&self) -> usize {
            #fixed #(+ #variable)*
        }
    };

    let (topic_param, topic_len, head) = if model.pubsub {
        (
            quote!(topic: &str,),
            quote!(+ topic.len()),
            quote!(w.head_pubsub(Self::ID, topic)?;),
        )
    } else {
        (
            TokenStream::new(),
            TokenStream::new(),
            quote!(w.head(SIGNATURE, Self::ID);),
        )
    };
    let optional: Vec<&Field> = body_fields.iter().copied().filter(|f| f.optional).collect();
    let gap_check = if optional.len() > 1 {
        let entries = optional.iter().map(|f| {
            let fname = ident(&names::rust_ident(&f.name));
            let label = &f.name;
            quote!((#label, self.#fname.is_some()))
        });
        quote!(#rt::codec::check_optional(CLASS, Self::NAME, &[#(#entries),*])?;)
    } else {
        TokenStream::new()
    };
    let writes = body_fields.iter().map(|f| write_field(f));
    let frame_pushes = frame_fields.iter().map(|f| {
        let fname = ident(&names::rust_ident(&f.name));
        match (f.kind, f.bytes) {
            (FieldKind::Frame, _) => quote!(frames.push_frame(&self.#fname);),
            (_, _) => quote! {
                for frame in &self.#fname {
                    frames.push_frame(frame);
                }
            },
        }
    });
    let frame_lens = frame_fields.iter().map(|f| {
        let fname = ident(&names::rust_ident(&f.name));
        match f.kind {
            FieldKind::Frame => quote!(+ self.#fname.len()),
            _ => quote!(+ self.#fname.iter().map(|frame| frame.len()).sum::<usize>()),
        }
    });

    let reads = m.fields.iter().map(|f| read_field(model, f));
    let inits = slots.iter().map(|f| ident(&names::rust_ident(&f.name)));
    let reader_param = if body_fields.is_empty() {
        quote!(_r)
    } else {
        quote!(mut r)
    };
    let frames_param = if frame_fields.is_empty() {
        quote!(_frames)
    } else {
        quote!(frames)
    };
    let construct = if slots.is_empty() {
        quote!(Self)
    } else {
        quote!(Self { #(#inits,)* })
    };

    let test_inits = slots.iter().map(|f| {
        let fname = ident(&names::rust_ident(&f.name));
        let value = test_literal(f);
        quote!(#fname: #value)
    });
    let test_value_body = if slots.is_empty() {
        quote!(Self)
    } else {
        quote!(Self { #(#test_inits,)* })
    };

    // zproto's text form (`zpl`/`new_zpl`): the fields that have slots.
    let zpl_writes = slots.iter().map(|f| {
        let fname = ident(&names::rust_ident(&f.name));
        let label = &f.name;
        match f.kind {
            FieldKind::Number(8) if f.optional => quote! {
                if let ::std::option::Option::Some(value) = self.#fname {
                    w.number(#label, value);
                }
            },
            FieldKind::Number(_) if f.optional => quote! {
                if let ::std::option::Option::Some(value) = self.#fname {
                    w.number(#label, u64::from(value));
                }
            },
            FieldKind::Number(8) => quote!(w.number(#label, self.#fname);),
            FieldKind::Number(_) => quote!(w.number(#label, u64::from(self.#fname));),
            FieldKind::String | FieldKind::Longstr => quote!(w.text(#label, &self.#fname);),
            FieldKind::Octets(_) | FieldKind::Uuid | FieldKind::Chunk | FieldKind::Frame => {
                quote!(w.bytes(#label, &self.#fname);)
            }
            FieldKind::Strings => quote!(w.strings(#label, &self.#fname);),
            FieldKind::Hash => quote!(w.hash(#label, &self.#fname);),
            FieldKind::Msg if f.bytes => quote! {
                w.frames(#label, &self.#fname.iter().map(|f| f.to_vec()).collect::<::std::vec::Vec<_>>());
            },
            FieldKind::Msg => quote!(w.frames(#label, &self.#fname);),
        }
    });
    let zpl_reads: Vec<TokenStream> = slots
        .iter()
        .map(|f| {
            let fname = ident(&names::rust_ident(&f.name));
            let label = &f.name;
            let value = match f.kind {
                FieldKind::Number(_) if f.optional => quote!(r.optional_number(#label)?),
                FieldKind::Number(_) => quote!(r.number(#label)?),
                FieldKind::String | FieldKind::Longstr => quote!(r.text(#label)),
                FieldKind::Octets(_) | FieldKind::Uuid => quote!(r.array(#label)?),
                FieldKind::Chunk | FieldKind::Frame => quote!(r.bytes(#label)?),
                FieldKind::Strings => quote!(r.strings(#label)),
                FieldKind::Hash => quote!(r.hash(#label)),
                FieldKind::Msg => quote!(r.frames(#label)?),
            };
            let value = into_bytes(f, value);
            quote!(#fname: #value)
        })
        .collect();
    let (zpl_w, zpl_r, zpl_new) = if slots.is_empty() {
        (quote!(_w), quote!(_r), quote!(Self))
    } else {
        (quote!(w), quote!(r), quote!(Self { #(#zpl_reads,)* }))
    };
    let zpl_fns = quote! {
        fn zpl_content(&self, #zpl_w: &mut #rt::zpl::message::Writer) {
            #(#zpl_writes)*
        }

        fn from_zpl_content(#zpl_r: &#rt::zpl::message::Reader<'_>) -> ::std::result::Result<Self, #rt::zpl::message::ZplMessageError> {
            ::std::result::Result::Ok(#zpl_new)
        }
    };

    // zproto's engines share one message object between actions: `send X`
    // sends X with the fields that actions (or the received message) set.
    // This carries the fields of the same name from whatever message the
    // engine holds (one type per field name, checked by the analysis).
    let with_fields_of = if slots.is_empty() {
        TokenStream::new()
    } else {
        let arms = model.messages.iter().map(|other| {
            let v = ident(&names::camel(&other.name));
            if other.name == m.name {
                return quote!(#enum_ident::#v(o) => o.clone());
            }
            let shared: Vec<TokenStream> = slots
                .iter()
                .filter(|f| {
                    other.fields.iter().any(|g| {
                        g.name == f.name
                            && g.constant.is_none()
                            && (g.kind, g.optional) == (f.kind, f.optional)
                    })
                })
                .map(|f| {
                    let fname = ident(&names::rust_ident(&f.name));
                    if f.kind.is_copy() {
                        quote!(#fname: o.#fname)
                    } else {
                        quote!(#fname: o.#fname.clone())
                    }
                })
                .collect();
            if shared.is_empty() {
                quote!(#enum_ident::#v(_) => ::std::default::Default::default())
            } else if shared.len() == slots.len() {
                quote!(#enum_ident::#v(o) => Self { #(#shared,)* })
            } else {
                quote!(#enum_ident::#v(o) => Self { #(#shared,)* ..::std::default::Default::default() })
            }
        });
        quote! {
            /// This message with the fields of the same name taken from
            /// `other`, the rest at their defaults: what a generated engine's
            /// `send` sends when the actions left another message in the
            /// engine (zproto's shared message object).
            pub fn with_fields_of(other: &#enum_ident) -> Self {
                match other { #(#arms,)* }
            }
        }
    };

    quote! {
        #doc
        #derives
        #struct_attrs
        pub struct #name #body

        #manual_default

        impl #name {
            /// Message id on the wire.
            pub const ID: u8 = #id;
            /// Message name, as the protocol's command names show it.
            pub const NAME: &'static str = #upper;

            /// The message filled with the model's `<test>` values (zproto's
            /// self-test data), or zproto's defaults where the model has none.
            pub fn test_value() -> Self {
                #test_value_body
            }

            #with_fields_of

            #zpl_fns

            #body_len_fn

            /// Bytes of all the frames this message encodes to (under an
            /// empty topic, for a pubsub model).
            pub fn encoded_len(&self) -> usize {
                self.body_len() #(#frame_lens)*
            }

            fn encode_frames<S: #rt::FrameSink>(&self, #topic_param frames: &mut S) -> ::std::result::Result<(), #rt::EncodeError> {
                #gap_check
                let body = frames.next_frame(self.body_len() #topic_len);
                let mut w = #rt::wire::Writer::new(body, #rt::wire::Context { class: CLASS, message: Self::NAME });
                #head
                #(#writes)*
                #(#frame_pushes)*
                ::std::result::Result::Ok(())
            }

            fn decode_body<F: ::std::convert::AsRef<[u8]>>(
                #reader_param: #rt::wire::Reader<'_>,
                #frames_param: &mut #rt::codec::FrameCursor<'_, F>,
            ) -> ::std::result::Result<Self, #rt::DecodeError> {
                #(#reads)*
                ::std::result::Result::Ok(#construct)
            }
        }

        impl ::std::convert::From<#name> for #enum_ident {
            fn from(message: #name) -> Self {
                Self::#name(message)
            }
        }
    }
}

fn write_field(f: &Field) -> TokenStream {
    let fname = ident(&names::rust_ident(&f.name));
    let label = &f.name;
    match (&f.constant, f.kind) {
        (Some(Constant::Number(n)), FieldKind::Number(size)) => {
            let method = format_ident!("number{}", size);
            let n = Literal::u64_unsuffixed(*n);
            quote!(w.#method(#n);)
        }
        (Some(Constant::String(s)), _) => quote!(w.string(#label, #s)?;),
        (_, FieldKind::Number(size)) if f.optional => {
            let method = format_ident!("number{}", size);
            quote! {
                if let ::std::option::Option::Some(value) = self.#fname {
                    w.#method(value);
                }
            }
        }
        (_, FieldKind::Number(size)) => {
            let method = format_ident!("number{}", size);
            quote!(w.#method(self.#fname);)
        }
        (_, FieldKind::Octets(_) | FieldKind::Uuid) => quote!(w.raw(&self.#fname);),
        (_, FieldKind::String) => quote!(w.string(#label, &self.#fname)?;),
        (_, FieldKind::Longstr) => quote!(w.longstr(#label, self.#fname.as_bytes())?;),
        (_, FieldKind::Chunk) => quote!(w.longstr(#label, &self.#fname)?;),
        (_, FieldKind::Strings) => quote!(w.strings(#label, &self.#fname)?;),
        (_, FieldKind::Hash) => quote!(w.hash(#label, &self.#fname)?;),
        (_, FieldKind::Frame | FieldKind::Msg) => TokenStream::new(),
    }
}

/// How a decoder checks a constant field; `None` for other fields.
pub(crate) fn read_constant(f: &Field) -> Option<TokenStream> {
    let label = &f.name;
    match (&f.constant, f.kind) {
        (Some(Constant::Number(n)), FieldKind::Number(size)) => {
            let (size, n) = (Literal::u8_unsuffixed(size), Literal::u64_unsuffixed(*n));
            Some(quote!(r.constant_number(#label, #size, #n)?;))
        }
        (Some(Constant::String(s)), _) => Some(quote!(r.constant_string(#label, #s)?;)),
        _ => None,
    }
}

fn read_field(model: &CodecModel, f: &Field) -> TokenStream {
    if let Some(read) = read_constant(f) {
        return read;
    }
    let fname = ident(&names::rust_ident(&f.name));
    let label = &f.name;
    match (&f.constant, f.kind) {
        (_, FieldKind::Number(_)) if f.optional => {
            let value = read_optional(f);
            quote!(let #fname = #value;)
        }
        (_, FieldKind::Number(size)) => {
            let method = format_ident!("number{}", size);
            quote!(let #fname = r.#method(#label)?;)
        }
        (_, FieldKind::Octets(n)) => {
            let n = Literal::usize_unsuffixed(n);
            quote!(let #fname = r.octets::<#n>(#label)?;)
        }
        (_, FieldKind::Uuid) => quote!(let #fname = r.uuid(#label)?;),
        (_, FieldKind::String) => quote!(let #fname = r.string(#label)?;),
        (_, FieldKind::Longstr) => quote!(let #fname = r.longstr(#label)?;),
        (_, FieldKind::Chunk) => {
            let value = into_bytes(f, quote!(r.chunk(#label)?));
            quote!(let #fname = #value;)
        }
        (_, FieldKind::Strings) => quote!(let #fname = r.strings(#label)?;),
        (_, FieldKind::Hash) => quote!(let #fname = r.hash(#label)?;),
        (_, FieldKind::Frame) if model.is_virtual => {
            let value = into_bytes(f, quote!(frames.frame_or_empty()));
            quote!(let #fname = #value;)
        }
        (_, FieldKind::Frame) => {
            let value = into_bytes(f, quote!(frames.frame(Self::NAME, #label)?));
            quote!(let #fname = #value;)
        }
        (_, FieldKind::Msg) => {
            let value = into_bytes(f, quote!(frames.rest()));
            quote!(let #fname = #value;)
        }
    }
}

/// How a decoder reads an optional number: absent if the body ends here.
pub(crate) fn read_optional(f: &Field) -> TokenStream {
    let label = &f.name;
    let size = match f.kind {
        FieldKind::Number(size) => size,
        _ => 8,
    };
    let method = format_ident!("number{}", size);
    quote! {
        if r.remaining() == 0 {
            ::std::option::Option::None
        } else {
            ::std::option::Option::Some(r.#method(#label)?)
        }
    }
}

/// `value` (a `Vec<u8>`, or a `Vec<Vec<u8>>` for `msg`) as the field's
/// type: moved into `Bytes` (no copy) when the field is held as bytes.
fn into_bytes(f: &Field, value: TokenStream) -> TokenStream {
    match (f.bytes, f.kind) {
        (true, FieldKind::Chunk | FieldKind::Frame) => quote!(::std::convert::From::from(#value)),
        (true, FieldKind::Msg) => {
            quote!(#value.into_iter().map(::std::convert::From::from).collect())
        }
        _ => value,
    }
}

fn text_literal(s: &str) -> TokenStream {
    quote!(::std::string::String::from(#s))
}

fn bytes_literal(bytes: &[u8]) -> TokenStream {
    let lit = Literal::byte_string(bytes);
    quote!(#lit.to_vec())
}

fn test_literal(f: &Field) -> TokenStream {
    // The C self-test, which knows nothing of optional fields, sends none:
    // test values stay byte for byte what it sends.
    if f.optional {
        return quote!(::std::option::Option::None);
    }
    match &f.test {
        TestValue::Number(n) => Literal::u64_unsuffixed(*n).into_token_stream(),
        TestValue::Text(s) => text_literal(s),
        TestValue::Bytes(b) => match f.kind {
            FieldKind::Octets(_) => {
                let lit = Literal::byte_string(b);
                quote!(*#lit)
            }
            _ => into_bytes(f, bytes_literal(b)),
        },
        TestValue::Uuid(u) => {
            let bytes = u.iter().map(|b| Literal::u8_unsuffixed(*b));
            quote!([#(#bytes),*])
        }
        TestValue::List(items) => {
            let items = items.iter().map(|s| text_literal(s));
            quote!(::std::vec![#(#items),*])
        }
        TestValue::Hash(pairs) => {
            let pairs = pairs.iter().map(|(k, v)| {
                let (k, v) = (text_literal(k), text_literal(v));
                quote!((#k, #v))
            });
            quote!(::std::collections::BTreeMap::from([#(#pairs),*]))
        }
        TestValue::Frames(frames) => {
            let frames = frames.iter().map(|b| bytes_literal(b));
            into_bytes(f, quote!(::std::vec![#(#frames),*]))
        }
        TestValue::None => quote!(::std::default::Default::default()),
    }
}

fn emit_tests(model: &CodecModel, enum_ident: &Ident, rt: &TokenStream) -> TokenStream {
    let view_check = if codec_view::model_has_views(model) {
        let view = codec_view::view_enum_ident(model);
        quote! {
            // The borrowed view decodes to the same message.
            assert_eq!(#view::decode(&frames).map(#view::into_owned), Ok(message.clone()));
        }
    } else {
        TokenStream::new()
    };
    let tests = model.messages.iter().map(|m| {
        let name = ident(&names::camel(&m.name));
        let test_fn = format_ident!(
            "{}_round_trips",
            names::canonical(&m.name).trim_start_matches('_')
        );
        quote! {
            #[test]
            fn #test_fn() {
                let message = #enum_ident::from(#name::test_value());
                let frames = message.encode().expect("test values encode");
                assert_eq!(frames[0].len(), #name::test_value().body_len());
                assert_eq!(#enum_ident::decode(&frames), Ok(message.clone()));
                #view_check
                let routed = message.encode_routed(b"\x00peer").expect("test values encode");
                assert_eq!(
                    #enum_ident::decode_routed(&routed),
                    Ok((&b"\x00peer"[..], message.clone()))
                );
                // And through zproto's text form.
                let text = message.to_zpl_routed(b"\x00peer").to_string();
                let zpl = #rt::zpl::Zpl::parse(&text).expect("the text form parses");
                assert_eq!(
                    #enum_ident::from_zpl(&zpl),
                    Ok((Some(b"\x00peer".to_vec()), message))
                );
            }
        }
    });
    quote! {
        /// Round trips of the model's `<test>` values, as zproto's self-test does.
        #[cfg(test)]
        mod zproto_tests {
            use super::*;
            use #rt::Codec as _;

            #(#tests)*
        }
    }
}
