//! The module protocol's messages as the wire carries them, version by
//! version, apart from the domain types the supervisor and the SDK work
//! with ([`crate::module`], [`crate::view`]). A deployed vendor module
//! speaks `vcp-module/1` for years while the domain types change under
//! it: the frames of that protocol are encoded from and decoded into the
//! [`v1`] types, converted at the edge (the frame codec), and the golden
//! bytes in `v1_golden.rs` fail the tests when a change would alter a
//! single byte of what a deployed module sends or receives.
//!
//! # Changing the wire
//!
//! - A `v1` type is frozen: never reorder, rename into a different
//!   meaning, remove or retype a field or an enum variant. Postcard has no
//!   field names or tags on the wire — a struct is its fields in order, an
//!   enum variant is its index — so any of those changes every byte after
//!   it.
//! - The domain types may change freely; only the conversions in `v1.rs`
//!   follow them. A domain field the wire does not carry gets its value in
//!   the conversion (a default, or a value derived from others).
//! - Anything a deployed module could not parse is a new protocol
//!   version: add `v2.rs` with the new shapes (copy `v1`, then change),
//!   a new ALPN (`vcp-module/2`), keep serving `vcp-module/1` from `v1`
//!   for as long as such modules run, and add `v2_golden.rs`.
//! - Decoding checks what the types cannot: resource ids are valid. A
//!   message that fails is a bad frame, never a panic.

pub mod v1;
#[cfg(test)]
mod v1_golden;
