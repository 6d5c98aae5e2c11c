//! Wire framing of the agent ↔ supervisor stream.
//!
//! An agent opens one bidirectional QUIC stream on a connection negotiated
//! with ALPN [`ALPN_AGENT`]; both directions carry a sequence of frames:
//!
//! ```text
//! frame = length:u32 LE   type:u8   body:[u8; length - 1]
//! ```
//!
//! `length` counts the type byte and the body (never the 4 length bytes) and
//! is at least 1. A receiver passes its limit as `max_frame` to
//! [`decode_frame`]; a length above it is refused as soon as the 4 length
//! bytes are in, before the rest is buffered.
//!
//! | type | frame | direction | body |
//! | ---- | ----- | --------- | ---- |
//! | 1 | [`Frame::Hello`] | agent → supervisor, first frame | postcard [`Hello`] |
//! | 2 | [`Frame::Welcome`] | supervisor → agent, answers Hello | postcard [`Welcome`] |
//! | 3 | [`Frame::Batch`] | agent → supervisor | raw [`crate::codec::BatchEncoder`] payload |
//! | 4 | [`Frame::Ack`] | supervisor → agent | postcard `{ seq: u64 }` |
//! | 5 | [`Frame::Dropped`] | agent → supervisor | postcard `{ up_to: u64, readings: u64 }` |
//! | 6 | [`Frame::Close`] | either, before closing | postcard `{ reason: String }` |
//! | 7 | [`Frame::Register`] | module → supervisor, first frame | postcard [`v1::ModuleSpec`] |
//! | 8 | [`Frame::Registered`] | supervisor → module | postcard [`v1::Registered`] |
//! | 9 | [`Frame::Solicit`] | supervisor → module | postcard [`v1::Solicitation`] |
//! | 10 | [`Frame::Respond`] | module → supervisor | postcard [`v1::Response`] |
//! | 11 | [`Frame::Configure`] | supervisor → agent | postcard [`Configure`] |
//! | 12 | [`Frame::Applied`] | agent → supervisor | postcard [`Applied`] |
//! | 13 | [`Frame::Enrol`] | agent → supervisor, the one request | postcard [`Enrol`] |
//! | 14 | [`Frame::Issued`] | supervisor → agent, its answer | postcard [`Issued`] |
//!
//! Agents (ALPN [`ALPN_AGENT`]) use types 1–6, 11 and 12; enrolment and
//! renewal (ALPN [`ALPN_ENROL`]) 6, 13 and 14; remote modules (ALPN
//! [`ALPN_MODULE`]) use 6–10, whose bodies are the frozen messages of
//! [`crate::wire::v1`], converted from and into the domain types here. Each side refuses a type that its protocol
//! does not use.
//!
//! Postcard encodes integers as varints (`u16`/`u64` unsigned LEB128),
//! strings as a varint length and UTF-8 bytes, and `Option` as a 0/1 tag
//! byte followed by the value. A body must be consumed exactly: trailing
//! bytes are an error, as are zero length, an unknown type and a body that
//! does not parse.
//!
//! # Adding a frame type
//!
//! Add a variant to [`Frame`] and to [`FrameType`] (with a new, never reused
//! code), then one arm in `FrameType::from_u8`, `Frame::frame_type`,
//! `encode_frame` and `decode_body`. Both ends must run the new protocol:
//! bump [`PROTOCOL_VERSION`], since an old peer reports an unknown type.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::module::{ModuleSpec, Solicitation};
pub use crate::module::{Registered, Response};
use crate::wire::v1;
use thiserror::Error;

/// Version both ends exchange in [`Hello`] and [`Welcome`].
/// 2: series ids are dense per connection and resources are `ResourceId`s.
pub const PROTOCOL_VERSION: u16 = 2;

/// ALPN protocol of agent connections.
pub const ALPN_AGENT: &[u8] = b"vcp-agent/1";

/// ALPN protocol of remote module connections.
pub const ALPN_MODULE: &[u8] = b"vcp-module/1";

/// ALPN protocol of enrolment and renewal: one request, one answer.
pub const ALPN_ENROL: &[u8] = b"vcp-enrol/1";

/// Size of the length prefix.
pub const LEN_BYTES: usize = 4;

/// First frame an agent sends on its stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol: u16,
    pub agent_id: String,
    pub hostname: String,
    /// Distinguishes runs of the same agent; sequence numbers restart with it.
    pub incarnation: u64,
    /// Sequence number of the first batch the agent still holds.
    pub first_seq: u64,
}

/// The supervisor's answer to [`Hello`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub protocol: u16,
    /// Highest batch of this incarnation already applied, if any.
    pub last_applied: Option<u64>,
}

/// A mediated configuration for an agent to apply.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Configure {
    /// The supervisor's id of this delivery, echoed in [`Applied`].
    pub id: u64,
    pub round: u64,
    pub target: crate::module::Target,
    pub parameter: String,
    pub value: f64,
}

/// An agent's outcome for a [`Configure`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub id: u64,
    pub ok: bool,
    /// What was done, or why it failed.
    pub detail: String,
}

/// An agent's request for a certificate: with a join token when it has
/// none yet (enrolment), with an empty token over its current certificate
/// (renewal).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Enrol {
    pub protocol: u16,
    pub token: String,
    /// A PKCS#10 certificate signing request, DER.
    pub csr_der: Vec<u8>,
}

/// The certificate issued for an [`Enrol`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub certificate_pem: String,
    pub not_after_ms: i64,
}

/// One frame of an agent or module stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Agent → supervisor, first frame on the stream.
    Hello(Hello),
    /// Supervisor → agent, answer to Hello.
    Welcome(Welcome),
    /// A `BatchEncoder` payload (raw body, not postcard).
    Batch(Vec<u8>),
    /// Supervisor → agent: every batch with seq ≤ this is applied.
    Ack { seq: u64 },
    /// Agent → supervisor: batches ≤ `up_to` were dropped from a full spool
    /// and will never come; `readings` is how many readings they held.
    Dropped { up_to: u64, readings: u64 },
    /// Either side, before closing: a clear reason.
    Close { reason: String },
    /// Module → supervisor, first frame: the module's spec.
    Register(ModuleSpec),
    /// Supervisor → module: registration accepted.
    Registered(Registered),
    /// Supervisor → module: a solicitation round.
    Solicit(Solicitation),
    /// Module → supervisor: its proposals for a round.
    Respond(Response),
    /// Supervisor → agent: apply a configuration.
    Configure(Configure),
    /// Agent → supervisor: the outcome of a configuration.
    Applied(Applied),
    /// Agent → supervisor: a certificate request.
    Enrol(Enrol),
    /// Supervisor → agent: the certificate.
    Issued(Issued),
}

/// The type byte of each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    Hello = 1,
    Welcome = 2,
    Batch = 3,
    Ack = 4,
    Dropped = 5,
    Close = 6,
    Register = 7,
    Registered = 8,
    Solicit = 9,
    Respond = 10,
    Configure = 11,
    Applied = 12,
    Enrol = 13,
    Issued = 14,
}

impl FrameType {
    /// Every frame type, in code order.
    pub const ALL: &'static [FrameType] = &[
        FrameType::Hello,
        FrameType::Welcome,
        FrameType::Batch,
        FrameType::Ack,
        FrameType::Dropped,
        FrameType::Close,
        FrameType::Register,
        FrameType::Registered,
        FrameType::Solicit,
        FrameType::Respond,
        FrameType::Configure,
        FrameType::Applied,
        FrameType::Enrol,
        FrameType::Issued,
    ];

    pub fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            1 => FrameType::Hello,
            2 => FrameType::Welcome,
            3 => FrameType::Batch,
            4 => FrameType::Ack,
            5 => FrameType::Dropped,
            6 => FrameType::Close,
            7 => FrameType::Register,
            8 => FrameType::Registered,
            9 => FrameType::Solicit,
            10 => FrameType::Respond,
            11 => FrameType::Configure,
            12 => FrameType::Applied,
            13 => FrameType::Enrol,
            14 => FrameType::Issued,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "hello",
            FrameType::Welcome => "welcome",
            FrameType::Batch => "batch",
            FrameType::Ack => "ack",
            FrameType::Dropped => "dropped",
            FrameType::Close => "close",
            FrameType::Register => "register",
            FrameType::Registered => "registered",
            FrameType::Solicit => "solicit",
            FrameType::Respond => "respond",
            FrameType::Configure => "configure",
            FrameType::Applied => "applied",
            FrameType::Enrol => "enrol",
            FrameType::Issued => "issued",
        }
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Frame {
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello(_) => FrameType::Hello,
            Frame::Welcome(_) => FrameType::Welcome,
            Frame::Batch(_) => FrameType::Batch,
            Frame::Ack { .. } => FrameType::Ack,
            Frame::Dropped { .. } => FrameType::Dropped,
            Frame::Close { .. } => FrameType::Close,
            Frame::Register(_) => FrameType::Register,
            Frame::Registered(_) => FrameType::Registered,
            Frame::Solicit(_) => FrameType::Solicit,
            Frame::Respond(_) => FrameType::Respond,
            Frame::Configure(_) => FrameType::Configure,
            Frame::Applied(_) => FrameType::Applied,
            Frame::Enrol(_) => FrameType::Enrol,
            Frame::Issued(_) => FrameType::Issued,
        }
    }
}

/// Why bytes are not a valid frame. Any of these closes the connection.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u32, max: usize },
    #[error("zero-length frame (no type byte)")]
    Empty,
    #[error("unknown frame type {code:#04x}")]
    UnknownType { code: u8 },
    #[error("bad {kind} frame body ({len} bytes): {source}")]
    BadBody {
        kind: FrameType,
        len: usize,
        #[source]
        source: postcard::Error,
    },
    #[error("{n} bytes of trailing garbage after the {kind} frame body")]
    TrailingBytes { kind: FrameType, n: usize },
    #[error("invalid {kind} frame: {reason}")]
    Invalid { kind: FrameType, reason: String },
}

/// The domain value of a decoded wire message, or why it is not one.
fn valid<W, T: TryFrom<W, Error = String>>(kind: FrameType, wire: W) -> Result<T, FrameError> {
    T::try_from(wire).map_err(|reason| FrameError::Invalid { kind, reason })
}

#[derive(Serialize, Deserialize)]
struct AckBody {
    seq: u64,
}

#[derive(Serialize, Deserialize)]
struct DroppedBody {
    up_to: u64,
    readings: u64,
}

#[derive(Serialize, Deserialize)]
struct CloseBody<S> {
    reason: S,
}

fn put<T: Serialize>(out: &mut Vec<u8>, body: &T) {
    // Serialising plain structs of integers and strings into a Vec cannot fail.
    let bytes = postcard::to_stdvec(body).expect("postcard serialisation of a frame body");
    out.extend_from_slice(&bytes);
}

/// Appends `frame` to `out`.
///
/// # Panics
///
/// If the body is 4 GiB or more (the length would not fit the prefix).
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_BYTES]);
    out.push(frame.frame_type().code());
    match frame {
        Frame::Hello(h) => put(out, h),
        Frame::Welcome(w) => put(out, w),
        Frame::Batch(payload) => out.extend_from_slice(payload),
        Frame::Ack { seq } => put(out, &AckBody { seq: *seq }),
        Frame::Dropped { up_to, readings } => put(
            out,
            &DroppedBody {
                up_to: *up_to,
                readings: *readings,
            },
        ),
        Frame::Close { reason } => put(out, &CloseBody { reason }),
        Frame::Register(spec) => put(out, &v1::ModuleSpec::from(spec)),
        Frame::Registered(r) => put(out, &v1::Registered::from(r)),
        Frame::Solicit(s) => put(out, &v1::Solicitation::from(s)),
        Frame::Respond(r) => put(out, &v1::Response::from(r)),
        Frame::Configure(c) => put(out, c),
        Frame::Applied(a) => put(out, a),
        Frame::Enrol(e) => put(out, e),
        Frame::Issued(i) => put(out, i),
    }
    let len = u32::try_from(out.len() - start - LEN_BYTES).expect("frame body under 4 GiB");
    out[start..start + LEN_BYTES].copy_from_slice(&len.to_le_bytes());
}

/// Decodes the frame at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the frame and the
/// number of bytes it took. `max_frame` bounds the length field (type byte
/// plus body); a larger length is an error as soon as the prefix is seen.
pub fn decode_frame(buf: &[u8], max_frame: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LEN_BYTES>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*prefix);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let too_large = FrameError::TooLarge {
        len,
        max: max_frame,
    };
    let Ok(body_len) = usize::try_from(len) else {
        return Err(too_large);
    };
    if body_len > max_frame {
        return Err(too_large);
    }
    let Some(total) = LEN_BYTES.checked_add(body_len) else {
        return Err(too_large);
    };
    let Some(rest) = buf.get(LEN_BYTES..total) else {
        return Ok(None);
    };
    let Some((&code, body)) = rest.split_first() else {
        return Err(FrameError::Empty);
    };
    let kind = FrameType::from_u8(code).ok_or(FrameError::UnknownType { code })?;
    Ok(Some((decode_body(kind, body)?, total)))
}

fn take<T: DeserializeOwned>(kind: FrameType, body: &[u8]) -> Result<T, FrameError> {
    let (v, rest) = postcard::take_from_bytes::<T>(body).map_err(|source| FrameError::BadBody {
        kind,
        len: body.len(),
        source,
    })?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes {
            kind,
            n: rest.len(),
        });
    }
    Ok(v)
}

fn decode_body(kind: FrameType, body: &[u8]) -> Result<Frame, FrameError> {
    Ok(match kind {
        FrameType::Hello => Frame::Hello(take(kind, body)?),
        FrameType::Welcome => Frame::Welcome(take(kind, body)?),
        FrameType::Batch => Frame::Batch(body.to_vec()),
        FrameType::Ack => {
            let AckBody { seq } = take(kind, body)?;
            Frame::Ack { seq }
        }
        FrameType::Dropped => {
            let DroppedBody { up_to, readings } = take(kind, body)?;
            Frame::Dropped { up_to, readings }
        }
        FrameType::Close => {
            let CloseBody { reason } = take::<CloseBody<String>>(kind, body)?;
            Frame::Close { reason }
        }
        FrameType::Register => Frame::Register(take::<v1::ModuleSpec>(kind, body)?.into()),
        FrameType::Registered => Frame::Registered(take::<v1::Registered>(kind, body)?.into()),
        FrameType::Solicit => Frame::Solicit(valid(kind, take::<v1::Solicitation>(kind, body)?)?),
        FrameType::Respond => Frame::Respond(valid(kind, take::<v1::Response>(kind, body)?)?),
        FrameType::Configure => Frame::Configure(take(kind, body)?),
        FrameType::Applied => Frame::Applied(take(kind, body)?),
        FrameType::Enrol => Frame::Enrol(take(kind, body)?),
        FrameType::Issued => Frame::Issued(take(kind, body)?),
    })
}

#[cfg(test)]
mod tests;
