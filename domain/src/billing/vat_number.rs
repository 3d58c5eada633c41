//! EU VAT identification numbers: normalisation and the format of each member state. (A format
//! check only: whether a number is registered is the VIES service's answer, not ours.)

/// The prefix of `country`'s VAT numbers (Greece: EL).
pub fn prefix(country: &str) -> &str {
    if country == "GR" {
        "EL"
    } else {
        country
    }
}

/// Upper case without spaces, dots or dashes, with the country's prefix.
pub fn normalize(country: &str, number: &str) -> String {
    let compact: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '/'))
        .flat_map(char::to_uppercase)
        .collect();
    let prefix = prefix(country);
    if compact.starts_with(prefix) {
        compact
    } else {
        format!("{prefix}{compact}")
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

/// Whether `number` (normalised with [`normalize`]) has the format of `country`'s VAT numbers.
pub fn is_valid_format(country: &str, number: &str) -> bool {
    let Some(body) = number.strip_prefix(prefix(country)) else {
        return false;
    };
    let b = body.as_bytes();
    match country {
        "AT" => body.len() == 9 && b[0] == b'U' && digits(&body[1..], 8),
        "BE" => digits(body, 10) && matches!(b[0], b'0' | b'1'),
        "BG" => digits(body, 9) || digits(body, 10),
        "CY" => body.len() == 9 && digits(&body[..8], 8) && b[8].is_ascii_uppercase(),
        "CZ" => (8..=10).any(|n| digits(body, n)),
        "DE" | "EE" | "GR" | "PT" => digits(body, 9),
        "DK" | "FI" | "HU" | "LU" | "MT" | "SI" => digits(body, 8),
        "ES" => body.len() == 9 && alnum(b[0]) && digits(&body[1..8], 7) && alnum(b[8]),
        "FR" => body.len() == 11 && alnum(b[0]) && alnum(b[1]) && digits(&body[2..], 9),
        "HR" | "IT" | "LV" => digits(body, 11),
        "IE" => {
            body.len() >= 8
                && body.len() <= 9
                && b[0].is_ascii_digit()
                && (alnum(b[1]) || b[1] == b'+' || b[1] == b'*')
                && digits(&body[2..7], 5)
                && b[7..].iter().all(|c| c.is_ascii_uppercase())
        }
        "LT" => digits(body, 9) || digits(body, 12),
        "NL" => body.len() == 12 && digits(&body[..9], 9) && b[9] == b'B' && digits(&body[10..], 2),
        "PL" | "SK" => digits(body, 10),
        "RO" => (2..=10).any(|n| digits(body, n)),
        "SE" => digits(body, 12) && body.ends_with("01"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_the_member_states() {
        for (country, good) in [
            ("AT", "ATU12345678"),
            ("BE", "BE0123456789"),
            ("DE", "DE123456789"),
            ("EL", "EL123456789"),
            ("ES", "ESX1234567X"),
            ("FI", "FI12345678"),
            ("FR", "FRXX123456789"),
            ("IE", "IE1234567WA"),
            ("NL", "NL123456789B01"),
            ("SE", "SE123456789001"),
        ] {
            let country = if country == "EL" { "GR" } else { country };
            assert!(is_valid_format(country, good), "{country} {good}");
        }
        assert!(!is_valid_format("DE", "DE12345678"), "too short");
        assert!(!is_valid_format("AT", "AT12345678"), "no U");
        assert!(!is_valid_format("NL", "NL123456789X01"));
        assert!(!is_valid_format("GR", "GR123456789"), "Greece uses EL");
        assert!(!is_valid_format("US", "US123456789"), "not a member state");
    }

    #[test]
    fn numbers_are_normalised() {
        assert_eq!(normalize("DE", " de 123.456-789 "), "DE123456789");
        assert_eq!(normalize("DE", "123456789"), "DE123456789");
        assert_eq!(normalize("GR", "123456789"), "EL123456789");
        assert_eq!(normalize("NL", "nl123456789b01"), "NL123456789B01");
    }
}
