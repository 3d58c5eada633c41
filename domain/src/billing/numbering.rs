//! Invoice numbers: one counter row per series, taken in the transaction that issues the
//! document. Two invoices issued at once wait for each other on the counter row, so numbers are
//! consecutive with no gap (a transaction that fails gives its number back by rolling back) and
//! no duplicate. A later series (credit notes, say) adds a row, not a mechanism.

use crate::{db::Tx, on_tx};

/// A numbered series of billing documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Invoices for bank transfer, issued by the portal: `M-000001`, …
    Manual,
}

impl Series {
    fn key(self) -> &'static str {
        match self {
            Series::Manual => "M",
        }
    }

    /// How a number of this series is written.
    pub fn format(self, n: i64) -> String {
        format!("{}-{n:06}", self.key())
    }
}

/// Takes the next number of `series`, inside `tx`.
pub async fn next(tx: &mut Tx, series: Series) -> Result<String, sqlx::Error> {
    let key = series.key();
    let n: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO invoice_number_series (series, last_number) VALUES ($1, 1) \
         ON CONFLICT (series) DO UPDATE SET last_number = invoice_number_series.last_number + 1 \
         RETURNING last_number",
    )
    .bind(key)
    .fetch_one(conn)
    .await)?;
    Ok(series.format(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_with_six_digits_after_the_series() {
        assert_eq!(Series::Manual.format(1), "M-000001");
        assert_eq!(Series::Manual.format(1234567), "M-1234567");
    }
}
