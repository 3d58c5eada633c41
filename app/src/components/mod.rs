pub mod form;
pub mod host_watch;
pub mod layout;
pub mod price_switch;
