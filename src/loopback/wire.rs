//! HTTP/1.1 requests and responses on the wire (just what the loopback server needs).

use std::io::{BufRead, Write};

/// A parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub range_header: Option<String>,
    pub host: String,
    /// (start, end exclusive) of a single `bytes=a-b` range
    pub range: Option<(u64, u64)>,
    pub body: Vec<u8>,
}

/// Reads one request; `None` when the client closed the connection.
pub(crate) fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut range_header = None;
    let mut host = String::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range_header = Some(v.trim().to_string()),
                "host" => host = v.trim().to_string(),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length.min(16 << 20)];
    r.read_exact(&mut body)?;
    let range = range_header.as_deref().and_then(parse_range);
    Ok(Some(Request {
        method,
        path,
        query,
        range_header,
        host,
        range,
        body,
    }))
}

/// `bytes=a-b` → (a, b + 1). Open-ended and suffix forms are answered whole.
fn parse_range(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = b.trim().parse().ok()?;
    (b >= a).then_some((a, b + 1))
}

/// A response ready to write.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn json(value: &serde_json::Value) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/geo+json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// A file, or the part a Range header asks for (206), or 416 past its end.
    pub fn file(bytes: &[u8], range: Option<&str>) -> Response {
        Response::ranged(bytes.len() as u64, range, |r| {
            Ok(bytes[r.start as usize..r.end as usize].to_vec())
        })
        .unwrap_or_else(|_| Response::status(500, "read failed"))
    }

    /// Like [`file`](Self::file) for an object of `len` bytes whose parts `read` returns, so
    /// only the bytes asked for are read.
    pub fn ranged(
        len: u64,
        range: Option<&str>,
        read: impl FnOnce(std::ops::Range<u64>) -> std::io::Result<Vec<u8>>,
    ) -> std::io::Result<Response> {
        let Some((a, b)) = range.and_then(parse_range) else {
            return Ok(Response {
                status: 200,
                headers: vec![("Accept-Ranges".into(), "bytes".into())],
                body: read(0..len)?,
            });
        };
        if a >= len {
            return Ok(Response {
                status: 416,
                headers: vec![("Content-Range".into(), format!("bytes */{len}"))],
                body: Vec::new(),
            });
        }
        let b = b.min(len);
        Ok(Response {
            status: 206,
            headers: vec![("Content-Range".into(), format!("bytes {a}-{}/{len}", b - 1))],
            body: read(a..b)?,
        })
    }

    /// Writes status line, headers (with Content-Length) and body.
    pub fn write_to(&self, w: &mut impl Write, head_only: bool) -> std::io::Result<()> {
        self.write_partial(w, self.body.len(), head_only, 0)
    }

    /// Declares the whole body's length but writes only `send` bytes of it (a cut body), at
    /// most `bandwidth` bytes per second (0: as fast as the socket takes them).
    pub fn write_partial(
        &self,
        w: &mut impl Write,
        send: usize,
        head_only: bool,
        bandwidth: u64,
    ) -> std::io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        // Head and body go out separately: copying a multi-megabyte body into one buffer
        // would cost the server (which shares the benchmark's cores) a memcpy per request.
        w.write_all(head.as_bytes())?;
        if head_only {
            return w.flush();
        }
        let body = &self.body[..send.min(self.body.len())];
        if bandwidth == 0 {
            w.write_all(body)?;
            return w.flush();
        }
        // Paced: a piece every 10 ms, each sent when the rate allows.
        w.flush()?;
        let piece = (bandwidth / 100).max(1024) as usize;
        let began = std::time::Instant::now();
        let mut sent = 0usize;
        for part in body.chunks(piece) {
            let due = std::time::Duration::from_secs_f64(sent as f64 / bandwidth as f64);
            if let Some(wait) = due.checked_sub(began.elapsed()) {
                std::thread::sleep(wait);
            }
            w.write_all(part)?;
            w.flush()?;
            sent += part.len();
        }
        Ok(())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
