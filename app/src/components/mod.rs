pub mod layout;
pub mod price_switch;
