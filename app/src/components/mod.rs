pub mod form;
pub mod layout;
pub mod price_switch;
