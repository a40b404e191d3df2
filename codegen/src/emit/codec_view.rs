//! Emit stage for borrowed views of a codec's messages.
//!
//! Beside each owned message `Announce` that holds text or bytes, a view
//! `AnnounceRef<'a>` whose strings, chunks and frames borrow from the
//! received frames (`&'a str`, `&'a [u8]`), and `strings`/`hash` fields are
//! checked wire bytes read on iteration (`zproto_runtime::view`). One enum
//! `ZgossipMsgRef<'a>` over them decodes a message without allocating
//! (a `msg` field excepted: a `Vec` of borrowed frames). A message of numbers
//! only borrows nothing and is its own view. Errors are the owned decoder's,
//! field for field: both read through the same runtime checks.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use crate::emit::codec::{ident, number_type, read_constant, read_optional};
use crate::model::codec::*;
use crate::names;

/// Whether a field (with a slot) borrows from the frames in a view.
fn borrows(f: &Field) -> bool {
    f.constant.is_none() && !matches!(f.kind, FieldKind::Number(_))
}

/// Whether message `m` has a view type of its own.
pub fn has_view(m: &Message) -> bool {
    m.fields.iter().any(borrows)
}

/// Whether message `m` has fields held as `Bytes` (`Config::bytes`),
/// which a view can hand over without a copy from frames held as `Bytes`.
pub fn shares(m: &Message) -> bool {
    m.fields.iter().any(|f| {
        f.bytes
            && f.constant.is_none()
            && matches!(f.kind, FieldKind::Chunk | FieldKind::Frame | FieldKind::Msg)
    })
}

/// Whether the model has views at all: a model of numbers only has none.
pub fn model_has_views(model: &CodecModel) -> bool {
    model.messages.iter().any(has_view)
}

/// The view enum's name: `ZgossipMsgRef`.
pub fn view_enum_ident(model: &CodecModel) -> Ident {
    ident(&format!("{}Ref", names::camel(&model.class)))
}

fn view_ident(m: &Message) -> Ident {
    ident(&format!("{}Ref", names::camel(&m.name)))
}

/// The type of a field in a view.
fn view_type(f: &Field, rt: &TokenStream) -> TokenStream {
    match f.kind {
        FieldKind::Number(size) if f.optional => {
            let ty = number_type(size);
            quote!(::std::option::Option<#ty>)
        }
        FieldKind::Number(size) => number_type(size),
        FieldKind::Octets(n) => {
            let n = Literal::usize_unsuffixed(n);
            quote!(&'a [u8; #n])
        }
        FieldKind::Uuid => quote!(&'a [u8; 16]),
        FieldKind::String | FieldKind::Longstr => quote!(&'a str),
        FieldKind::Chunk | FieldKind::Frame => quote!(&'a [u8]),
        FieldKind::Strings => quote!(#rt::view::StringsRef<'a>),
        FieldKind::Hash => quote!(#rt::view::HashRef<'a>),
        FieldKind::Msg => quote!(::std::vec::Vec<&'a [u8]>),
    }
}

/// How a view reads a field: the owned decoder's checks, nothing copied.
fn view_read(model: &CodecModel, m: &Ident, f: &Field) -> TokenStream {
    if let Some(read) = read_constant(f) {
        return read;
    }
    let fname = ident(&names::rust_ident(&f.name));
    let label = &f.name;
    let value = match f.kind {
        FieldKind::Number(_) if f.optional => read_optional(f),
        FieldKind::Number(size) => {
            let method = format_ident!("number{}", size);
            quote!(r.#method(#label)?)
        }
        FieldKind::Octets(n) => {
            let n = Literal::usize_unsuffixed(n);
            quote!(r.octets_ref::<#n>(#label)?)
        }
        FieldKind::Uuid => quote!(r.octets_ref::<16>(#label)?),
        FieldKind::String => quote!(r.string_ref(#label)?),
        FieldKind::Longstr => quote!(r.longstr_ref(#label)?),
        FieldKind::Chunk => quote!(r.chunk_ref(#label)?),
        FieldKind::Strings => quote!(r.strings_ref(#label)?),
        FieldKind::Hash => quote!(r.hash_ref(#label)?),
        FieldKind::Frame if model.is_virtual => quote!(frames.frame_or_empty_ref()),
        FieldKind::Frame => quote!(frames.frame_ref(#m::NAME, #label)?),
        FieldKind::Msg => quote!(frames.rest_ref()),
    };
    quote!(let #fname = #value;)
}

/// A view's field as the owned message holds it.
fn to_owned_field(f: &Field, rt: &TokenStream, shared: bool) -> TokenStream {
    let fname = ident(&names::rust_ident(&f.name));
    let value = match (f.kind, f.bytes) {
        (FieldKind::Chunk | FieldKind::Frame, true) if shared => {
            quote!(#rt::codec::share(frames, self.#fname))
        }
        (FieldKind::Msg, true) if shared => {
            quote!(self.#fname.iter().map(|f| #rt::codec::share(frames, f)).collect())
        }
        (FieldKind::Number(_), _) => quote!(self.#fname),
        (FieldKind::Octets(_) | FieldKind::Uuid, _) => quote!(*self.#fname),
        (FieldKind::String | FieldKind::Longstr, _) => {
            quote!(::std::string::String::from(self.#fname))
        }
        (FieldKind::Chunk | FieldKind::Frame, false) => quote!(self.#fname.to_vec()),
        (FieldKind::Chunk | FieldKind::Frame, true) => {
            quote!(#rt::bytes::Bytes::copy_from_slice(self.#fname))
        }
        (FieldKind::Strings, _) => quote!(self.#fname.to_vec()),
        (FieldKind::Hash, _) => quote!(self.#fname.to_map()),
        (FieldKind::Msg, false) => quote!(self.#fname.iter().map(|f| f.to_vec()).collect()),
        (FieldKind::Msg, true) => quote! {
            self.#fname.iter().map(|f| #rt::bytes::Bytes::copy_from_slice(f)).collect()
        },
    };
    quote!(#fname: #value)
}

/// The view struct of message `m` (none for a message of numbers only).
pub fn message_view(model: &CodecModel, m: &Message, rt: &TokenStream) -> TokenStream {
    if !has_view(m) {
        return TokenStream::new();
    }
    let owned = ident(&names::camel(&m.name));
    let name = view_ident(m);
    let slots: Vec<&Field> = m.fields.iter().filter(|f| f.constant.is_none()).collect();
    let has_body = m.fields.iter().any(|f| f.kind.in_body());
    let has_frames = m.fields.iter().any(|f| !f.kind.in_body());
    let copy = if m.fields.iter().any(|f| f.kind == FieldKind::Msg) {
        TokenStream::new()
    } else {
        quote!(Copy,)
    };
    let doc = format!(
        " The {} message, borrowed: text and bytes point into the frames it was \
         decoded from. [`Self::into_owned`] copies it into an owned [`{owned}`].",
        names::upper(&m.name)
    );
    let decls = slots.iter().map(|f| {
        let fname = ident(&names::rust_ident(&f.name));
        let ty = view_type(f, rt);
        let doc = format!(" Field `{}`: see [`{owned}::{fname}`].", f.name);
        quote! { #[doc = #doc] pub #fname: #ty }
    });
    let reads = m.fields.iter().map(|f| view_read(model, &owned, f));
    let inits = slots.iter().map(|f| ident(&names::rust_ident(&f.name)));
    let owned_fields = slots.iter().map(|f| to_owned_field(f, rt, false));
    let into_shared = if shares(m) {
        let fields = slots.iter().map(|f| to_owned_field(f, rt, true));
        quote! {
            /// The owned message, its `Bytes` fields sharing the buffers of
            /// `frames` (the frames this view was decoded from) instead of
            /// copying; text is copied.
            pub fn into_shared(self, frames: &[#rt::bytes::Bytes]) -> #owned {
                #owned { #(#fields,)* }
            }
        }
    } else {
        TokenStream::new()
    };
    let reader = if has_body { quote!(mut r) } else { quote!(_r) };
    let frames = if has_frames {
        quote!(frames)
    } else {
        quote!(_frames)
    };
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, #copy PartialEq, Eq)]
        pub struct #name<'a> {
            #(#decls,)*
        }

        impl<'a> #name<'a> {
            fn decode_body<F: ::std::convert::AsRef<[u8]>>(
                #reader: #rt::wire::Reader<'a>,
                #frames: &mut #rt::codec::FrameCursor<'a, F>,
            ) -> ::std::result::Result<Self, #rt::DecodeError> {
                #(#reads)*
                ::std::result::Result::Ok(Self { #(#inits,)* })
            }

            /// The owned message, text and bytes copied out of the frames.
            pub fn into_owned(self) -> #owned {
                #owned { #(#owned_fields,)* }
            }

            #into_shared
        }

        impl ::std::convert::From<#name<'_>> for #owned {
            fn from(view: #name<'_>) -> Self {
                view.into_owned()
            }
        }
    }
}

/// The view enum over every message, with its decoders.
pub fn view_enum(model: &CodecModel, rt: &TokenStream) -> TokenStream {
    if !model_has_views(model) {
        return TokenStream::new();
    }
    let owned_enum = ident(&names::camel(&model.class));
    let name = view_enum_ident(model);
    let variant = |m: &Message| ident(&names::camel(&m.name));
    let variants = model.messages.iter().map(|m| {
        let v = variant(m);
        let doc = format!(" A borrowed {} message.", names::upper(&m.name));
        if has_view(m) {
            let view = view_ident(m);
            quote! { #[doc = #doc] #v(#view<'a>) }
        } else {
            quote! { #[doc = #doc] #v(#v) }
        }
    });
    let decode_arms = model.messages.iter().map(|m| {
        let v = variant(m);
        let decoder = if has_view(m) {
            let view = view_ident(m);
            quote!(#view)
        } else {
            quote!(#v)
        };
        quote! { #v::ID => #decoder::decode_body(opened.reader(#v::NAME), &mut opened.frames).map(Self::#v) }
    });
    let id_arms = model.messages.iter().map(|m| {
        let v = variant(m);
        quote!(Self::#v(_) => #v::ID)
    });
    let command_arms = model.messages.iter().map(|m| {
        let v = variant(m);
        quote!(Self::#v(_) => #v::NAME)
    });
    let owned_arms = model.messages.iter().map(|m| {
        let v = variant(m);
        if has_view(m) {
            quote!(Self::#v(m) => #owned_enum::#v(m.into_owned()))
        } else {
            quote!(Self::#v(m) => #owned_enum::#v(m))
        }
    });
    let shared = if model.messages.iter().any(shares) {
        let arms = model.messages.iter().map(|m| {
            let v = variant(m);
            if shares(m) {
                quote!(Self::#v(m) => #owned_enum::#v(m.into_shared(frames)))
            } else if has_view(m) {
                quote!(Self::#v(m) => #owned_enum::#v(m.into_owned()))
            } else {
                quote!(Self::#v(m) => #owned_enum::#v(m))
            }
        });
        quote! {
            impl #name<'_> {
                /// The owned message, its `Bytes` fields sharing the buffers
                /// of `frames` (the frames this view was decoded from).
                pub fn into_shared(self, frames: &[#rt::bytes::Bytes]) -> #owned_enum {
                    match self { #(#arms,)* }
                }
            }

            impl #owned_enum {
                /// Decode from frames already held as `Bytes` (a received
                /// `zmq::Message` through `Bytes::from_owner`, say): the
                /// `Bytes` fields share the frames' buffers, no copy.
                pub fn decode_shared(frames: &[#rt::bytes::Bytes]) -> ::std::result::Result<Self, #rt::DecodeError> {
                    #name::decode(frames).map(|view| view.into_shared(frames))
                }
            }
        }
    } else {
        TokenStream::new()
    };
    let open = if model.pubsub {
        quote!(#rt::codec::open_pubsub(frames, CLASS)?.0)
    } else {
        quote!(#rt::codec::open(frames, CLASS, SIGNATURE)?)
    };
    let pubsub = if model.pubsub {
        quote! {
            /// Decode a message from a SUB socket, with its topic, borrowed.
            pub fn decode_with_topic<F: ::std::convert::AsRef<[u8]>>(frames: &'a [F]) -> ::std::result::Result<(&'a str, Self), #rt::DecodeError> {
                let (opened, topic) = #rt::codec::open_pubsub(frames, CLASS)?;
                Self::from_opened(opened).map(|m| (topic, m))
            }
        }
    } else {
        TokenStream::new()
    };
    let doc = format!(
        " A message borrowed from its frames, for handlers that only look at \
         it: decoding copies nothing. [`Self::into_owned`] copies it into an \
         owned [`{owned_enum}`]."
    );
    quote! {
        #[doc = #doc]
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum #name<'a> {
            #(#variants,)*
        }

        impl<'a> #name<'a> {
            /// Decode one message from its frames (body first, no routing
            /// id), borrowing from them; the owned decoder's checks and
            /// errors.
            pub fn decode<F: ::std::convert::AsRef<[u8]>>(frames: &'a [F]) -> ::std::result::Result<Self, #rt::DecodeError> {
                Self::from_opened(#open)
            }

            /// Decode a message received on a ROUTER socket: the routing id
            /// and the message, both borrowed.
            pub fn decode_routed<F: ::std::convert::AsRef<[u8]>>(frames: &'a [F]) -> ::std::result::Result<(&'a [u8], Self), #rt::DecodeError> {
                match frames {
                    [routing_id, rest @ ..] if !rest.is_empty() => {
                        ::std::result::Result::Ok((routing_id.as_ref(), Self::decode(rest)?))
                    }
                    _ => ::std::result::Result::Err(#rt::DecodeError::NoRoutingId { class: CLASS }),
                }
            }

            #pubsub

            /// The message id on the wire.
            pub fn id(&self) -> u8 {
                match self { #(#id_arms,)* }
            }

            /// The message name, upper case, e.g. `ANNOUNCE`.
            pub fn command(&self) -> &'static str {
                match self { #(#command_arms,)* }
            }

            /// The owned message, text and bytes copied out of the frames.
            pub fn into_owned(self) -> #owned_enum {
                match self { #(#owned_arms,)* }
            }

            fn from_opened<F: ::std::convert::AsRef<[u8]>>(mut opened: #rt::codec::Opened<'a, F>) -> ::std::result::Result<Self, #rt::DecodeError> {
                match opened.id {
                    #(#decode_arms,)*
                    id => ::std::result::Result::Err(#rt::DecodeError::UnknownMessage { class: CLASS, id }),
                }
            }
        }

        impl ::std::convert::From<#name<'_>> for #owned_enum {
            fn from(view: #name<'_>) -> Self {
                view.into_owned()
            }
        }

        #shared
    }
}
