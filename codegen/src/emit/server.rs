//! Emit stage for server models: a [`ServerModel`] to a Rust state machine.
//!
//! The output has a `State` and an `Event` enum, an `Actions` trait with one
//! method per custom action (so a missing handler is a compile error), and an
//! `execute` function that follows zproto's execution rules: named events
//! before `*`, superstate events after the state's own, `next` running the
//! old state's `after` and the new state's `before` actions, internal next
//! events handled in the same run, exceptions skipping the rest and being
//! handled in the current state, and `terminate`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::emit::{banner, docs, finish, EmitOptions};
use crate::error::Error;
use crate::model::codec::CodecModel;
use crate::model::server::*;
use crate::names;

/// Rust source of the state machine of `model`, whose messages are the
/// generated codec at `codec_path` (e.g. `super::zgossip_msg`), and whose
/// actions hand their driver values of type `effect` if given.
pub fn emit(
    model: &ServerModel,
    codec: &CodecModel,
    codec_path: &TokenStream,
    effect: Option<&TokenStream>,
    options: &EmitOptions,
) -> Result<String, Error> {
    let rt = &options.runtime;
    let msg_enum = ident(&names::camel(&codec.class));
    let msg = quote!(#codec_path::#msg_enum);
    let (io_ty, effects_ty) = match effect {
        Some(effect) => (
            quote!(#rt::engine::Io<Event, #msg, ::std::vec::Vec<#effect>>),
            quote!(::std::vec::Vec<#effect>),
        ),
        None => (quote!(#rt::engine::Io<Event, #msg>), quote!(())),
    };

    let state_enum = state_enum(&model.states, "States of a session.");
    let event_variants = event_variants(&model.events, &[]);
    let event_names = event_name_arms(&model.events);
    let externals = external_events(&model.events);
    let is_external = if externals.is_empty() {
        quote!(false)
    } else {
        quote!(matches!(self, #(Self::#externals)|*))
    };
    let message_arms = externals.iter().map(|v| quote!(#msg::#v(_) => Self::#v));
    let all_messages_named = names_every_message(&model.messages, &model.events);
    let message_fallback = if all_messages_named {
        TokenStream::new()
    } else {
        quote!(_ => Self::Terminate,)
    };

    let typed = typed_actions(&model.actions, |a| model.message_of(a));
    let action_methods = action_methods(&model.actions, &model.states, &typed, codec_path, false);

    let ctx = Ctx {
        states: &model.states,
        codec,
        msg: &msg,
        codec_path,
        rt,
        client: false,
        typed,
    };
    let arms = model.states.iter().flat_map(|s| ctx.state_arms(s));
    let fallback = unhandled_fallback(&model.states, rt);
    let (actions_param, session_param) = if model.actions.is_empty() {
        (quote!(_actions), quote!(_session))
    } else {
        (quote!(actions), quote!(session))
    };

    let class = &model.class;
    let mut class_doc = format!("State machine of the `{class}` server, one per client session.");
    if let Some(title) = &model.title {
        class_doc = format!("{title}.\n\n{class_doc}");
    }
    if !model.description.is_empty() {
        class_doc.push_str("\n\n");
        class_doc.push_str(&model.description);
    }
    let class_doc = docs(&class_doc);
    let actions_doc = docs(&format!(
        "The application side of the `{class}` server: one method per custom action of the model.\n\n\
         `self` is the server, shared by every session; `Session` is the state of one client session. \
         Actions read the received message with `io.message()`, prepare the next `send` with \
         `io.set_message`, and raise events with `io.set_next_event`, `io.set_exception`, \
         `io.set_wakeup` and `io.broadcast`."
    ));
    let expires = model.has_expiry;
    let expired = if expires {
        quote!(::std::option::Option::Some(Event::Expired))
    } else {
        quote!(::std::option::Option::None)
    };
    let has_malformed = model.events.iter().any(|e| e.name == "malformed");
    let malformed = if has_malformed {
        quote!(::std::option::Option::Some(Event::Malformed))
    } else {
        quote!(::std::option::Option::None)
    };
    let expiry_doc = if expires {
        " Some state handles `expired`: sessions expire after the server timeout with no traffic."
    } else {
        " No state handles `expired`: sessions never expire."
    };

    let io_doc = if effect.is_some() {
        " The scratchpad server actions get: the message, events to raise, messages to send, and the effects they hand the driver (`io.emit`)."
    } else {
        " The scratchpad server actions get: the message, events to raise, messages to send."
    };
    let tokens = quote! {
        #[doc = #expiry_doc]
        pub const EXPIRES: bool = #expires;

        #[doc = #io_doc]
        pub type Io = #io_ty;

        #state_enum

        /// Events: protocol messages (external) and events raised by actions,
        /// timers and the application (internal).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Event {
            #(#event_variants,)*
            /// End of the session: the `terminate` action, and any protocol
            /// message that no state names.
            Terminate,
        }

        impl Event {
            /// The event's name: upper case for messages, lower case for internal events.
            pub fn name(self) -> &'static str {
                match self {
                    #event_names
                    Self::Terminate => "terminate",
                }
            }

            /// Whether a protocol message raises this event.
            pub fn is_external(self) -> bool {
                #is_external
            }

            /// The event a received message raises.
            pub fn from_message(message: &#msg) -> Self {
                match message {
                    #(#message_arms,)*
                    #message_fallback
                }
            }
        }

        #actions_doc
        pub trait Actions {
            /// The state of one client session; a new session starts from `Default`.
            type Session: ::std::default::Default;
            #(#action_methods)*

            /// A session ended (terminated, expired, or its peer gone),
            /// zproto's `client_terminate`: release what it holds. Does
            /// nothing unless implemented.
            fn session_ended(&mut self, session: &mut Self::Session) {
                let _ = session;
            }

            /// A setting the server host does not know itself (`SET path
            /// value`, or a line of a `LOAD`ed file): the application's own.
            /// Does nothing unless implemented.
            fn configure(&mut self, path: &str, value: &str) {
                let _ = (path, value);
            }
        }

        /// The machine with actions `A`, for `zproto_runtime::server::Sessions`.
        pub struct Machine<A>(::std::marker::PhantomData<A>);

        impl<A: Actions> #rt::server::StateMachine for Machine<A> {
            type Actions = A;
            type Session = A::Session;
            type State = State;
            type Event = Event;
            type Message = #msg;
            type Effects = #effects_ty;
            const EXPIRED: ::std::option::Option<Event> = #expired;
            const MALFORMED: ::std::option::Option<Event> = #malformed;

            fn event_for(message: &#msg) -> Event {
                Event::from_message(message)
            }

            fn session_ended(actions: &mut A, session: &mut A::Session) {
                actions.session_ended(session);
            }

            fn configure(actions: &mut A, path: &str, value: &str) {
                actions.configure(path, value);
            }

            fn execute(
                actions: &mut A,
                session: &mut A::Session,
                state: &mut State,
                event: Event,
                io: &mut Io,
            ) -> #rt::engine::Outcome {
                execute(actions, session, state, event, io)
            }
        }

        #class_doc
        ///
        /// Handle `event` in the session's `state`, and every event it leads to,
        /// until the machine waits for outside input or the session ends.
        pub fn execute<A: Actions + ?Sized>(
            #actions_param: &mut A,
            #session_param: &mut A::Session,
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
                if !io.settle(Event::Terminate, Event::name) {
                    return #rt::engine::Outcome::Terminated;
                }
                let now = *state;
                io.record(|| #rt::engine::Trace::Next(now.name()));
            }
            #rt::engine::Outcome::Waiting
        }
    };
    let source = model
        .sources
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    finish(&banner(&source, None), tokens, &model.class)
}

pub(crate) fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

/// Where an action is used, for its doc.
pub(crate) fn usage(states: &[State], action: &str) -> String {
    let mut places = Vec::new();
    let custom = Action::Custom(action.to_owned());
    for s in states {
        for h in &s.handlers {
            if h.actions.contains(&custom)
                && !places
                    .iter()
                    .any(|p: &String| p.ends_with(&format!("on `{}`", h.event)))
            {
                places.push(format!("in `{}` on `{}`", s.name, h.event));
            }
        }
        if s.before.contains(&custom) {
            places.push(format!("on entering `{}`", s.name));
        }
        if s.after.contains(&custom) {
            places.push(format!("on leaving `{}`", s.name));
        }
    }
    if places.is_empty() {
        "by the wildcard handlers".to_owned()
    } else {
        places.join(", ")
    }
}

/// The actions that take their message typed: (action, message).
pub(crate) fn typed_actions<'a>(
    actions: &[String],
    message_of: impl Fn(&str) -> Option<&'a str>,
) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| Some((a.clone(), message_of(a)?.to_owned())))
        .collect()
}

/// The `Actions` trait's methods, one per custom action: with the message
/// it runs on for those in `typed`, with the session for servers.
pub(crate) fn action_methods(
    actions: &[String],
    states: &[State],
    typed: &[(String, String)],
    codec_path: &TokenStream,
    client: bool,
) -> Vec<TokenStream> {
    let session = if client {
        TokenStream::new()
    } else {
        quote!(session: &mut Self::Session,)
    };
    actions
        .iter()
        .map(|a| {
            let method = ident(&names::snake(a));
            let uses = usage(states, a);
            let label = a.replace('_', " ");
            match typed.iter().find(|(action, _)| action == a).map(|(_, m)| m) {
                Some(message) => {
                    let doc = docs(&format!(
                        "Action `{label}`, with the {} message it runs on, whose fields it may take \
                         (`std::mem::take`): a `send` after it copies the fields it leaves.\n\nRun {uses}.",
                        names::upper(message)
                    ));
                    let ty = ident(&names::camel(message));
                    quote! {
                        #doc
                        fn #method(&mut self, #session message: &mut #codec_path::#ty, io: &mut Io);
                    }
                }
                None => {
                    let doc = docs(&format!("Action `{label}`.\n\nRun {uses}."));
                    quote! {
                        #doc
                        fn #method(&mut self, #session io: &mut Io);
                    }
                }
            }
        })
        .collect()
}

/// Emits the match arms of a machine's `execute`, for servers and clients.
pub(crate) struct Ctx<'a> {
    pub states: &'a [State],
    pub codec: &'a CodecModel,
    pub msg: &'a TokenStream,
    pub codec_path: &'a TokenStream,
    pub rt: &'a TokenStream,
    /// Client machines: actions take no session, `terminate` stops the
    /// machine.
    pub client: bool,
    /// Actions that take the one message they run on, typed: (action,
    /// message), canonical names.
    pub typed: Vec<(String, String)>,
}

impl Ctx<'_> {
    pub fn state_arms(&self, s: &State) -> Vec<TokenStream> {
        let sv = ident(&names::camel(&s.name));
        let mut arms: Vec<TokenStream> = s
            .handlers
            .iter()
            .map(|h| {
                let ev = ident(&names::camel(&h.event));
                let body = self.handler(s, h);
                quote!((State::#sv, Event::#ev) => { #body })
            })
            .collect();
        if let Some(w) = &s.wildcard {
            let body = self.handler(s, w);
            arms.push(quote!((State::#sv, _) => { #body }));
        }
        arms
    }

    fn handler(&self, s: &State, h: &Handler) -> TokenStream {
        let actions = h.actions.iter().map(|a| self.action(a));
        let transition = h.next.as_ref().map(|next| {
            let target = self.states.iter().find(|t| &t.name == next);
            let nv = ident(&names::camel(next));
            let after = s.after.iter().map(|a| self.action(a));
            let before = target
                .into_iter()
                .flat_map(|t| t.before.iter())
                .map(|a| self.action(a));
            quote! {
                if io.proceed() {
                    #(#after)*
                    *state = State::#nv;
                    #(#before)*
                }
            }
        });
        quote! { #(#actions)* #transition }
    }

    fn action(&self, a: &Action) -> TokenStream {
        let rt = self.rt;
        match a {
            Action::Custom(name) => {
                let method = ident(&names::snake(name));
                let label = name.replace('_', " ");
                let message = self.typed.iter().find(|(action, _)| action == name);
                let session = if self.client {
                    TokenStream::new()
                } else {
                    quote!(session,)
                };
                let call = if let Some((_, message)) = message {
                    // The message is lent to the action, and put back
                    // unless the action prepared another.
                    let msg = self.msg;
                    let v = ident(&names::camel(message));
                    quote! {
                        match io.take_message() {
                            ::std::option::Option::Some(#msg::#v(mut message)) => {
                                actions.#method(#session &mut message, io);
                                io.restore_message(#msg::#v(message));
                            }
                            other => io.skip_action(other, #label),
                        }
                    }
                } else {
                    quote!(actions.#method(#session io);)
                };
                quote! {
                    if io.proceed() {
                        io.record(|| #rt::engine::Trace::Action(::std::string::String::from(#label)));
                        #call
                    }
                }
            }
            Action::Terminate => {
                let stop = if self.client {
                    quote!(io.stop();)
                } else {
                    quote!(io.terminate(Event::Terminate);)
                };
                quote! {
                    if io.proceed() {
                        io.record(|| #rt::engine::Trace::Action(::std::string::String::from("terminate")));
                        #stop
                    }
                }
            }
            Action::Send(message) => {
                let v = ident(&names::camel(message));
                let msg = self.msg;
                let label = format!("send {}", names::upper(message));
                let has_fields = self
                    .codec
                    .messages
                    .iter()
                    .find(|m| &m.name == message)
                    .is_some_and(|m| m.fields.iter().any(|f| f.constant.is_none()));
                // The fields are whatever the actions stored in the shared
                // message, or the received message's of the same name, as in
                // zproto; never a silent default for fields that were set.
                let path = self.codec_struct(message);
                let outgoing = if has_fields {
                    quote! {
                        #msg::#v(io.message().map_or_else(
                            ::std::default::Default::default,
                            #path::with_fields_of,
                        ))
                    }
                } else {
                    quote!(#msg::#v(#path))
                };
                quote! {
                    if io.proceed() {
                        io.record(|| #rt::engine::Trace::Action(::std::string::String::from(#label)));
                        let outgoing = #outgoing;
                        io.send(outgoing);
                    }
                }
            }
        }
    }

    fn codec_struct(&self, message: &str) -> TokenStream {
        let path = self.codec_path;
        let s = ident(&names::camel(message));
        quote!(#path::#s)
    }
}

/// The `State` enum (the first state the default) with `name()`.
pub(crate) fn state_enum(states: &[State], doc: &str) -> TokenStream {
    let variants = states.iter().enumerate().map(|(i, s)| {
        let v = ident(&names::camel(&s.name));
        let mut doc = format!("`{}`", s.name);
        if i == 0 {
            doc.push_str(", the initial state");
        }
        if let Some(parent) = &s.inherit {
            doc.push_str(&format!("; inherits the events of `{parent}`"));
        }
        doc.push('.');
        let default = if i == 0 {
            quote!(#[default])
        } else {
            TokenStream::new()
        };
        let doc = docs(&doc);
        quote!(#doc #default #v)
    });
    let names = states.iter().map(|s| {
        let v = ident(&names::camel(&s.name));
        let n = &s.name;
        quote!(Self::#v => #n)
    });
    let doc = docs(doc);
    let all = states.iter().map(|s| {
        let v = ident(&names::camel(&s.name));
        quote!(Self::#v)
    });
    let count = proc_macro2::Literal::usize_unsuffixed(states.len());
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum State {
            #(#variants,)*
        }

        impl State {
            /// Every state, in the model's order.
            pub const ALL: [State; #count] = [#(#all),*];

            /// The state's name, as in the model.
            pub fn name(self) -> &'static str {
                match self { #(#names,)* }
            }
        }
    }
}

/// `Self::X => "name"` for every event: upper case for messages.
pub(crate) fn event_name_arms(events: &[Event]) -> TokenStream {
    let arms = events.iter().map(|e| {
        let v = ident(&names::camel(&e.name));
        let n = if e.external {
            names::upper(&e.name)
        } else {
            e.name.clone()
        };
        quote!(Self::#v => #n,)
    });
    quote!(#(#arms)*)
}

/// The last arm of `execute`'s match, unless every state has a `*`.
pub(crate) fn unhandled_fallback(states: &[State], rt: &TokenStream) -> TokenStream {
    if states.iter().all(|s| s.wildcard.is_some()) {
        return TokenStream::new();
    }
    quote! {
        (state, event) => {
            return #rt::engine::Outcome::Unhandled { state: state.name(), event: event.name() };
        }
    }
}

/// The `Event` variants, documented: messages, API methods (clients),
/// internal events.
pub(crate) fn event_variants(events: &[Event], methods: &[&str]) -> Vec<TokenStream> {
    events
        .iter()
        .map(|e| {
            let v = ident(&names::camel(&e.name));
            let doc = if e.external {
                format!("The {} message arrived.", names::upper(&e.name))
            } else if methods.contains(&e.name.as_str()) {
                format!("The API called `{}`.", names::snake(&e.name))
            } else {
                format!("Internal event `{}`.", e.name)
            };
            let doc = docs(&doc);
            quote!(#doc #v)
        })
        .collect()
}

/// The variants of the events a message raises.
pub(crate) fn external_events(events: &[Event]) -> Vec<Ident> {
    events
        .iter()
        .filter(|e| e.external)
        .map(|e| ident(&names::camel(&e.name)))
        .collect()
}

/// Whether some event is named after every message.
pub(crate) fn names_every_message(messages: &[String], events: &[Event]) -> bool {
    messages
        .iter()
        .all(|m| events.iter().any(|e| e.external && &e.name == m))
}
