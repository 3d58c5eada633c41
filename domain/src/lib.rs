//! The portal's business logic and storage, free of any web framework.
//!
//! `app` (under its `ssr` feature) and `server` call into this crate; it never calls back.

pub mod accounts;
pub mod audit;
pub mod billing;
pub mod clock;
pub mod db;
pub mod homeservers;
pub mod i18n;
pub mod jobs;
pub mod leases;
pub mod mail;
pub mod money;
pub mod personal_data;
pub mod plans;
pub mod portal;
pub mod random;
pub mod sessions;
pub mod text_enum;

rust_i18n::i18n!("../locales", fallback = "en");

pub use clock::{Clock, ManualClock, SystemClock};
pub use db::{Backend, Db, Tx};
pub use portal::Portal;
pub use random::{OsRandom, Random, SeededRandom};
