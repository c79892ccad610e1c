//! Reading the raw HTTP/1.1 responses of the harness's one-shot probes (plain and mTLS alike).

/// The status and the body (assumed not chunked) of a raw HTTP/1.1 response read until the connection closed.
pub fn parse_response(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| invalid("no response head"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("no status code"))?;
    Ok((status, raw[head_end + 4..].to_vec()))
}
