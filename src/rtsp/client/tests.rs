use super::*;

#[test]
fn session_header_forms() {
    assert_eq!(
        parse_session_header("12345678;timeout=60"),
        Some(("12345678".into(), Some(Duration::from_secs(60))))
    );
    // Quirk: trailing semicolon and whitespace.
    assert_eq!(parse_session_header("abc; "), Some(("abc".into(), None)));
    assert_eq!(
        parse_session_header(" abc ;timeout = 30;"),
        Some(("abc".into(), Some(Duration::from_secs(30))))
    );
    assert_eq!(parse_session_header(";timeout=3"), None);
    assert_eq!(
        parse_session_header("x;timeout=bogus"),
        Some(("x".into(), None))
    );
}

#[test]
fn transport_reply_forms() {
    let t = parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=DEADBEEF;mode=\"PLAY\"");
    assert_eq!(t.interleaved, Some((2, 3)));
    assert_eq!(t.ssrc, Some(0xdead_beef));
    assert!(!t.udp);
    let t = parse_transport("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971;");
    assert!(t.udp);
    assert_eq!(t.interleaved, None);
    assert_eq!(
        parse_transport("RTP/AVP/TCP;interleaved=4").interleaved,
        Some((4, 5))
    );
    assert_eq!(parse_transport("garbage;;;=").interleaved, None);
}

#[test]
fn server_requests_get_answers() {
    let req = Request::builder(Method::GetParameter, Version::V1_0)
        .request_uri(Url::parse("rtsp://h/").unwrap())
        .header(headers::CSEQ, "7 ")
        .build(Vec::new());
    let out = String::from_utf8(reply_to_server(&req)).unwrap();
    assert!(out.starts_with("RTSP/1.0 200"), "{out}");
    assert!(out.contains("CSeq: 7\r\n"), "{out}");
    let req = Request::builder(Method::Announce, Version::V1_0)
        .request_uri(Url::parse("rtsp://h/").unwrap())
        .build(Vec::new());
    let out = String::from_utf8(reply_to_server(&req)).unwrap();
    assert!(out.starts_with("RTSP/1.0 501"), "{out}");
}
