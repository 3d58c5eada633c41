pub mod account;
pub mod billing;
pub mod landing;
pub mod legal;
pub mod not_found;
pub mod password_reset;
pub mod sign_in;
pub mod sign_up;
