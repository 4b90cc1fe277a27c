//! Splitting a TCP byte stream into SIP messages (RFC 3261 §18.3): the
//! header section ends at the first empty line, and Content-Length (required
//! on streams; absent means 0) gives the body length. The tokio driver keeps
//! one [`StreamFramer`] per connection and hands each complete message to
//! `Endpoint::handle_datagram` with `Transport::Tcp(conn)`.

use super::message::{MAX_MESSAGE, find_header_end, parse_decimal};

/// What the framer found in the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message.
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §3.5.1); answer with CRLF.
    Ping,
}

/// The stream cannot be resynchronised; close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    TooLarge,
    BadContentLength,
}

#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if any. Call until `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        // Leading CRLFs between messages: a double CRLF is a ping.
        let lead = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if lead > 0 {
            let ping = self.buf[..lead].windows(4).any(|w| w == b"\r\n\r\n");
            if lead == self.buf.len() && !ping {
                // Maybe the rest of a ping is still on its way.
                return Ok(None);
            }
            self.buf.drain(..lead);
            if ping {
                return Ok(Some(Frame::Ping));
            }
        }
        let Some((body_start, _)) = find_header_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FrameError::TooLarge);
            }
            return Ok(None);
        };
        let head = &self.buf[..body_start];
        let len = content_length(head)?.unwrap_or(0);
        let total = body_start + len;
        if total > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let msg = std::mem::replace(&mut self.buf, rest);
        Ok(Some(Frame::Message(msg)))
    }
}

/// Finds Content-Length (or `l`) in a header section without a full parse.
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = std::str::from_utf8(&line[colon + 1..])
                .map_err(|_| FrameError::BadContentLength)?;
            let n = parse_decimal(value, MAX_MESSAGE as u64).ok_or(FrameError::BadContentLength)?;
            found = Some(n as usize);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_and_pipelined() {
        let m1 = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc".to_vec();
        let m2 = b"BYE sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n".to_vec();
        let mut all = m1.clone();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(&m2);
        let mut f = StreamFramer::new();
        let mut out = Vec::new();
        for chunk in all.chunks(5) {
            f.push(chunk);
            while let Some(fr) = f.next_frame().unwrap() {
                out.push(fr);
            }
        }
        assert_eq!(
            out,
            vec![Frame::Message(m1), Frame::Ping, Frame::Message(m2)]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn errors_close_the_stream() {
        let mut f = StreamFramer::new();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::BadContentLength));
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
    }
}
