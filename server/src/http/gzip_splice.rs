//! Gzip with holes: a page that differs between responses only in a few fixed places (the CSP
//! nonce) is compressed once, in segments between the holes, and each response is assembled by
//! writing its own value into the holes as stored (uncompressed) deflate blocks. A response
//! then costs a copy and a CRC, not a compression.
//!
//! Each segment is an independent raw deflate stream ending in a sync flush (byte-aligned, not
//! final) except the last, which is final; a stored block between segments carries the hole's
//! value. Segments do not refer back across a hole, so the decoder's window shift by the hole's
//! length does not matter. The gzip trailer's CRC-32 is combined from the parts' CRCs.

use flate2::{Compress, Compression, FlushCompress, Status};

pub struct SplicedGzip {
    segments: Vec<Vec<u8>>,
    crcs: Vec<crc32fast::Hasher>,
    plain_len: usize,
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn deflate(data: &[u8], last: bool) -> Vec<u8> {
    let mut compressor = Compress::new(Compression::new(6), false);
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        let consumed = compressor.total_in() as usize;
        let before = out.len();
        let status = compressor
            .compress_vec(&data[consumed..], &mut out, flush)
            .expect("deflating into memory cannot fail");
        let all_in = compressor.total_in() as usize == data.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if !last && all_in && room_left && out.len() >= before => break,
            _ => {}
        }
    }
    out
}

impl SplicedGzip {
    /// Compresses `text` with a hole wherever `placeholder` occurs.
    pub fn new(text: &str, placeholder: &str) -> Self {
        let parts: Vec<&str> = text.split(placeholder).collect();
        let last = parts.len() - 1;
        let segments = parts
            .iter()
            .enumerate()
            .map(|(i, p)| deflate(p.as_bytes(), i == last))
            .collect();
        let crcs = parts
            .iter()
            .map(|p| {
                let mut h = crc32fast::Hasher::new();
                h.update(p.as_bytes());
                h
            })
            .collect();
        let plain_len = parts.iter().map(|p| p.len()).sum();
        Self {
            segments,
            crcs,
            plain_len,
        }
    }

    /// The gzip body with `value` in every hole (at most 65,535 bytes, one stored block).
    pub fn render(&self, value: &str) -> Vec<u8> {
        let value = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
        let holes = self.segments.len() - 1;
        let compressed: usize = self.segments.iter().map(Vec::len).sum();
        let mut out =
            Vec::with_capacity(GZIP_HEADER.len() + compressed + holes * (5 + value.len()) + 8);
        out.extend_from_slice(&GZIP_HEADER);
        let mut value_crc = crc32fast::Hasher::new();
        value_crc.update(value);
        let mut crc = crc32fast::Hasher::new();
        let len = value.len() as u16;
        for (i, segment) in self.segments.iter().enumerate() {
            out.extend_from_slice(segment);
            crc.combine(&self.crcs[i]);
            if i < holes {
                // A stored block: BFINAL=0, BTYPE=00 (the rest of the byte is padding), LEN, NLEN.
                out.push(0);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&(!len).to_le_bytes());
                out.extend_from_slice(value);
                crc.combine(&value_crc);
            }
        }
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&((self.plain_len + holes * value.len()) as u32).to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .expect("valid gzip");
        text
    }

    #[test]
    fn decodes_to_the_page_with_the_value_in_every_hole() {
        let page = format!(
            "<html>{}<script nonce=\"HOLE\">boot()</script>{}<script nonce=\"HOLE\"></script>HOLE",
            "lorem ipsum ".repeat(500),
            "dolor sit amet ".repeat(300)
        );
        let spliced = SplicedGzip::new(&page, "HOLE");
        for nonce in [
            "abc123",
            "x",
            "",
            "a-much-longer-nonce-value-with-44-characters",
        ] {
            let body = spliced.render(nonce);
            assert_eq!(gunzip(&body), page.replace("HOLE", nonce));
        }
        assert!(
            spliced.render("n").len() < page.len() / 10,
            "still compressed"
        );
    }

    #[test]
    fn works_without_holes_and_with_holes_at_the_edges() {
        for page in [
            "",
            "HOLE",
            "HOLEHOLE",
            "plain text without holes",
            "HOLE middle HOLE",
        ] {
            let spliced = SplicedGzip::new(page, "HOLE");
            assert_eq!(
                gunzip(&spliced.render("nonce")),
                page.replace("HOLE", "nonce"),
                "{page:?}"
            );
        }
    }
}
