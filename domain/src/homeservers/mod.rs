//! Homeservers: the regions they run in and their names (orders and provisioning come later).

pub mod names;
pub mod regions;
