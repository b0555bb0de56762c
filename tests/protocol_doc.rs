//! The byte examples of docs/protocol.md are checked, so they cannot drift
//! from the implementation: every code span that is a list of hex bytes
//! (`91 82 a2 ...`, possibly broken over lines) is either a msgpack body
//! (a batch of messages that decodes without an error) or part of a wire
//! message's header; in each paragraph, the header spans in order followed
//! by the body make exactly one wire message whose body frame is that body.

use rask::protocol::{decode_batch, Limits, WireMessage};

fn hex_spans(paragraph: &str) -> Vec<Vec<u8>> {
    let parts: Vec<&str> = paragraph.split('`').collect();
    // Code spans are the odd parts.
    parts
        .iter()
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let bytes: Vec<&str> = span.split_whitespace().collect();
            let is_hex = bytes.len() >= 2
                && bytes
                    .iter()
                    .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
            is_hex.then(|| {
                bytes
                    .iter()
                    .map(|b| u8::from_str_radix(b, 16).unwrap())
                    .collect()
            })
        })
        .collect()
}

fn is_body(bytes: &[u8]) -> bool {
    let w = WireMessage {
        frames: vec![bytes::Bytes::copy_from_slice(bytes)],
    };
    match decode_batch(&w) {
        Ok(msgs) => !msgs.is_empty() && msgs.iter().all(|m| m.is_ok()),
        Err(_) => false,
    }
}

#[test]
fn every_hex_example_in_protocol_md_decodes() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md"),
    )
    .unwrap();
    let mut bodies = 0;
    for paragraph in doc.split("\n\n") {
        let spans = hex_spans(paragraph);
        if spans.is_empty() {
            continue;
        }
        let (body, header): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            spans.into_iter().partition(|s| is_body(s));
        assert!(
            body.len() == 1,
            "a paragraph with hex bytes has {} msgpack bodies (one expected): {paragraph}",
            body.len()
        );
        bodies += 1;
        let body = &body[0];
        if header.is_empty() {
            continue;
        }
        let mut wire: Vec<u8> = header.concat();
        wire.extend_from_slice(body);
        let (m, used) = WireMessage::from_slice(&wire, &Limits::default())
            .unwrap_or_else(|e| panic!("not a wire message: {e:?}: {paragraph}"))
            .unwrap_or_else(|| panic!("an incomplete wire message: {paragraph}"));
        assert_eq!(used, wire.len(), "bytes left over: {paragraph}");
        assert_eq!(m.frames.len(), 1, "{paragraph}");
        assert_eq!(&m.frames[0][..], &body[..], "{paragraph}");
    }
    assert!(bodies >= 1, "no hex example found in docs/protocol.md");
}

/// protocol.md gives one `nbytes` figure for an int, in `task-finished` and
/// in every result of "A complete exchange": the estimate rask's workers
/// send (`Value::size_estimate`).
#[test]
fn protocol_md_gives_the_workers_nbytes_of_an_int() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md"),
    )
    .unwrap();
    let figure = rask::Value::Int(13).size_estimate();
    let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let rule =
        format!("rask's workers estimate {figure} bytes for a nil, bool, int, uint or float");
    assert!(flat.contains(&rule), "protocol.md does not say: {rule}");
    let mut seen = 0;
    for (at, _) in doc.match_indices("nbytes: ") {
        let digits: String = doc[at + 8..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert_eq!(
            digits.parse::<usize>().ok(),
            Some(figure),
            "an int's nbytes in protocol.md is {digits:?}, rask's workers send {figure}: {}",
            &doc[at..(at + 40).min(doc.len())]
        );
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} `nbytes: N` in protocol.md");
}

/// The error codes table of docs/protocol.md ("Errors") lists exactly the
/// codes of `ErrorCode`, in its order, with whether the connection stays.
#[test]
fn the_error_code_table_is_the_error_code_enum() {
    use rask::protocol::ErrorCode;
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md"),
    )
    .unwrap();
    let table = doc
        .split("\n\n")
        .find(|p| p.starts_with("| code | sent when | connection |"))
        .expect("the error code table in docs/protocol.md");
    let rows: Vec<(String, String)> = table
        .lines()
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let code = cells[0].trim_start_matches("| ").trim_matches('`');
            let conn = cells.last().unwrap().trim_end_matches(" |");
            (code.to_string(), conn.to_string())
        })
        .collect();
    let want: Vec<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| {
            let conn = if c.closes_connection() {
                "closed"
            } else {
                "kept"
            };
            (c.as_str().to_string(), conn.to_string())
        })
        .collect();
    assert_eq!(rows, want);
    for c in ErrorCode::ALL {
        assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
    }
    assert_eq!(ErrorCode::parse("from-a-newer-peer"), None);
}
