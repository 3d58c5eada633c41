//! Pages the server writes without the app (no script, no navigation): the page an invoice
//! link opens, and the one that shows a new link once.

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A whole page: `title` (escaped here), the site's stylesheet, and `main` (HTML, escaped by
/// the caller) in a `<main>` of the given class.
pub fn page(title: &str, main_class: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow, noarchive\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/pkg/{css}\"></head><body>\
         <main id=\"content\" class=\"{main_class}\">{main}</main></body></html>",
        lang = domain::i18n::Locale::En.code(),
        title = escape(title),
        css = crate::state::stylesheet_name(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::escape(r#"<a href="x">&</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
