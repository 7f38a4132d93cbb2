//! The panic guard: every exported function runs its body through one of these, so a Rust panic
//! never unwinds into C. They are plain functions called *inside* each `extern "C" fn` (not a
//! macro wrapping it), so cbindgen sees every function as written.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::error;
use super::status::pw_status;
use crate::error::Result;
use crate::redact::mask_url_userinfo;

/// Runs `body` for a function that returns a status: clears the thread's last error, maps an
/// engine error to its status (recording its message), and a panic to `PW_PANIC`.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> Result<()>) -> pw_status {
    error::clear();
    // AssertUnwindSafe: after a panic the boundary only reports it; shared state is behind
    // locks that do not poison (parking_lot), and the caller is told the call failed.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => pw_status::PW_OK,
        Ok(Err(e)) => {
            error::set(&e.to_string());
            pw_status::from(e.kind())
        }
        Err(payload) => {
            record_panic(function, payload.as_ref());
            pw_status::PW_PANIC
        }
    }
}

/// Runs `body` for a function that returns no status (a free, a getter): a panic yields
/// `on_panic` and is recorded as the thread's last error.
pub(crate) fn guard_value<T>(function: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            record_panic(function, payload.as_ref());
            on_panic
        }
    }
}

fn record_panic(function: &str, payload: &(dyn Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    // A panic message is not written for users; mask any URL credentials it might quote.
    let what = what
        .split_whitespace()
        .map(mask_url_userinfo)
        .collect::<Vec<_>>()
        .join(" ");
    error::set(&format!(
        "{function}: internal error (a Rust panic, please report it): {what}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_panic_becomes_pw_panic_with_a_message() {
        let status = guard("pw_test", || panic!("boom at http://u:secret@h:1"));
        assert_eq!(status, pw_status::PW_PANIC);
        let message = error::last();
        assert!(
            message.contains("pw_test") && message.contains("boom"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn an_error_sets_its_status_and_message_and_success_clears_it() {
        let status = guard("pw_test", || Err(Error::NotFound("no entry".into())));
        assert_eq!(status, pw_status::PW_NOT_FOUND);
        assert_eq!(error::last(), "no entry");
        assert_eq!(guard("pw_test", || Ok(())), pw_status::PW_OK);
        assert_eq!(error::last(), "");
    }

    #[test]
    fn a_panic_in_a_value_function_yields_the_fallback() {
        let value = guard_value("pw_test", false, || panic!("boom"));
        assert!(!value);
        assert!(error::last().contains("boom"));
    }
}
