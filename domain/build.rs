// Rebuild when what macros compile in changes, which cargo cannot see: the translations
// (rust-i18n) and the migrations (`sqlx::migrate!`, so a new migration file is picked up).
fn main() {
    println!("cargo:rerun-if-changed=../locales");
    println!("cargo:rerun-if-changed=../migrations");
}
