use super::*;

fn fake_jpeg(len: usize, seed: usize) -> Vec<u8> {
    let mut j = vec![0xff, 0xd8];
    j.extend((0..len.saturating_sub(4)).map(|i| ((i * 31 + seed) % 251) as u8));
    j.extend_from_slice(&[0xff, 0xd9]);
    j
}

#[test]
fn parts_parse_back() {
    let jpegs: Vec<Vec<u8>> = [100, 8192, 8191, 30_000, 5, 70_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| fake_jpeg(n, i))
        .collect();
    let mut out = Vec::new();
    for (i, j) in jpegs.iter().enumerate() {
        part_head(i == 0, j.len(), &mut out);
        out.extend_from_slice(j);
        part_tail(&mut out);
    }
    let delim = format!("--{BOUNDARY}\r\n");
    assert!(out.starts_with(delim.as_bytes()));
    assert!(CONTENT_TYPE.ends_with(&format!("boundary={BOUNDARY}")));
    // Walk it as a client would: boundary line, headers, Content-Length
    // bytes, CRLF, the next boundary line (already there: the part is
    // complete without waiting for the next).
    let mut at = delim.len();
    for j in &jpegs {
        let head_end = at + out[at..].windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&out[at..head_end]).unwrap();
        assert_eq!(
            head,
            format!("Content-Type: image/jpeg\r\nContent-Length: {}", j.len())
        );
        let body = head_end + 4;
        assert_eq!(&out[body..body + j.len()], &j[..]);
        at = body + j.len();
        assert!(out[at..].starts_with(format!("\r\n{delim}").as_bytes()));
        at += 2 + delim.len();
    }
    assert_eq!(at, out.len());
}
