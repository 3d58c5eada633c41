pub mod layout;
pub mod price_switch;
pub mod form;
