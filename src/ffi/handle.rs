//! The one way to turn a handle pointer into a reference (with the NULL check), the one way to
//! create and free a handle, and the one way to take an out-parameter.
//!
//! Each opaque type says how it is owned by implementing [`BoxedHandle`]; a handle is created
//! only by [`BoxedHandle::into_raw`] and freed only by [`BoxedHandle::free`], so it cannot be
//! freed the wrong way.

use std::ptr;

use crate::error::{Error, Result};

/// An opaque type handed to C as a `Box` pointer.
pub(crate) trait BoxedHandle: Sized {
    /// The C name of the type, for messages.
    const NAME: &'static str;

    /// Moves `self` to the heap; C owns the pointer until it passes it to the matching free.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Borrows the handle behind `ptr`, or fails with `PW_INVALID_ARGUMENT` if it is NULL.
    ///
    /// # Safety
    /// `ptr` is NULL or was returned by [`BoxedHandle::into_raw`] and not freed yet, and stays
    /// valid for `'a` (the header's contract: a handle is not freed while another call uses it).
    unsafe fn borrow<'a>(ptr: *const Self, argument: &str) -> Result<&'a Self> {
        // SAFETY: the caller guarantees `ptr` is NULL or a live handle of this type.
        unsafe { ptr.as_ref() }.ok_or_else(|| {
            Error::InvalidArgument(format!("`{argument}` (a {} *) is NULL", Self::NAME))
        })
    }

    /// Frees the handle behind `ptr`; NULL is a no-op.
    ///
    /// # Safety
    /// `ptr` is NULL or was returned by [`BoxedHandle::into_raw`] and not freed yet, and no
    /// other call uses it.
    unsafe fn free(ptr: *mut Self) {
        if !ptr.is_null() {
            // SAFETY: the caller guarantees `ptr` came from `Box::into_raw` and is not shared.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

/// A required out-parameter of pointer type: checks it is not NULL and sets `*out = NULL`.
///
/// # Safety
/// `out` is NULL or valid for writes of a `*mut T` for `'a`.
pub(crate) unsafe fn out_ptr<'a, T>(out: *mut *mut T, argument: &str) -> Result<&'a mut *mut T> {
    // SAFETY: the caller guarantees `out` is NULL or writable.
    let out = unsafe { out.as_mut() }
        .ok_or_else(|| Error::InvalidArgument(format!("`{argument}` is NULL")))?;
    *out = ptr::null_mut();
    Ok(out)
}

/// An optional out-parameter: `None` when NULL; otherwise set to `T::default()` (NULL or 0)
/// and returned.
///
/// # Safety
/// `out` is NULL or valid for writes of a `T` for `'a`.
pub(crate) unsafe fn out_opt<'a, T: Default>(out: *mut T) -> Option<&'a mut T> {
    // SAFETY: the caller guarantees `out` is NULL or writable.
    let out = unsafe { out.as_mut() }?;
    *out = T::default();
    Some(out)
}

/// An optional out-parameter of pointer type (`char **` that may be NULL).
///
/// # Safety
/// `out` is NULL or valid for writes of a `*mut T` for `'a`.
pub(crate) unsafe fn out_opt_ptr<'a, T>(out: *mut *mut T) -> Option<&'a mut *mut T> {
    // SAFETY: the caller guarantees `out` is NULL or writable.
    let out = unsafe { out.as_mut() }?;
    *out = ptr::null_mut();
    Some(out)
}
