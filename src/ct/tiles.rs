//! static-ct-api tile addressing and the data-tile entry format.

/// Hashes per full tile.
pub(crate) const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub(crate) const TILE_HEIGHT: u8 = 8;

/// `tile/<L>/<N>[.p/<W>]` path component for index `n`: three-digit groups, all but the
/// last prefixed with `x` (1234067 -> `x001/x234/067`).
pub fn encode_index(n: u64) -> String {
    let mut groups = Vec::new();
    let mut v = n;
    loop {
        groups.push(v % 1000);
        v /= 1000;
        if v == 0 {
            break;
        }
    }
    groups.reverse();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i == last {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses the path after `tile/<L>/` or `tile/data/`: `N` groups and an optional
/// `.p/<W>` width. Returns (index, width) with width 256 for full tiles.
pub(crate) fn decode_path(path: &str) -> Option<(u64, u64)> {
    let (index_part, width) = match path.split_once(".p/") {
        Some((i, text)) => {
            let w: u64 = text.parse().ok()?;
            // Canonical decimal only: no leading zeros, no sign.
            if !(1..TILE_WIDTH).contains(&w) || w.to_string() != text {
                return None;
            }
            (i, w)
        }
        None => (path, TILE_WIDTH),
    };
    let groups: Vec<&str> = index_part.split('/').collect();
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() {
            g.strip_prefix('x')?
        } else {
            g
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    if encode_index(n) != index_part {
        return None;
    }
    Some((n, width))
}

/// The tile path for a tile (data tiles use level `None`); [`decode_path`] reads back the part after the level.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn path(level: Option<u8>, index: u64, width: u64) -> String {
    let l = level
        .map(|l| l.to_string())
        .unwrap_or_else(|| "data".into());
    if width == TILE_WIDTH {
        format!("tile/{l}/{}", encode_index(index))
    } else {
        format!("tile/{l}/{}.p/{width}", encode_index(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding() {
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(3), "003");
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(decode_path("x001/x234/067"), Some((1234067, 256)));
        assert_eq!(decode_path("003.p/10"), Some((3, 10)));
        assert_eq!(decode_path("3"), None);
        assert_eq!(decode_path("001/234"), None);
        assert_eq!(decode_path("x000/001"), None, "non-canonical leading group");
        assert_eq!(decode_path("003.p/0"), None);
        assert_eq!(decode_path("003.p/256"), None);
        assert_eq!(decode_path("003.p/07"), None);
        assert_eq!(path(Some(0), 3, 10), "tile/0/003.p/10");
        assert_eq!(path(None, 1234067, 256), "tile/data/x001/x234/067");
    }
}
