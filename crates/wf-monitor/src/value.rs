//! Rendering stored values, which are not self-describing: "decoded where possible, hex
//! otherwise". Shared by the monitor's pages and the `wf` inspector.
//!
//! Every value `wf` stores is `wf_core::codec::encode` output: a format-version byte, then
//! bincode. The bytes do not say which type wrote them, so the inspector tries a few common types
//! in a fixed order and shows the first that consumes the bytes exactly (see [`HEURISTIC`]).

use serde_json::{Value, json};
use wf_core::codec::decode;
use wf_core::uuid::Uuid;

/// The decoding heuristic, as shown in `--help`.
pub const HEURISTIC: &str = "\
Stored values carry no type, so they are shown by a heuristic: the first of these that decodes \
the bytes exactly wins:
  1. no payload                      ()
  2. a printable UTF-8 string        \"text\"
  3. one integer                     42 (or signed 21)  - integers are stored zigzag when signed, \
so both readings are shown; 0 and 1 may also be false and true
  4. a UUID                          0193c4e2-...
  5. a float of plausible size       3.25
  6. anything else                   hex:01a2b3... (N bytes), the raw stored bytes
Structs, tuples and enums show as hex; decode them with the type that wrote them \
(`wf_core::codec::decode`).";

/// How many bytes of an undecoded value a table shows.
const HEX_PREVIEW: usize = 24;

/// A stored value as the inspector shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    kind: &'static str,
    text: String,
    json: Value,
    signed: Option<i64>,
    len: usize,
    hex: Option<String>,
}

impl Rendered {
    /// What it decoded as: `unit`, `string`, `integer`, `uuid`, `float` or `bytes`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The value for a table, cut to about `max` characters (`None`: whole).
    pub fn text(&self, max: Option<usize>) -> String {
        match (&self.hex, max) {
            (Some(hex), None) => format!("hex:{hex} ({} bytes)", self.len),
            (Some(_), Some(_)) | (None, None) => self.text.clone(),
            (None, Some(max)) => clip(&self.text, max),
        }
    }

    /// The value for `--json`: `{"type", "value", "bytes"}`, plus `"signed"` for integers and
    /// `"hex"` (all bytes) for values that did not decode.
    pub fn json(&self) -> Value {
        let mut v = json!({ "type": self.kind, "value": self.json, "bytes": self.len });
        if let (Some(s), Some(map)) = (self.signed, v.as_object_mut()) {
            map.insert("signed".into(), json!(s));
        }
        if let (Some(h), Some(map)) = (&self.hex, v.as_object_mut()) {
            map.insert("hex".into(), json!(h));
        }
        v
    }
}

/// Decodes `bytes` by the heuristic in [`HEURISTIC`].
pub fn render(bytes: &[u8]) -> Rendered {
    let len = bytes.len();
    let plain = |kind, text: String, json| Rendered {
        kind,
        text,
        json,
        signed: None,
        len,
        hex: None,
    };
    if decode::<()>(bytes).is_ok() {
        return plain("unit", "()".into(), Value::Null);
    }
    if let Ok(s) = decode::<String>(bytes)
        && !s.is_empty()
        && printable(&s)
    {
        return plain("string", format!("{s:?}"), json!(s));
    }
    if let Ok(u) = decode::<u64>(bytes) {
        let s = (u >> 1) as i64 ^ -((u & 1) as i64);
        let text = match u {
            0 => "0 (or false)".to_owned(),
            1 => "1 (or true, or signed -1)".to_owned(),
            _ => format!("{u} (or signed {s})"),
        };
        return Rendered {
            signed: Some(s),
            ..plain("integer", text, json!(u))
        };
    }
    if let Ok(u) = decode::<Uuid>(bytes) {
        return plain("uuid", u.to_string(), json!(u.to_string()));
    }
    if let Ok(f) = decode::<f64>(bytes)
        && f.is_finite()
        && (f == 0.0 || (1e-9..=1e15).contains(&f.abs()))
    {
        return plain("float", format!("{f:?}"), json!(f));
    }
    let hex = hex(bytes);
    let preview = match len > HEX_PREVIEW {
        true => format!("hex:{}… ({len} bytes)", &hex[..HEX_PREVIEW * 2]),
        false => format!("hex:{hex} ({len} bytes)"),
    };
    Rendered {
        hex: Some(hex),
        ..plain("bytes", preview, Value::Null)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Text without control characters other than ordinary whitespace.
fn printable(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
}

/// `s` cut to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wf_core::codec::encode;

    fn show<T: serde::Serialize>(v: &T) -> (String, &'static str) {
        let r = render(&encode(v).unwrap());
        (r.text(None), r.kind)
    }

    #[test]
    fn common_values_read_naturally() {
        assert_eq!(show(&()), ("()".into(), "unit"));
        assert_eq!(show(&"shipped"), ("\"shipped\"".into(), "string"));
        assert_eq!(show(&"a\nb"), ("\"a\\nb\"".into(), "string"));
        assert_eq!(show(&300u64), ("300 (or signed 150)".into(), "integer"));
        assert_eq!(show(&-3i32), ("5 (or signed -3)".into(), "integer"));
        assert_eq!(show(&true), ("1 (or true, or signed -1)".into(), "integer"));
        assert_eq!(show(&0u8), ("0 (or false)".into(), "integer"));
        assert_eq!(show(&3.25f64), ("3.25".into(), "float"));
        let u = Uuid::from_u128(0x0193_c4e2_0000_7000_8000_0000_0000_0001);
        assert_eq!(show(&u), (u.to_string(), "uuid"));
    }

    #[test]
    fn everything_else_is_hex() {
        let (text, kind) = show(&(1u8, "x".to_owned(), vec![1u16, 2]));
        assert_eq!(kind, "bytes");
        assert!(text.starts_with("hex:01"), "{text}");
        let big = render(&encode(&vec![7u8; 100]).unwrap());
        assert!(
            big.text(Some(80)).ends_with("(102 bytes)"),
            "{}",
            big.text(Some(80))
        );
        assert_eq!(big.json()["hex"].as_str().map(str::len), Some(204));
        assert_eq!(render(&[]).kind, "bytes");
        assert_eq!(render(&[9, 9]).kind, "bytes");
    }

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip("héllo", 3), "hél…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
