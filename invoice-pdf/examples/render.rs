//! Prints how long one three-line invoice PDF takes to render (p50 and p99 of 200 renders), for
//! `bench/invoices.sh`. Not a test: nothing here asserts a time. With a file name
//! (`cargo run -p invoice-pdf --example render -- sample.pdf`), also writes the sample there,
//! to look at.

use invoice_pdf::{render, Sheet};
use std::time::Instant;

fn main() {
    let sheet = Sheet {
        title: "Invoice M-000042".into(),
        language: "en".into(),
        issued: (2026, 12, 3),
        seller_label: "From".into(),
        seller: vec![
            "Example Hosting Oy".into(),
            "Mannerheimintie 1".into(),
            "00100 Helsinki".into(),
            "Finland".into(),
            "VAT number FI12345671".into(),
        ],
        buyer_label: "Billed to".into(),
        buyer: vec![
            "ООО Ромашка".into(),
            "1 Main Street".into(),
            "12345 Town".into(),
        ],
        facts: vec![
            ("Invoice number".into(), "M-000042".into()),
            ("Date of issue".into(), "3 December 2026".into()),
            ("Due date".into(), "17 December 2026".into()),
        ],
        columns: ["Description".into(), "Period".into(), "Amount".into()],
        // Three lines: a plan change's two prorated lines and the next period.
        lines: vec![
            [
                "Starter · monthly (change of plan, for the rest of the period)".into(),
                "3 December 2026 – 3 January 2027".into(),
                "−€8.06".into(),
            ],
            [
                "Business · monthly (change of plan, for the rest of the period)".into(),
                "3 December 2026 – 3 January 2027".into(),
                "€40.32".into(),
            ],
            [
                "Business · monthly".into(),
                "3 January 2027 – 3 February 2027".into(),
                "€50".into(),
            ],
        ],
        totals: vec![
            ("Subtotal".into(), "€82.26".into()),
            ("Total".into(), "€82.26".into()),
        ],
        notes: vec![
            "Not subject to EU VAT: services supplied to a customer outside the European Union."
                .into(),
        ],
        payment_label: Some("How to pay".into()),
        payment: vec!["IBAN FI21 1234 5600 0007 85".into()],
        footer: "Example Hosting Oy · VAT number FI12345671".into(),
        page_label: "Page %{page} of %{pages}".into(),
    };
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let started = Instant::now();
            let pdf = render(&sheet).expect("the sample renders");
            std::hint::black_box(pdf);
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let pdf = render(&sheet).expect("the sample renders");
    if let Some(path) = std::env::args().nth(1) {
        std::fs::write(&path, &pdf).expect("the sample PDF is written");
    }
    let size = pdf.len();
    println!(
        "  p50 {:.2} ms   p99 {:.2} ms   ({} bytes, 200 renders)",
        times[100], times[197], size
    );
}
