//! Scenario documents as the formats and the protocols read them: YAML text to a
//! tree of nodes that remember their line and column ([`yaml`]), a serde
//! deserializer over that tree that records every shape or type error with its
//! position and carries on ([`de`]), and the did-you-mean of misspelt keys
//! ([`suggest`]).
//!
//! The scenario format reads its skeleton (phases, flows, thresholds…) with it,
//! and each protocol reads its own step document with it, so both report their
//! mistakes the same way:
//!
//! ```
//! use loadline_doc::de::{self, Sink, Spanned};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Ping {
//!     ping: Spanned<String>,
//!     count: Option<Spanned<i64>>,
//! }
//!
//! let (root, _) = loadline_doc::yaml::parse("ping: host\ncuont: 3\n").unwrap();
//! let sink = Sink::default();
//! let doc: Option<Ping> = de::from_node(&root.unwrap(), &sink);
//! assert_eq!(doc.unwrap().ping.value, "host");
//! let errors = sink.into_errors();
//! assert_eq!(errors[0].mark.unwrap().line, 2);
//! assert!(errors[0].message.contains("did you mean `count`?"));
//! ```

pub mod de;
pub mod suggest;
pub mod value;
pub mod yaml;

pub use loadline_core::build::{Mark, Span};
