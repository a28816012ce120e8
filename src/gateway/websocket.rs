//! WebSocket framing (RFC 6455), sans-io: server frames are encoded whole
//! (header and payload in one buffer, never masked, never fragmented), so a
//! bar update is framed once and the same bytes go to every client; client
//! frames (always masked) are decoded and reassembled into messages within
//! a size bound. The client's side of the same (masked frames out, unmasked
//! in) serves the load generator in `bench/`. No sockets, no state but a
//! message being reassembled.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Frame opcodes.
pub mod opcode {
    /// A fragment of a message.
    pub const CONTINUATION: u8 = 0x0;
    /// A text message (UTF-8).
    pub const TEXT: u8 = 0x1;
    /// A binary message.
    pub const BINARY: u8 = 0x2;
    /// The closing handshake.
    pub const CLOSE: u8 = 0x8;
    /// A ping, to be answered with a pong carrying its payload.
    pub const PING: u8 = 0x9;
    /// The answer to a ping.
    pub const PONG: u8 = 0xA;
}

/// Close codes the gateway sends.
pub mod close {
    /// Going away: shutdown, or a client silent for two ping intervals.
    pub const AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID: u16 = 1007;
    /// Policy: a client that does not read its replies.
    pub const POLICY: u16 = 1008;
    /// A message over the size bound.
    pub const SIZE: u16 = 1009;
    /// Try again later: a client over the outbound bound.
    pub const AGAIN: u16 = 1013;
}

/// Longest payload of a control frame (close, ping, pong).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Why the client's bytes are not acceptable WebSocket traffic; each ends
/// the connection with its close code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A message (or the frame announcing it) over the size bound.
    #[error("message too big")]
    TooBig,
    /// A text message that is not UTF-8.
    #[error("text frame is not UTF-8")]
    NotUtf8,
    /// Anything else RFC 6455 forbids (unmasked client frames, reserved
    /// bits or opcodes, fragmented or oversize control frames, a
    /// continuation without a start).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl FrameError {
    /// The close code to answer with.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::TooBig => close::SIZE,
            Self::NotUtf8 => close::INVALID,
            Self::Protocol(_) => close::PROTOCOL,
        }
    }

    /// The close reason to send (short, fixed text).
    pub fn close_reason(&self) -> &'static str {
        match self {
            Self::TooBig => "message too big",
            Self::NotUtf8 => "text frame is not UTF-8",
            Self::Protocol(_) => "protocol error",
        }
    }
}

/// One message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping, with the payload the pong must carry.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The client closes, with its close code if it gave one.
    Close(Option<u16>),
}

/// The header of an unmasked, final frame of `len` payload bytes.
fn header(opcode: u8, len: usize, out: &mut BytesMut) {
    out.put_u8(0x80 | opcode);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xffff => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
}

/// Header bytes of a frame of `len` payload bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

/// A whole server frame: header and payload in one buffer.
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    header(opcode, payload.len(), &mut out);
    out.put_slice(payload);
    out.freeze()
}

/// A client frame: final, masked with `mask`.
pub fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(header_len(payload.len()) + 4 + payload.len());
    header(opcode, payload.len(), &mut out);
    out[1] |= 0x80;
    out.put_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out.to_vec()
}

/// A close frame with `code` and a reason of at most 123 bytes.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(opcode::CLOSE, &payload)
}

/// The opcode of a server frame made by [`frame`].
pub fn opcode_of(frame: &[u8]) -> u8 {
    frame.first().map_or(0, |b| b & 0x0f)
}

/// The payload of a server frame made by [`frame`].
pub fn payload_of(frame: &[u8]) -> &[u8] {
    let len7 = frame.get(1).map_or(0, |b| b & 0x7f);
    let at = match len7 {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    frame.get(at..).unwrap_or_default()
}

/// Reassembles the peer's messages from the bytes read off its socket.
#[derive(Debug)]
pub struct Decoder {
    /// Largest message accepted (all its fragments together).
    max_message: usize,
    /// The peer is a client, whose frames are masked (else a server, whose
    /// frames are not).
    from_client: bool,
    /// A fragmented message in progress: its opcode and payload so far.
    partial: Option<(u8, Vec<u8>)>,
}

impl Decoder {
    /// A server's decoder of client messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self { max_message, from_client: true, partial: None }
    }

    /// A client's decoder of server messages of at most `max_message` bytes.
    pub fn of_server(max_message: usize) -> Self {
        Self { max_message, from_client: false, partial: None }
    }

    /// Takes the next message out of `buf`, removing the bytes it used.
    /// `Ok(None)`: `buf` holds no complete frame yet (read more; the frame
    /// needs at most 14 header bytes plus the size bound). Control frames
    /// between the fragments of a message are returned as they come.
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Incoming>, FrameError> {
        loop {
            let Some((frame_len, header_len, fin, op)) = self.peek_frame(buf)? else { return Ok(None) };
            let mut payload: Vec<u8> = buf[header_len..frame_len].to_vec();
            if self.from_client {
                let mask = [buf[header_len - 4], buf[header_len - 3], buf[header_len - 2], buf[header_len - 1]];
                for (i, byte) in payload.iter_mut().enumerate() {
                    *byte ^= mask[i % 4];
                }
            }
            buf.drain(..frame_len);
            if let Some(message) = self.take(op, fin, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// The frame at the start of `buf`, once complete: (frame length,
    /// header length, FIN, opcode). Checks everything the header alone
    /// tells, before the payload arrives.
    fn peek_frame(&self, buf: &[u8]) -> Result<Option<(usize, usize, bool, u8)>, FrameError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0f);
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if (b1 & 0x80 != 0) != self.from_client {
            return Err(FrameError::Protocol("client frames must be masked, server frames not"));
        }
        let (len, ext) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]), 8),
                None => return Ok(None),
            },
            n => (u64::from(n), 0),
        };
        if op >= opcode::CLOSE {
            if !fin || len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(FrameError::Protocol("fragmented or oversize control frame"));
            }
        } else {
            let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len() as u64);
            if len.saturating_add(so_far) > self.max_message as u64 {
                return Err(FrameError::TooBig);
            }
        }
        let header_len = 2 + ext + if self.from_client { 4 } else { 0 };
        let frame_len = header_len + len as usize;
        Ok((buf.len() >= frame_len).then_some((frame_len, header_len, fin, op)))
    }

    /// One unmasked frame: a message if it completes one.
    fn take(&mut self, op: u8, fin: bool, payload: Vec<u8>) -> Result<Option<Incoming>, FrameError> {
        let (op, payload) = match op {
            opcode::PING => return Ok(Some(Incoming::Ping(payload))),
            opcode::PONG => return Ok(Some(Incoming::Pong)),
            opcode::CLOSE => {
                return match payload.len() {
                    0 => Ok(Some(Incoming::Close(None))),
                    1 => Err(FrameError::Protocol("close frame of one byte")),
                    _ => Ok(Some(Incoming::Close(Some(u16::from_be_bytes([payload[0], payload[1]]))))),
                };
            }
            opcode::TEXT | opcode::BINARY if self.partial.is_some() => {
                return Err(FrameError::Protocol("a new message inside a fragmented one"));
            }
            opcode::TEXT | opcode::BINARY if !fin => {
                self.partial = Some((op, payload));
                return Ok(None);
            }
            opcode::TEXT | opcode::BINARY => (op, payload),
            opcode::CONTINUATION => {
                let Some((first, mut so_far)) = self.partial.take() else {
                    return Err(FrameError::Protocol("continuation without a message"));
                };
                so_far.extend_from_slice(&payload);
                if !fin {
                    self.partial = Some((first, so_far));
                    return Ok(None);
                }
                (first, so_far)
            }
            _ => return Err(FrameError::Protocol("reserved opcode")),
        };
        if op == opcode::BINARY {
            return Ok(Some(Incoming::Binary(payload)));
        }
        String::from_utf8(payload).map(|text| Some(Incoming::Text(text))).map_err(|_| FrameError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser sends it (masked), with the first byte
    /// (FIN, reserved bits, opcode) as given.
    fn masked(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = client_frame(first & 0x0f, payload, mask);
        out[0] = first;
        out
    }

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Incoming>, FrameError> {
        let mut decoder = Decoder::new(max);
        let mut buf = bytes.to_vec();
        let mut out = Vec::new();
        while let Some(message) = decoder.next(&mut buf)? {
            out.push(message);
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        Ok(out)
    }

    #[test]
    fn server_frames_match_rfc_6455_examples() {
        // RFC 6455 §5.7: unmasked text "Hello".
        assert_eq!(&frame(opcode::TEXT, b"Hello")[..], [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // 256 bytes binary: 16-bit length.
        let f = frame(opcode::BINARY, &[7; 256]);
        assert_eq!(&f[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(payload_of(&f), &[7; 256][..]);
        // 64 KiB: 64-bit length.
        let f = frame(opcode::BINARY, &[7; 65536]);
        assert_eq!(&f[..10], [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((payload_of(&f).len(), opcode_of(&f)), (65536, opcode::BINARY));
        let c = close_frame(close::SIZE, "message too big");
        assert_eq!(&c[..4], [0x88, 17, 0x03, 0xf1]);
        assert_eq!(close_frame(1000, &"é".repeat(100)).len(), 2 + 2 + 122, "cut at a char boundary");
    }

    #[test]
    fn decodes_masked_messages_byte_by_byte() {
        // RFC 6455 §5.7: masked "Hello".
        let hello = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let mut bytes = hello.to_vec();
        bytes.extend(masked(0x89, b"hi", [1, 2, 3, 4]));
        bytes.extend(masked(0x82, &[0; 300], [9, 8, 7, 6]));
        bytes.extend(masked(0x88, &1000u16.to_be_bytes(), [0; 4]));
        let mut decoder = Decoder::new(4096);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for byte in bytes {
            buf.push(byte);
            while let Some(message) = decoder.next(&mut buf).unwrap() {
                got.push(message);
            }
        }
        assert_eq!(
            got,
            [
                Incoming::Text("Hello".into()),
                Incoming::Ping(b"hi".to_vec()),
                Incoming::Binary(vec![0; 300]),
                Incoming::Close(Some(1000))
            ]
        );
    }

    #[test]
    fn reassembles_fragments_with_control_frames_between() {
        let mut bytes = masked(0x01, b"sub", [1, 1, 1, 1]);
        bytes.extend(masked(0x89, b"", [2, 2, 2, 2]));
        bytes.extend(masked(0x00, b"-1", [3, 3, 3, 3]));
        bytes.extend(masked(0x80, b"s", [4, 4, 4, 4]));
        let got = decode_all(&bytes, 4096).unwrap();
        assert_eq!(got, [Incoming::Ping(Vec::new()), Incoming::Text("sub-1s".into())]);
    }

    #[test]
    fn refuses_what_the_rfc_forbids() {
        let protocol = |bytes: &[u8]| matches!(decode_all(bytes, 4096), Err(FrameError::Protocol(_)));
        assert!(protocol(&[0x81, 0x02, b'h', b'i']), "unmasked");
        assert!(protocol(&masked(0xc1, b"x", [0; 4])), "reserved bit");
        assert!(protocol(&masked(0x83, b"x", [0; 4])), "reserved opcode");
        assert!(protocol(&masked(0x09, b"x", [0; 4])), "fragmented ping");
        assert!(protocol(&masked(0x89, &[0; 126], [0; 4])), "oversize ping");
        assert!(protocol(&masked(0x80, b"x", [0; 4])), "continuation first");
        assert!(protocol(&[masked(0x01, b"a", [0; 4]), masked(0x81, b"b", [0; 4])].concat()), "interleaved");
        assert!(protocol(&masked(0x88, &[3], [0; 4])), "one-byte close");
        assert_eq!(decode_all(&masked(0x81, &[0xff, 0xfe], [5; 4]), 4096), Err(FrameError::NotUtf8));
    }

    #[test]
    fn refuses_too_big_from_the_header_alone() {
        let big = masked(0x81, &[b'x'; 5000], [0; 4]);
        let mut decoder = Decoder::new(4096);
        // Only the header has arrived: refused before the payload is read.
        assert_eq!(decoder.next(&mut big[..8].to_vec()), Err(FrameError::TooBig));
        // A header that claims 4 EiB.
        let mut huge = vec![0x82, 0xff];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        assert_eq!(Decoder::new(4096).next(&mut huge), Err(FrameError::TooBig));
        // Fragments that together go over the bound.
        let parts = [masked(0x01, &[b'x'; 3000], [0; 4]), masked(0x80, &[b'x'; 3000], [0; 4])].concat();
        assert_eq!(decode_all(&parts, 4096), Err(FrameError::TooBig));
        assert_eq!(decode_all(&masked(0x81, &[b'x'; 4096], [0; 4]), 4096).map(|m| m.len()), Ok(1), "at the bound");
    }

    #[test]
    fn a_client_reads_what_a_server_frames() {
        let mut buf = [frame(opcode::BINARY, &[1, 2, 3]), frame(opcode::PING, b"")].concat();
        let mut decoder = Decoder::of_server(4096);
        assert_eq!(decoder.next(&mut buf), Ok(Some(Incoming::Binary(vec![1, 2, 3]))));
        assert_eq!(decoder.next(&mut buf), Ok(Some(Incoming::Ping(Vec::new()))));
        let mut masked = client_frame(opcode::TEXT, b"x", [1, 2, 3, 4]);
        assert!(matches!(decoder.next(&mut masked), Err(FrameError::Protocol(_))), "a server never masks");
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let mut decoder = Decoder::new(256);
            while let Ok(Some(_)) = decoder.next(&mut buf) {}
            assert!(decoder.partial.as_ref().is_none_or(|(_, p)| p.len() <= 256));
        }
    }
}
