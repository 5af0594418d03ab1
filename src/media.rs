//! What the server does with the bytes of files: which types a browser may show inline, the
//! headers a download is sent with, and thumbnails of images — made once, at upload, with the
//! decoding bounded so that a small file claiming enormous dimensions (a decompression bomb)
//! is never decoded.

use std::{io::Cursor, sync::LazyLock};

use image::{ImageReader, Limits, codecs::jpeg::JpegEncoder};
use tokio::sync::Semaphore;

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 400;
/// Images with more pixels than this get no thumbnail (decoding them costs too much memory).
pub const MAX_PIXELS: u64 = 16_000_000;
/// Images larger than this (bytes) get no thumbnail.
pub const MAX_THUMBNAIL_SOURCE: i64 = 16 * 1024 * 1024;

/// Thumbnails made at once: decoding takes tens of megabytes, so one at a time.
pub static THUMBNAILS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(1));

/// The image types a browser may show inline (everything else is a download).
pub fn is_inline_image(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// `inline` or `attachment`, with the name (RFC 6266: an ASCII fallback and the UTF-8 name).
pub fn content_disposition(content_type: &str, name: &str) -> String {
    let kind = if is_inline_image(content_type) {
        "inline"
    } else {
        "attachment"
    };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// A JPEG thumbnail at most [`THUMBNAIL_SIDE`] pixels on its longest side, or `None` when the
/// bytes are not an image this server reads, or claim more than [`MAX_PIXELS`].
pub fn thumbnail(bytes: &[u8]) -> Option<Vec<u8>> {
    let limits = {
        let mut limits = Limits::default();
        limits.max_image_width = Some(20_000);
        limits.max_image_height = Some(20_000);
        limits.max_alloc = Some(128 * 1024 * 1024);
        limits
    };
    let reader = || {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .ok()?;
        reader.limits(limits.clone());
        Some(reader)
    };
    // The header alone first: a bomb stops here.
    let (width, height) = reader()?.into_dimensions().ok()?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return None;
    }
    let image = reader()?.decode().ok()?;
    // Shrunk to fit, never enlarged.
    let small = if width <= THUMBNAIL_SIDE && height <= THUMBNAIL_SIDE {
        image.to_rgb8()
    } else {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgb8()
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn thumbnails_fit_in_400_pixels_and_keep_their_shape() {
        let thumb = thumbnail(&png(1200, 600)).unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (400, 200));
        let small = image::load_from_memory(&thumbnail(&png(40, 30)).unwrap()).unwrap();
        assert_eq!((small.width(), small.height()), (40, 30), "never enlarged");
    }

    /// CRC-32 (IEEE), as PNG chunks carry.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A valid PNG claiming `side` x `side` pixels, with the data of one pixel.
    pub fn bomb(side: u32) -> Vec<u8> {
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&side.to_be_bytes());
        bomb[20..24].copy_from_slice(&side.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        bomb
    }

    #[test]
    fn a_bomb_is_not_decoded_and_garbage_gets_nothing() {
        let bomb = bomb(50_000);
        assert!(bomb.len() < 1024);
        let (w, h) = ImageReader::new(Cursor::new(&bomb))
            .with_guessed_format()
            .unwrap()
            .into_dimensions()
            .unwrap();
        assert_eq!(
            (w, h),
            (50_000, 50_000),
            "the header is valid and claims it"
        );
        assert_eq!(thumbnail(&bomb), None);
        assert_eq!(thumbnail(b"not an image"), None);
    }

    #[test]
    fn only_four_image_types_are_inline() {
        assert!(is_inline_image("image/PNG"));
        assert!(is_inline_image("image/jpeg; charset=x"));
        assert!(!is_inline_image("image/svg+xml"));
        assert!(!is_inline_image("text/html"));
        assert_eq!(
            content_disposition("text/html", "rapport été \"2026\".html"),
            "attachment; filename=\"rapport _t_ _2026_.html\"; \
             filename*=UTF-8''rapport%20%C3%A9t%C3%A9%20%222026%22.html"
        );
    }
}
