//! An invoice document as a PDF: A4 pages, selectable text in one bundled font (DejaVu Sans,
//! which covers Latin, Greek and Cyrillic; licence in `fonts/DejaVuSans.LICENSE`), the
//! document's blocks laid out top to bottom with line breaks and page breaks (the lines table
//! repeats its header on each new page), a footer with the page number on every page.
//!
//! The sheet is given in words (every label already translated, every amount formatted): this
//! crate knows layout, not invoices. The same sheet gives the same bytes (the PDF's date is the
//! invoice's, not the clock's), so a PDF rendered twice can be compared by its SHA-256.

use krilla::{
    color::rgb,
    geom::{PathBuilder, Point, Rect},
    metadata::{DateTime, Metadata},
    page::PageSettings,
    paint::{Fill, Stroke},
    text::{Font, TextDirection},
    Data, Document,
};

/// DejaVu Sans 2.37 (Debian's fonts-dejavu-core), Bitstream Vera licence.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
/// 20 mm.
const MARGIN: f32 = 56.69;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// Where content stops and the footer begins.
const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - MARGIN - 24.0;

const BODY: f32 = 9.5;
const SMALL: f32 = 8.0;
const HEADING: f32 = 20.0;
const LABEL: f32 = 8.0;
const TOTAL: f32 = 11.5;

const INK: (u8, u8, u8) = (23, 25, 28);
const MUTED: (u8, u8, u8) = (92, 99, 112);
const RULE: (u8, u8, u8) = (200, 204, 210);
const BAND: (u8, u8, u8) = (240, 242, 245);

/// An invoice in words, ready to be laid out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sheet {
    /// The document's title, also its heading ("Invoice M-000001").
    pub title: String,
    /// BCP 47 language of the text ("en").
    pub language: String,
    /// The invoice's date of issue (year, month, day): the PDF's creation date.
    pub issued: (i32, u8, u8),
    pub seller_label: String,
    /// The seller block, line by line (legal name first).
    pub seller: Vec<String>,
    pub buyer_label: String,
    pub buyer: Vec<String>,
    /// (label, value): number, dates, service period.
    pub facts: Vec<(String, String)>,
    /// Column headings: description, period, amount.
    pub columns: [String; 3],
    /// Each line's description, period and amount.
    pub lines: Vec<[String; 3]>,
    /// (label, amount): subtotal, each tax line, and last the total (set larger).
    pub totals: Vec<(String, String)>,
    /// Legal notes (reverse charge, export), each a paragraph.
    pub notes: Vec<String>,
    /// "How to pay", when the invoice is paid by transfer.
    pub payment_label: Option<String>,
    /// Bank details and the payment reference, line by line.
    pub payment: Vec<String>,
    /// Small print at the foot of every page (the seller, its numbers).
    pub footer: String,
    /// "Page %{page} of %{pages}".
    pub page_label: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the invoice PDF could not be made: {0}")]
pub struct PdfError(String);

/// What is drawn where on a page; gathered first, so that every footer knows the page count.
enum Op {
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        colour: (u8, u8, u8),
        text: String,
    },
    /// A hairline from `from` to the right margin.
    Rule {
        from: f32,
        y: f32,
    },
    Band {
        y: f32,
        height: f32,
    },
}

struct Layout {
    face: rustybuzz::Face<'static>,
    pages: Vec<Vec<Op>>,
    /// The top of the next line on the current page.
    y: f32,
}

impl Layout {
    fn new() -> Result<Self, PdfError> {
        let face = rustybuzz::Face::from_slice(FONT, 0)
            .ok_or_else(|| PdfError("the bundled font cannot be read".into()))?;
        Ok(Self {
            face,
            pages: vec![Vec::new()],
            y: MARGIN,
        })
    }

    /// The width of `text` at `size`, as the shaper sets it (kerning included).
    fn width(&self, text: &str, size: f32) -> f32 {
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&self.face, &[], buffer);
        let units: i32 = shaped.glyph_positions().iter().map(|p| p.x_advance).sum();
        units as f32 / self.face.units_per_em() as f32 * size
    }

    /// `text` broken into lines no wider than `width`: at spaces, and inside a word only when
    /// the word alone is wider.
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word wider than the column is cut where it must be.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if self.width(&piece, size) > width && piece.chars().count() > 1 {
                    piece.pop();
                    lines.push(std::mem::replace(&mut piece, c.to_string()));
                }
            }
            line = piece;
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn line_height(size: f32) -> f32 {
        size * 1.45
    }

    fn page(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a layout always has a page")
    }

    /// Starts a new page unless `height` still fits on this one; true when it started one.
    fn room(&mut self, height: f32) -> bool {
        if self.y + height <= CONTENT_BOTTOM || self.y <= MARGIN {
            return false;
        }
        self.pages.push(Vec::new());
        self.y = MARGIN;
        true
    }

    fn text_at(&mut self, x: f32, top: f32, size: f32, colour: (u8, u8, u8), text: &str) {
        if text.is_empty() {
            return;
        }
        let text = text.to_string();
        self.page().push(Op::Text {
            x,
            baseline: top + size,
            size,
            colour,
            text,
        });
    }

    fn right_at(&mut self, right: f32, top: f32, size: f32, colour: (u8, u8, u8), text: &str) {
        let x = right - self.width(text, size);
        self.text_at(x, top, size, colour, text);
    }

    /// A paragraph across `width` from `x`, moving down.
    fn paragraph(&mut self, x: f32, width: f32, size: f32, colour: (u8, u8, u8), text: &str) {
        for line in self.wrap(text, size, width) {
            self.room(Self::line_height(size));
            let y = self.y;
            self.text_at(x, y, size, colour, &line);
            self.y += Self::line_height(size);
        }
    }

    /// A block of lines under a small label, from `x` and `top`; returns where it ends.
    fn block(&mut self, x: f32, top: f32, width: f32, label: &str, lines: &[String]) -> f32 {
        let mut y = top;
        self.text_at(x, y, LABEL, MUTED, label);
        y += Self::line_height(LABEL) + 2.0;
        for line in lines {
            for piece in self.wrap(line, BODY, width) {
                self.text_at(x, y, BODY, INK, &piece);
                y += Self::line_height(BODY);
            }
        }
        y
    }

    fn rule(&mut self, from: f32) {
        let y = self.y;
        self.page().push(Op::Rule { from, y });
    }
}

/// Column geometry of the lines table: description, period, amount (right-aligned).
const DESCRIPTION_WIDTH: f32 = CONTENT_WIDTH * 0.40;
const PERIOD_X: f32 = MARGIN + CONTENT_WIDTH * 0.43;
const PERIOD_WIDTH: f32 = CONTENT_WIDTH * 0.40;
const RIGHT: f32 = MARGIN + CONTENT_WIDTH;

fn table_header(layout: &mut Layout, columns: &[String; 3]) {
    let height = Layout::line_height(LABEL) + 6.0;
    let y = layout.y;
    layout.page().push(Op::Band { y, height });
    layout.text_at(MARGIN + 4.0, y + 3.0, LABEL, MUTED, &columns[0]);
    layout.text_at(PERIOD_X, y + 3.0, LABEL, MUTED, &columns[1]);
    layout.right_at(RIGHT - 4.0, y + 3.0, LABEL, MUTED, &columns[2]);
    layout.y += height + 4.0;
}

fn lay_out(sheet: &Sheet) -> Result<Layout, PdfError> {
    let mut layout = Layout::new()?;

    // Heading.
    let top = layout.y;
    layout.text_at(MARGIN, top, HEADING, INK, &sheet.title);
    layout.y += Layout::line_height(HEADING) + 10.0;

    // Seller and buyer side by side.
    let half = CONTENT_WIDTH * 0.47;
    let top = layout.y;
    let left = layout.block(MARGIN, top, half, &sheet.seller_label, &sheet.seller);
    let right = layout.block(
        MARGIN + CONTENT_WIDTH * 0.53,
        top,
        half,
        &sheet.buyer_label,
        &sheet.buyer,
    );
    layout.y = left.max(right) + 14.0;

    // Number, dates, period.
    let label_width = sheet
        .facts
        .iter()
        .map(|(label, _)| layout.width(label, BODY))
        .fold(0.0, f32::max)
        + 12.0;
    for (label, value) in &sheet.facts {
        let lines = layout.wrap(value, BODY, CONTENT_WIDTH - label_width);
        layout.room(Layout::line_height(BODY) * lines.len() as f32);
        let y = layout.y;
        layout.text_at(MARGIN, y, BODY, MUTED, label);
        for (i, line) in lines.iter().enumerate() {
            let line_top = y + i as f32 * Layout::line_height(BODY);
            layout.text_at(MARGIN + label_width, line_top, BODY, INK, line);
        }
        layout.y += Layout::line_height(BODY) * lines.len() as f32;
    }
    layout.y += 14.0;

    // The lines, their header repeated on every page they run onto.
    layout.room(Layout::line_height(LABEL) * 3.0);
    table_header(&mut layout, &sheet.columns);
    for [description, period, amount] in &sheet.lines {
        let description = layout.wrap(description, BODY, DESCRIPTION_WIDTH);
        let period = layout.wrap(period, BODY, PERIOD_WIDTH);
        let rows = description.len().max(period.len());
        let height = Layout::line_height(BODY) * rows as f32 + 6.0;
        if layout.room(height) {
            table_header(&mut layout, &sheet.columns);
        }
        let y = layout.y;
        for (i, line) in description.iter().enumerate() {
            let line_top = y + i as f32 * Layout::line_height(BODY);
            layout.text_at(MARGIN + 4.0, line_top, BODY, INK, line);
        }
        for (i, line) in period.iter().enumerate() {
            let line_top = y + i as f32 * Layout::line_height(BODY);
            layout.text_at(PERIOD_X, line_top, BODY, INK, line);
        }
        layout.right_at(RIGHT - 4.0, y, BODY, INK, amount);
        layout.y += height;
        layout.rule(MARGIN);
        layout.y += 4.0;
    }

    // Totals, right-aligned, the total last and larger.
    layout.y += 4.0;
    let count = sheet.totals.len();
    for (i, (label, amount)) in sheet.totals.iter().enumerate() {
        let last = i + 1 == count;
        let size = if last { TOTAL } else { BODY };
        layout.room(Layout::line_height(size) + 4.0);
        if last {
            layout.y += 2.0;
            let y = layout.y;
            layout.page().push(Op::Rule {
                from: PERIOD_X,
                y: y - 3.0,
            });
        }
        let y = layout.y;
        layout.text_at(PERIOD_X, y, size, if last { INK } else { MUTED }, label);
        layout.right_at(RIGHT - 4.0, y, size, INK, amount);
        layout.y += Layout::line_height(size);
    }
    layout.y += 12.0;

    for note in &sheet.notes {
        layout.paragraph(MARGIN, CONTENT_WIDTH, BODY, INK, note);
        layout.y += 6.0;
    }

    if let Some(label) = &sheet.payment_label {
        layout.y += 6.0;
        layout.room(Layout::line_height(LABEL) + Layout::line_height(BODY) * 2.0);
        let y = layout.y;
        layout.text_at(MARGIN, y, LABEL, MUTED, label);
        layout.y += Layout::line_height(LABEL) + 2.0;
        for line in &sheet.payment {
            layout.paragraph(MARGIN, CONTENT_WIDTH, BODY, INK, line);
        }
    }
    Ok(layout)
}

/// Lays the sheet out and writes the PDF.
pub fn render(sheet: &Sheet) -> Result<Vec<u8>, PdfError> {
    let layout = lay_out(sheet)?;
    let font = Font::new(Data::from(FONT), 0)
        .ok_or_else(|| PdfError("the bundled font cannot be read".into()))?;
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| PdfError("A4 is not a page size".into()))?;
    let (year, month, day) = sheet.issued;
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(sheet.title.clone())
            .language(sheet.language.clone())
            .creation_date(
                DateTime::new(year.clamp(0, 9999) as u16)
                    .month(month)
                    .day(day),
            ),
    );
    let pages = layout.pages.len();
    for (index, ops) in layout.pages.iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        let draw_text = |surface: &mut krilla::surface::Surface,
                         x: f32,
                         baseline: f32,
                         size: f32,
                         colour: (u8, u8, u8),
                         text: &str| {
            surface.set_stroke(None);
            surface.set_fill(Some(Fill {
                paint: rgb::Color::new(colour.0, colour.1, colour.2).into(),
                ..Fill::default()
            }));
            surface.draw_text(
                Point::from_xy(x, baseline),
                font.clone(),
                size,
                text,
                false,
                TextDirection::Auto,
            );
        };
        for op in ops {
            match op {
                Op::Text {
                    x,
                    baseline,
                    size,
                    colour,
                    text,
                } => draw_text(&mut surface, *x, *baseline, *size, *colour, text),
                Op::Rule { from, y } => {
                    surface.set_fill(None);
                    surface.set_stroke(Some(Stroke {
                        paint: rgb::Color::new(RULE.0, RULE.1, RULE.2).into(),
                        width: 0.6,
                        ..Stroke::default()
                    }));
                    let mut path = PathBuilder::new();
                    path.move_to(*from, *y);
                    path.line_to(RIGHT, *y);
                    if let Some(path) = path.finish() {
                        surface.draw_path(&path);
                    }
                }
                Op::Band { y, height } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill {
                        paint: rgb::Color::new(BAND.0, BAND.1, BAND.2).into(),
                        ..Fill::default()
                    }));
                    if let Some(rect) = Rect::from_xywh(MARGIN, *y, CONTENT_WIDTH, *height) {
                        let mut path = PathBuilder::new();
                        path.push_rect(rect);
                        if let Some(path) = path.finish() {
                            surface.draw_path(&path);
                        }
                    }
                }
            }
        }
        // The foot of the page: the seller's small print and the page number.
        let foot = PAGE_HEIGHT - MARGIN;
        let number = sheet
            .page_label
            .replace("%{page}", &(index + 1).to_string())
            .replace("%{pages}", &pages.to_string());
        let footer_width = CONTENT_WIDTH - layout.width(&number, SMALL) - 16.0;
        let footer = layout
            .wrap(&sheet.footer, SMALL, footer_width)
            .into_iter()
            .next()
            .unwrap_or_default();
        draw_text(&mut surface, MARGIN, foot, SMALL, MUTED, &footer);
        let x = RIGHT - layout.width(&number, SMALL);
        draw_text(&mut surface, x, foot, SMALL, MUTED, &number);
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| PdfError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(lines: usize) -> Sheet {
        Sheet {
            title: "Invoice M-000042".into(),
            language: "en".into(),
            issued: (2026, 12, 3),
            seller_label: "From".into(),
            seller: vec!["Example Hosting Oy".into(), "Mannerheimintie 1".into()],
            buyer_label: "Billed to".into(),
            buyer: vec!["ООО Ромашка".into(), "Ελληνική Εταιρεία".into()],
            facts: vec![("Invoice number".into(), "M-000042".into())],
            columns: ["Description".into(), "Period".into(), "Amount".into()],
            lines: (0..lines)
                .map(|i| {
                    [
                        format!("Starter · monthly, line {i}"),
                        "3 December 2026 – 3 January 2027".into(),
                        "€10.00".into(),
                    ]
                })
                .collect(),
            totals: vec![
                ("Subtotal".into(), "€10.00".into()),
                ("Total".into(), "€12.55".into()),
            ],
            notes: vec!["Reverse charge: the customer accounts for the VAT.".into()],
            payment_label: Some("How to pay".into()),
            payment: vec!["IBAN FI21 1234 5600 0007 85".into()],
            footer: "Example Hosting Oy · VAT number FI12345671".into(),
            page_label: "Page %{page} of %{pages}".into(),
        }
    }

    #[test]
    fn long_text_wraps_within_its_width_and_long_words_are_cut() {
        let layout = Layout::new().unwrap();
        let text = "Reverse charge: the customer accounts for the VAT under Article 196 of Directive 2006/112/EC.";
        let lines = layout.wrap(text, BODY, 150.0);
        assert!(lines.len() > 2, "{lines:?}");
        assert!(lines.iter().all(|l| layout.width(l, BODY) <= 150.0));
        assert_eq!(lines.join(" "), text, "nothing lost");
        let word = "x".repeat(200);
        let cut = layout.wrap(&word, BODY, 100.0);
        assert!(cut.len() > 1 && cut.concat() == word);
        assert_eq!(layout.wrap("", BODY, 100.0), vec![String::new()]);
    }

    #[test]
    fn many_lines_run_onto_more_pages() {
        assert_eq!(lay_out(&sheet(3)).unwrap().pages.len(), 1);
        assert!(lay_out(&sheet(80)).unwrap().pages.len() >= 3);
    }

    #[test]
    fn the_same_sheet_makes_the_same_pdf() {
        let pdf = render(&sheet(3)).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(pdf, render(&sheet(3)).unwrap());
        assert_ne!(pdf, render(&sheet(4)).unwrap());
    }
}
