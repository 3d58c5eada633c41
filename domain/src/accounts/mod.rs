//! Accounts: people who sign in (users), the organisations that pay (customers), and how a
//! user proves who they are. Built up by the accounts issue; passwords come first.

pub mod address_proof;
pub mod email_change;
pub mod email_tokens;
pub mod emails;
pub mod identities;
pub mod password;
pub mod profile;
pub mod reauth;
pub mod reset;
pub mod signin;
pub mod signup;
pub mod throttle;
pub mod totp;
pub mod two_factor;
pub mod verification;
