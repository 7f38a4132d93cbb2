//! The C boundary: `include/pwcache.h` is generated from this module (and only this module) by
//! cbindgen; `tests/header.rs` checks that the committed header is current.
//!
//! Rules every exported function follows (a new one too):
//! - its body runs inside [`guard`], so no panic crosses the boundary (`PW_PANIC`, or
//!   NULL/false/nothing for the functions that return no status);
//! - out-parameters are set to NULL/0 before anything can fail;
//! - pointers become references through [`handle`] (the NULL check lives there) and C strings
//!   become `&str` through [`strings`];
//! - every non-OK status sets the calling thread's last error ([`error`]).
//!
//! The layer holds no cache logic: each function converts its arguments, calls one method of
//! [`crate::CacheManager`] or [`crate::TtlManager`], and converts the result.

// The C names of the types (`pw_cache`, `pw_status`, ...) are the API.
#![allow(non_camel_case_types)]
// The exported functions are called from C, where no call is "safe": each states its pointer
// contract in its doc comment, and each dereference goes through an `unsafe` helper with a
// SAFETY comment. Marking them `unsafe fn` would change nothing for C callers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod cache;
pub mod error;
pub mod guard;
pub mod handle;
pub mod logging;
pub mod status;
pub mod strings;
pub mod tier;
pub mod ttl;
pub mod version;
