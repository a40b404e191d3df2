//! Emit stage for client models: a [`ClientModel`] to a Rust client: the
//! state machine (`State`, `Event`, `execute`, as for servers), an
//! `Actions` trait with one method per custom action, the method
//! arguments (`Args`), the replies (`Reply`, `Properties`), and a `Client`
//! with one typed, blocking method per `<method>` and `<send>` message,
//! running on the runtime's reactor; with `Config::async_clients`, its
//! async twin `AsyncClient` too.

use proc_macro2::TokenStream;
use quote::quote;

use super::server::{
    event_name_arms, event_variants, external_events, ident, names_every_message, state_enum,
    unhandled_fallback, Ctx,
};
use crate::emit::{banner, docs, finish, EmitOptions};
use crate::error::Error;
use crate::model::client::*;
use crate::model::codec::CodecModel;
use crate::names;

/// How long dropping a client waits for its `destructor` method's reply.
const DESTRUCTOR_WAIT_MS: u64 = 1000;

/// Rust source of the client of `model`, whose messages are the generated
/// codec at `codec_path` (e.g. `super::mlm_proto`).
pub fn emit(
    model: &ClientModel,
    codec: &CodecModel,
    codec_path: &TokenStream,
    async_client: bool,
    options: &EmitOptions,
) -> Result<String, Error> {
    let rt = &options.runtime;
    let msg_enum = ident(&names::camel(&codec.class));
    let msg = quote!(#codec_path::#msg_enum);

    let state_enum = state_enum(&model.states, "States of the client.");
    let methods: Vec<&str> = model.methods.iter().map(|m| m.name.as_str()).collect();
    let event_variants = event_variants(&model.events, &methods);
    let event_names = event_name_arms(&model.events);
    let externals = external_events(&model.events);
    let message_arms = externals
        .iter()
        .map(|v| quote!(#msg::#v(_) => ::std::option::Option::Some(Self::#v)));
    let all_named = names_every_message(&model.messages, &model.events);
    let message_fallback = if all_named {
        TokenStream::new()
    } else {
        quote!(_ => ::std::option::Option::None,)
    };
    let event_const = |name: &str| {
        if model.events.iter().any(|e| e.name == name) {
            let v = ident(&names::camel(name));
            quote!(::std::option::Option::Some(Event::#v))
        } else {
            quote!(::std::option::Option::None)
        }
    };
    let (expired, heartbeat, malformed) = (
        event_const("expired"),
        event_const("heartbeat"),
        event_const("malformed"),
    );

    // Method arguments: one slot per name.
    let mut slots: Vec<&ApiField> = Vec::new();
    for f in model.methods.iter().flat_map(|m| &m.fields) {
        if !slots.iter().any(|s| s.name == f.name) {
            slots.push(f);
        }
    }
    let arg_fields = slots.iter().map(|f| {
        let name = ident(&names::snake(&f.name));
        let ty = owned_type(f.kind);
        let users: Vec<String> = model
            .methods
            .iter()
            .filter(|m| m.fields.iter().any(|x| x.name == f.name))
            .map(|m| format!("`{}`", names::snake(&m.name)))
            .collect();
        let mut doc = format!("Argument of {}.", users.join(", "));
        if !f.doc.is_empty() {
            doc = format!("{}\n\n{doc}", f.doc);
        }
        let doc = docs(&doc);
        quote!(#doc pub #name: #ty)
    });

    // Replies and properties.
    let reply_structs = model.replies.iter().map(|r| {
        let s = ident(&names::camel(&r.name));
        let fields = r.fields.iter().map(|f| {
            let name = ident(&names::snake(&f.name));
            let ty = owned_type(f.kind);
            let doc = docs(if f.doc.is_empty() {
                "A field of the reply."
            } else {
                &f.doc
            });
            quote!(#doc pub #name: #ty)
        });
        let mut doc = format!("The {} reply.", names::upper(&r.name));
        if !r.doc.is_empty() {
            doc = format!("{doc}\n\n{}", r.doc);
        }
        let doc = docs(&doc);
        quote! {
            #doc
            #[derive(Debug, Clone, Default, PartialEq)]
            pub struct #s { #(#fields,)* }
        }
    });
    let reply_variants = model.replies.iter().map(|r| {
        let v = ident(&names::camel(&r.name));
        let doc = docs(&format!("{}.", names::upper(&r.name)));
        quote!(#doc #v(replies::#v))
    });
    let reply_names = model.replies.iter().map(|r| {
        let v = ident(&names::camel(&r.name));
        let n = names::upper(&r.name);
        quote!(Self::#v(_) => #n)
    });
    let reply_name_body = if model.replies.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#reply_names,)* })
    };
    let mut properties: Vec<&ApiField> = Vec::new();
    for f in model.replies.iter().flat_map(|r| &r.fields) {
        if !properties.iter().any(|p| p.name == f.name) {
            properties.push(f);
        }
    }
    let property_fields = properties.iter().map(|f| {
        let name = ident(&names::snake(&f.name));
        let ty = owned_type(f.kind);
        let doc = docs(&format!(
            "`{}` of the last reply that carried it.",
            names::snake(&f.name)
        ));
        quote!(#doc pub #name: #ty)
    });
    let update_arms = model.replies.iter().map(|r| {
        let v = ident(&names::camel(&r.name));
        let sets = r.fields.iter().map(|f| {
            let name = ident(&names::snake(&f.name));
            quote!(self.#name.clone_from(&reply.#name);)
        });
        let binding = if r.fields.is_empty() {
            quote!(_)
        } else {
            quote!(reply)
        };
        quote!(Reply::#v(#binding) => { #(#sets)* })
    });
    let update_body = if model.replies.is_empty() {
        quote!(match *reply {})
    } else {
        quote!(match reply { #(#update_arms)* })
    };
    let property_getters = properties.iter().map(|f| {
        let name = ident(&names::snake(&f.name));
        let doc = docs(&format!(
            "Property `{}`: from the last reply that carried it.",
            names::snake(&f.name)
        ));
        let (ty, expr) = getter(f.kind, quote!(self.properties.#name));
        quote! {
            #doc
            pub fn #name(&self) -> #ty { #expr }
        }
    });

    // The machine.
    let typed = super::server::typed_actions(&model.actions, |a| model.message_of(a));
    let action_methods =
        super::server::action_methods(&model.actions, &model.states, &typed, codec_path, true);
    let ctx = Ctx {
        states: &model.states,
        codec,
        msg: &msg,
        codec_path,
        rt,
        client: true,
        typed,
    };
    let arms = model.states.iter().flat_map(|s| ctx.state_arms(s));
    let fallback = unhandled_fallback(&model.states, rt);
    let actions_param = if model.actions.is_empty() {
        quote!(_actions)
    } else {
        quote!(actions)
    };

    // The API.
    let methods = model
        .methods
        .iter()
        .map(|m| method(model, m, rt, Flavor::Blocking));
    let sends = model.sends.iter().map(|s| {
        let method = ident(&names::snake(&s.method));
        let v = ident(&names::camel(&s.message));
        let doc = docs(&format!(
            "Send a {} message to the server as it is (`<send>`): it does not run the machine.",
            names::upper(&s.message)
        ));
        quote! {
            #doc
            pub fn #method(&self, message: #codec_path::#v) -> ::std::result::Result<(), #rt::client_host::ClientError> {
                self.handle.send(#msg::#v(message))
            }
        }
    });
    let recv = model.recv.as_ref().map(|r| {
        let list: Vec<String> = r.messages.iter().map(|m| names::upper(m)).collect();
        let doc = docs(&format!(
            "The next message the actions passed to the application ({}), waiting up to `wait`.",
            list.join(", ")
        ));
        quote! {
            #doc
            pub fn recv(&self, wait: ::std::time::Duration) -> ::std::result::Result<#msg, #rt::client_host::ClientError> {
                self.handle.recv(wait)
            }
        }
    });
    let destructor = model.methods.iter().find(|m| m.name == "destructor");
    let drop_impl = destructor.map(|d| {
        let call = if d.accepts.is_empty() {
            quote!(let _ = self.handle.call(Event::Destructor, |_| {});)
        } else {
            let accepted = accept_pattern(&d.accepts);
            quote! {
                let _ = self.handle.request(
                    Event::Destructor,
                    |_| {},
                    |reply| matches!(reply, #accepted),
                    ::std::time::Duration::from_millis(#DESTRUCTOR_WAIT_MS),
                );
            }
        };
        quote! {
            impl<A: Actions> ::std::ops::Drop for Client<A> {
                /// Runs the `destructor` method unless it ran already,
                /// waiting at most a second for its reply, as zproto's
                /// `destroy` does (without the bound).
                fn drop(&mut self) {
                    if !self.destroyed {
                        #call
                    }
                }
            }
        }
    });
    let destroyed_field = destructor.map(|_| quote!(destroyed: bool,));
    let destroyed_init = destructor.map(|_| quote!(destroyed: false,));

    let async_client = if async_client {
        emit_async_client(model, codec_path, &msg, &properties, rt)
    } else {
        TokenStream::new()
    };

    let class = &model.class;
    let mut class_doc = format!("A `{class}` client.");
    if let Some(title) = &model.title {
        class_doc = format!("{title}.\n\n{class_doc}");
    }
    if !model.description.is_empty() {
        class_doc.push_str("\n\n");
        class_doc.push_str(&model.description);
    }
    class_doc.push_str(
        "\n\nIt runs on the runtime's reactor, one DEALER per client; many clients share one \
         reactor thread ([`Client::on`]). Methods block until an accepted reply comes, or the \
         caller's `wait` passes.",
    );
    let class_doc = docs(&class_doc);
    let actions_doc = docs(&format!(
        "The application side of the `{class}` client: one method per custom action of the model.\n\n\
         `self` is the state of one client (zproto's `client_t`). Actions read the method arguments \
         with `io.args()`, answer the API with `io.reply`, connect with `io.connect`, set timers with \
         `io.set_heartbeat` and `io.set_expiry`, prepare the next `send` with `io.set_message`, and \
         raise events with `io.set_next_event`, `io.set_exception` and `io.set_wakeup`."
    ));
    let custom: TokenStream = model
        .custom
        .iter()
        .map(|text| {
            text.parse::<TokenStream>()
                .map_err(|e| Error::GeneratedSyntax {
                    model: model.class.clone(),
                    source: syn::Error::new(e.span(), format!("in a <custom> Rust source: {e}")),
                })
        })
        .collect::<Result<_, _>>()?;

    let tokens = quote! {
        #state_enum

        /// Events: protocol messages (external), API methods, timers and
        /// events raised by actions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Event {
            #(#event_variants,)*
        }

        impl Event {
            /// The event's name: upper case for messages, lower case otherwise.
            pub fn name(self) -> &'static str {
                match self { #event_names }
            }

            /// The event a received message raises, if some state names it.
            pub fn from_message(message: &#msg) -> ::std::option::Option<Self> {
                match message {
                    #(#message_arms,)*
                    #message_fallback
                }
            }
        }

        /// The arguments of the API methods, one slot per name (zproto's
        /// `args`): a method stores its arguments here before its event runs.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Args {
            #(#arg_fields,)*
        }

        /// The reply structs, one per `<reply>`.
        pub mod replies {
            #(#reply_structs)*
        }

        /// A reply from the machine to the API.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Reply {
            #(#reply_variants,)*
        }

        impl Reply {
            /// The reply's name, as in the model.
            pub fn name(&self) -> &'static str {
                #reply_name_body
            }
        }

        /// The fields of the replies received so far, one per name (zproto's
        /// properties).
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Properties {
            #(#property_fields,)*
        }

        impl Properties {
            /// Take the fields of `reply`.
            pub fn update(&mut self, reply: &Reply) {
                #update_body
            }
        }

        /// The scratchpad client actions get.
        pub type Io = #rt::engine::Io<Event, #msg, #rt::client::Context<Args, Reply, #msg>>;

        #actions_doc
        pub trait Actions: ::std::marker::Send + 'static {
            #(#action_methods)*
        }

        /// The machine with actions `A`, for `zproto_runtime::client`.
        pub struct Machine<A>(::std::marker::PhantomData<A>);

        impl<A: Actions> #rt::client::ClientMachine for Machine<A> {
            type Actions = A;
            type State = State;
            type Event = Event;
            type Message = #msg;
            type Args = Args;
            type Reply = Reply;
            const EXPIRED: ::std::option::Option<Event> = #expired;
            const HEARTBEAT: ::std::option::Option<Event> = #heartbeat;
            const MALFORMED: ::std::option::Option<Event> = #malformed;

            fn event_for(message: &#msg) -> ::std::option::Option<Event> {
                Event::from_message(message)
            }

            fn event_name(event: Event) -> &'static str {
                event.name()
            }

            fn execute(actions: &mut A, state: &mut State, event: Event, io: &mut Io) -> #rt::engine::Outcome {
                execute(actions, state, event, io)
            }
        }

        /// Handle `event` in `state`, and every event it leads to, until the
        /// machine waits for outside input or `terminate` stops it.
        pub fn execute<A: Actions + ?Sized>(
            #actions_param: &mut A,
            state: &mut State,
            event: Event,
            io: &mut Io,
        ) -> #rt::engine::Outcome {
            io.begin(event);
            while let ::std::option::Option::Some(event) = io.take_next_event() {
                let current = *state;
                io.record(|| #rt::engine::Trace::Event { state: current.name(), event: event.name() });
                match (current, event) {
                    #(#arms)*
                    #fallback
                }
                io.settle_exception(Event::name);
                if io.is_stopped() {
                    return #rt::engine::Outcome::Terminated;
                }
                let now = *state;
                io.record(|| #rt::engine::Trace::Next(now.name()));
            }
            #rt::engine::Outcome::Waiting
        }

        #class_doc
        pub struct Client<A: Actions> {
            handle: #rt::client_host::ClientHandle<Machine<A>>,
            properties: Properties,
            #destroyed_field
        }

        impl<A: Actions> Client<A> {
            /// A client with `actions`, on a reactor thread of its own.
            pub fn new(actions: A) -> ::std::result::Result<Self, #rt::client_host::ClientError> {
                #rt::client_host::ClientHandle::start(actions).map(Self::wrap)
            }

            /// A client with `actions` on a shared reactor.
            pub fn on(
                reactor: &::std::sync::Arc<#rt::reactor::Reactor<#rt::client_host::ClientHost<Machine<A>>>>,
                actions: A,
            ) -> ::std::result::Result<Self, #rt::client_host::ClientError> {
                #rt::client_host::ClientHandle::on(reactor, actions).map(Self::wrap)
            }

            fn wrap(handle: #rt::client_host::ClientHandle<Machine<A>>) -> Self {
                Self { handle, properties: Properties::default(), #destroyed_init }
            }

            /// The flag the actions set with `io.set_connected`.
            pub fn connected(&self) -> bool {
                self.handle.connected()
            }

            /// Log every state, event and action at debug level.
            pub fn set_verbose(&self, on: bool) -> ::std::result::Result<(), #rt::client_host::ClientError> {
                self.handle.set_verbose(on)
            }

            /// Every property, from the replies received so far.
            pub fn properties(&self) -> &Properties {
                &self.properties
            }

            /// The client's counters: messages in and out, and what it
            /// dropped (malformed, unknown, unread, refused).
            pub fn stats(&self) -> ::std::result::Result<#rt::client::ClientStats, #rt::client_host::ClientError> {
                self.handle.stats()
            }

            #(#methods)*
            #(#sends)*
            #recv
            #(#property_getters)*
        }

        #drop_impl

        #async_client

        #custom
    };
    let source = model
        .sources
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    finish(&banner(&source, None), tokens, &model.class)
}

/// `AsyncClient`: the blocking `Client`'s twin for async code, on the
/// runtime's `AsyncClientHandle` (its `async` feature).
fn emit_async_client(
    model: &ClientModel,
    codec_path: &TokenStream,
    msg: &TokenStream,
    properties: &[&ApiField],
    rt: &TokenStream,
) -> TokenStream {
    let methods = model
        .methods
        .iter()
        .map(|m| method(model, m, rt, Flavor::Async));
    let sends = model.sends.iter().map(|s| {
        let method = ident(&names::snake(&s.method));
        let v = ident(&names::camel(&s.message));
        let doc = docs(&format!(
            "Send a {} message to the server as it is (`<send>`): it does not run the \
             machine. Waits while the client has too many messages on their way.",
            names::upper(&s.message)
        ));
        quote! {
            #doc
            pub async fn #method(&self, message: #codec_path::#v) -> ::std::result::Result<(), #rt::client_host::ClientError> {
                self.handle.send(#msg::#v(message)).await
            }
        }
    });
    let recv = model.recv.as_ref().map(|r| {
        let list: Vec<String> = r.messages.iter().map(|m| names::upper(m)).collect();
        let recv_doc = docs(&format!(
            "The next message the actions passed to the application ({}).",
            list.join(", ")
        ));
        let stream_doc = docs(&format!(
            "The messages the actions pass to the application ({}), as a stream.",
            list.join(", ")
        ));
        quote! {
            #recv_doc
            pub async fn recv(&self) -> ::std::result::Result<#msg, #rt::client_host::ClientError> {
                self.handle.recv().await
            }

            #stream_doc
            pub fn deliveries(&self) -> #rt::client_host::Deliveries<'_, #msg> {
                self.handle.deliveries()
            }
        }
    });
    let getters = properties.iter().map(|f| {
        let name = ident(&names::snake(&f.name));
        let doc = docs(&format!(
            "Property `{}`: from the last reply that carried it.",
            names::snake(&f.name)
        ));
        let ty = owned_type(f.kind);
        let value = if is_copy(f.kind) {
            quote!(self.lock_properties().#name)
        } else {
            quote!(self.lock_properties().#name.clone())
        };
        quote! {
            #doc
            pub fn #name(&self) -> #ty { #value }
        }
    });
    let destructor = model.methods.iter().find(|m| m.name == "destructor");
    let drop_impl = destructor.map(|_| {
        quote! {
            impl<A: Actions> ::std::ops::Drop for AsyncClient<A> {
                /// Queues the `destructor` method unless it ran already,
                /// without waiting for its reply (a drop cannot await):
                /// await `destructor` first for an orderly goodbye.
                fn drop(&mut self) {
                    if !self.destroyed.load(::std::sync::atomic::Ordering::Relaxed) {
                        let _ = self.handle.call(Event::Destructor, |_| {});
                    }
                }
            }
        }
    });
    let destroyed_field = destructor.map(|_| quote!(destroyed: ::std::sync::atomic::AtomicBool,));
    let destroyed_init =
        destructor.map(|_| quote!(destroyed: ::std::sync::atomic::AtomicBool::new(false),));
    let doc = docs(&format!(
        "A `{}` client for async code: the same methods as [`Client`]'s, as futures that the \
         reactor thread wakes, on any executor.\n\n\
         Methods take `&self`, so many tasks can share one client, but the protocol's replies \
         carry no call id: calls run one at a time, in the order they reach the client. \
         Dropping a call's future at any await point leaves the client usable: a call still \
         queued never runs, and one in flight stays in flight until its reply or its `wait`, \
         so that its reply is never taken by the next call.",
        model.class
    ));
    quote! {
        #doc
        pub struct AsyncClient<A: Actions> {
            handle: #rt::client_host::AsyncClientHandle<Machine<A>>,
            properties: ::std::sync::Mutex<Properties>,
            #destroyed_field
        }

        impl<A: Actions> AsyncClient<A> {
            /// A client with `actions`, on a reactor thread of its own.
            pub fn new(actions: A) -> ::std::result::Result<Self, #rt::client_host::ClientError> {
                #rt::client_host::AsyncClientHandle::start(actions).map(Self::wrap)
            }

            /// A client with `actions` on a shared reactor.
            pub fn on(
                reactor: &::std::sync::Arc<#rt::reactor::Reactor<#rt::client_host::ClientHost<Machine<A>>>>,
                actions: A,
            ) -> ::std::result::Result<Self, #rt::client_host::ClientError> {
                #rt::client_host::AsyncClientHandle::on(reactor, actions).map(Self::wrap)
            }

            fn wrap(handle: #rt::client_host::AsyncClientHandle<Machine<A>>) -> Self {
                Self {
                    handle,
                    properties: ::std::sync::Mutex::new(Properties::default()),
                    #destroyed_init
                }
            }

            /// The properties, held only between two statements (never
            /// across an await), so a panic elsewhere cannot poison them
            /// for good.
            fn lock_properties(&self) -> ::std::sync::MutexGuard<'_, Properties> {
                self.properties
                    .lock()
                    .unwrap_or_else(::std::sync::PoisonError::into_inner)
            }

            /// The flag the actions set with `io.set_connected`.
            pub fn connected(&self) -> bool {
                self.handle.connected()
            }

            /// Log every state, event and action at debug level.
            pub fn set_verbose(&self, on: bool) -> ::std::result::Result<(), #rt::client_host::ClientError> {
                self.handle.set_verbose(on)
            }

            /// Every property, from the replies received so far.
            pub fn properties(&self) -> Properties {
                self.lock_properties().clone()
            }

            /// The client's counters: messages in and out, and what it
            /// dropped (malformed, unknown, unread, refused).
            pub async fn stats(&self) -> ::std::result::Result<#rt::client::ClientStats, #rt::client_host::ClientError> {
                self.handle.stats().await
            }

            #(#methods)*
            #(#sends)*
            #recv
            #(#getters)*
        }

        #drop_impl
    }
}

/// The Rust type of an argument or property.
fn owned_type(kind: ApiType) -> TokenStream {
    match kind {
        ApiType::Integer => quote!(i32),
        ApiType::Number(1) => quote!(u8),
        ApiType::Number(2) => quote!(u16),
        ApiType::Number(4) => quote!(u32),
        ApiType::Number(_) => quote!(u64),
        ApiType::Boolean => quote!(bool),
        ApiType::String => quote!(::std::string::String),
        ApiType::Strings => quote!(::std::vec::Vec<::std::string::String>),
        ApiType::Hash => {
            quote!(::std::collections::BTreeMap<::std::string::String, ::std::string::String>)
        }
        ApiType::Bytes => quote!(::std::vec::Vec<u8>),
        ApiType::Msg => quote!(::std::vec::Vec<::std::vec::Vec<u8>>),
        ApiType::Uuid => quote!([u8; 16]),
    }
}

fn is_copy(kind: ApiType) -> bool {
    matches!(
        kind,
        ApiType::Integer | ApiType::Number(_) | ApiType::Boolean | ApiType::Uuid
    )
}

/// A getter's return type and body for a property at `place`.
fn getter(kind: ApiType, place: TokenStream) -> (TokenStream, TokenStream) {
    match kind {
        ApiType::String => (quote!(&str), quote!(&#place)),
        k if is_copy(k) => (owned_type(k), place),
        k => {
            let ty = owned_type(k);
            (quote!(&#ty), quote!(&#place))
        }
    }
}

/// `Reply::A(_) | Reply::B(_)`.
fn accept_pattern(accepts: &[String]) -> TokenStream {
    let variants = accepts.iter().map(|a| {
        let v = ident(&names::camel(a));
        quote!(Reply::#v(_))
    });
    quote!(#(#variants)|*)
}

/// Which API a method is emitted for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// `Client`: methods block their thread, and take `&mut self`.
    Blocking,
    /// `AsyncClient`: methods are `async` and take `&self`.
    Async,
}

fn method(model: &ClientModel, m: &Method, rt: &TokenStream, flavor: Flavor) -> TokenStream {
    let is_async = flavor == Flavor::Async;
    let name = ident(&names::snake(&m.name));
    let event = ident(&names::camel(&m.name));
    let params = m.fields.iter().map(|f| {
        let p = ident(&names::snake(&f.name));
        let ty = match f.kind {
            ApiType::String => quote!(&str),
            k => owned_type(k),
        };
        quote!(#p: #ty)
    });
    let stores: TokenStream = m
        .fields
        .iter()
        .map(|f| {
            let p = ident(&names::snake(&f.name));
            match f.kind {
                ApiType::String => quote!(let #p = #p.to_owned();),
                _ => TokenStream::new(),
            }
        })
        .collect();
    let assigns = m.fields.iter().map(|f| {
        let p = ident(&names::snake(&f.name));
        quote!(args.#p = #p;)
    });
    let args_binding = if m.fields.is_empty() {
        quote!(_args)
    } else {
        quote!(args)
    };
    let store = quote!(move |#args_binding: &mut Args| { #(#assigns)* });
    let mark_destroyed = match (m.name == "destructor", flavor) {
        (false, _) => TokenStream::new(),
        (true, Flavor::Blocking) => quote!(self.destroyed = true;),
        (true, Flavor::Async) => {
            quote!(self.destroyed.store(true, ::std::sync::atomic::Ordering::Relaxed);)
        }
    };
    let mut doc = if m.doc.is_empty() {
        format!("Method `{}`.", names::snake(&m.name))
    } else {
        m.doc.clone()
    };
    let wait_param;
    let (ret, body) = if m.accepts.is_empty() {
        wait_param = TokenStream::new();
        doc.push_str("\n\nReturns once the method's call is queued; it waits for no reply.");
        let call = if m.immediate {
            TokenStream::new()
        } else {
            quote! {
                #stores
                self.handle.call(Event::#event, #store)?;
            }
        };
        (quote!(()), quote! { #call Ok(()) })
    } else {
        wait_param = quote!(wait: ::std::time::Duration);
        let list: Vec<String> = m.accepts.iter().map(|a| names::upper(a)).collect();
        let accepted = accept_pattern(&m.accepts);
        let accept = quote!(|reply| matches!(reply, #accepted));
        let awaited = if is_async {
            quote!(.await)
        } else {
            TokenStream::new()
        };
        let get = if m.immediate {
            quote!(let reply = self.handle.wait(#accept, wait)#awaited?;)
        } else {
            quote! {
                #stores
                let reply = self.handle.request(Event::#event, #store, #accept, wait)#awaited?;
            }
        };
        let failures = failure_checks(model, m, rt);
        let properties = match flavor {
            Flavor::Blocking => quote!(self.properties),
            Flavor::Async => quote!(self.lock_properties()),
        };
        match &m.returns {
            Some(property) => {
                let field = properties_field(model, property);
                let p = ident(&names::snake(property));
                doc.push_str(&format!(
                    "\n\nWaits up to `wait` for {}; returns its `{}`.",
                    list.join(" or "),
                    names::snake(property)
                ));
                let kind = field.map_or(ApiType::Integer, |f| f.kind);
                let value = if is_copy(kind) {
                    quote!(properties.#p)
                } else {
                    quote!(properties.#p.clone())
                };
                let value = match flavor {
                    Flavor::Blocking => quote! {
                        self.properties.update(&reply);
                        let properties = &self.properties;
                        let value = #value;
                    },
                    Flavor::Async => quote! {
                        let value = {
                            let mut properties = self.lock_properties();
                            properties.update(&reply);
                            #value
                        };
                    },
                };
                (owned_type(kind), quote! { #get #value #failures Ok(value) })
            }
            None => {
                doc.push_str(&format!(
                    "\n\nWaits up to `wait` for {}, and returns it.",
                    list.join(" or ")
                ));
                (
                    quote!(Reply),
                    quote! { #get #properties.update(&reply); #failures Ok(reply) },
                )
            }
        }
    };
    let doc = docs(&doc);
    let params: Vec<TokenStream> = params
        .chain(std::iter::once(wait_param))
        .filter(|t| !t.is_empty())
        .collect();
    match flavor {
        Flavor::Blocking => quote! {
            #doc
            pub fn #name(&mut self, #(#params),*) -> ::std::result::Result<#ret, #rt::client_host::ClientError> {
                #mark_destroyed
                #body
            }
        },
        Flavor::Async => quote! {
            #doc
            pub async fn #name(&self, #(#params),*) -> ::std::result::Result<#ret, #rt::client_host::ClientError> {
                #mark_destroyed
                #body
            }
        },
    }
}

/// Whether a reply is a method's failure: zproto's clients name it
/// FAILURE (or ERROR), and the C API returns -1 for it.
pub(crate) fn is_failure(reply: &str) -> bool {
    matches!(reply, "failure" | "error")
}

/// For each failure reply `m` accepts: return it as
/// `ClientError::Failed`, with its `status` and `reason` fields, rather
/// than a property that an earlier reply left.
fn failure_checks(model: &ClientModel, m: &Method, rt: &TokenStream) -> TokenStream {
    let checks = m.accepts.iter().filter(|a| is_failure(a)).map(|a| {
        let variant = ident(&names::camel(a));
        let shown = names::upper(a);
        let fields = model
            .replies
            .iter()
            .find(|r| r.name == *a)
            .map(|r| r.fields.as_slice())
            .unwrap_or_default();
        let status = match fields.iter().find(|f| f.name == "status").map(|f| f.kind) {
            // As `owned_type` holds them: u64 only for 8-byte numbers.
            Some(ApiType::Number(1 | 2 | 4)) | Some(ApiType::Integer) => {
                quote!(::std::option::Option::Some(i64::from(failure.status)))
            }
            Some(ApiType::Number(_)) => {
                quote!(i64::try_from(failure.status).ok())
            }
            _ => quote!(::std::option::Option::None),
        };
        let reason = match fields.iter().find(|f| f.name == "reason").map(|f| f.kind) {
            Some(ApiType::String) => {
                quote!(::std::option::Option::Some(failure.reason.clone()))
            }
            _ => quote!(::std::option::Option::None),
        };
        quote! {
            if let Reply::#variant(failure) = &reply {
                let _ = failure;
                return Err(#rt::client_host::ClientError::Failed {
                    reply: #shown,
                    status: #status,
                    reason: #reason,
                });
            }
        }
    });
    quote!(#(#checks)*)
}

fn properties_field<'a>(model: &'a ClientModel, name: &str) -> Option<&'a ApiField> {
    model
        .replies
        .iter()
        .flat_map(|r| &r.fields)
        .find(|f| f.name == name)
}
