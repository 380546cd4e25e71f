use super::*;

/// tiny_http 0.12's chunked encoder as far as timing goes: it buffers up
/// to CHUNK bytes and sends the full buffer only when a write brings more
/// than fits.
struct ChunkModel {
    buffered: usize,
    sent: usize,
}

impl ChunkModel {
    fn write(&mut self, n: usize) {
        let mut n = n;
        while n > 0 {
            let room = CHUNK as usize - self.buffered;
            let take = room.min(n);
            self.buffered += take;
            n -= take;
            if n > 0 {
                self.sent += self.buffered;
                self.buffered = 0;
            }
        }
    }
}

/// A body of parts made the way a viewer makes them.
fn body(jpegs: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    // Where each part's closing boundary line ends.
    let mut closed_at = Vec::new();
    for (i, j) in jpegs.iter().enumerate() {
        let mut head = Vec::new();
        part_head(i == 0, j.len(), &mut head);
        out.extend_from_slice(&head);
        out.extend_from_slice(j);
        let mut tail = Vec::new();
        part_tail(out.len() as u64, &mut tail);
        closed_at.push(out.len() + 2 + 2 + BOUNDARY.len() + 2);
        out.extend_from_slice(&tail);
    }
    (out, closed_at)
}

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
    let (out, _) = body(&jpegs);
    let delim = format!("--{BOUNDARY}\r\n");
    assert!(out.starts_with(delim.as_bytes()));
    // Walk it as a client would: boundary line, headers, Content-Length
    // bytes, CRLF, the next boundary line.
    let mut at = delim.len();
    for j in &jpegs {
        let head_end = at + out[at..].windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&out[at..head_end]).unwrap();
        let mut len = None;
        let mut ctype = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
            assert!(line.len() <= PAD_LINE + 2, "{}", line.len());
            match k {
                "Content-Length" => len = Some(v.parse::<usize>().unwrap()),
                "Content-Type" => ctype = Some(v),
                "X-Pad" => assert!(v.bytes().all(|b| b == b'.')),
                _ => panic!("unexpected header {k}"),
            }
        }
        assert_eq!(ctype, Some("image/jpeg"));
        let len = len.unwrap();
        assert_eq!(len, j.len());
        let body = head_end + 4;
        assert_eq!(&out[body..body + len], &j[..]);
        at = body + len;
        assert!(out[at..].starts_with(format!("\r\n{delim}").as_bytes()));
        at += 2 + delim.len();
    }
    // What is left is the start of the next part's headers.
    assert!(out[at..].ends_with(PART_TYPE));
}

#[test]
fn each_picture_leaves_the_chunk_buffer_whole() {
    // Picture sizes around every residue of the chunk size, written in
    // pieces of various sizes: after each part, every byte up to its
    // closing boundary has been sent.
    let sizes: Vec<usize> = (0..64).map(|i| 3000 + i * 1237).collect();
    let jpegs: Vec<Vec<u8>> = sizes.iter().map(|&n| fake_jpeg(n, n)).collect();
    let (out, closed_at) = body(&jpegs);
    for piece in [1usize, 1000, 4096, 8192, 65536] {
        let mut m = ChunkModel {
            buffered: 0,
            sent: 0,
        };
        let mut written = 0;
        let mut parts = closed_at.iter();
        let mut next = parts.next();
        // Part boundaries: where each tail ends.
        let mut ends = Vec::new();
        {
            let mut acc = 0;
            for j in &jpegs {
                let mut head = Vec::new();
                part_head(acc == 0, j.len(), &mut head);
                let mut tail = Vec::new();
                part_tail((acc + head.len() + j.len()) as u64, &mut tail);
                acc += head.len() + j.len() + tail.len();
                ends.push(acc);
            }
        }
        for &end in &ends {
            while written < end {
                let n = piece.min(end - written);
                m.write(n);
                written += n;
            }
            let closed = *next.unwrap();
            assert!(
                m.sent >= closed,
                "piece {piece}: part closing at {closed} not sent (sent {})",
                m.sent
            );
            // At most a chunk of padding per part.
            next = parts.next();
        }
        assert_eq!(written, out.len());
    }
    // The padding costs less than a chunk per part.
    let bare: usize = jpegs.iter().map(|j| j.len() + 80).sum();
    assert!(out.len() < bare + jpegs.len() * CHUNK as usize);
}
