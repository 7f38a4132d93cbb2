//! Keeping credentials out of text meant for people: log lines, error messages, exports.

use std::borrow::Cow;

/// Masks the userinfo of a URL: `http://user:pass@host:8080` → `http://***:***@host:8080`,
/// `http://user@host` → `http://***@host`. Everything before the last `@` after the scheme is
/// taken as userinfo, so a password holding `@`, `:` or `/` never leaks a part of itself (a URL
/// with `@` in its path is over-masked, which is the safe side).
pub fn mask_url_userinfo(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[start..];
    match rest.rfind('@') {
        None => Cow::Borrowed(url),
        Some(at) => {
            let userinfo = &rest[..at];
            let mask = if userinfo.contains(':') {
                "***:***"
            } else {
                "***"
            };
            Cow::Owned(format!("{}{}{}", &url[..start], mask, &rest[at..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_url_userinfo;

    #[test]
    fn masks_user_and_password() {
        assert_eq!(
            mask_url_userinfo("http://u:p@h:8080"),
            "http://***:***@h:8080"
        );
        assert_eq!(mask_url_userinfo("socks5://u@h"), "socks5://***@h");
        assert_eq!(mask_url_userinfo("http://h:1"), "http://h:1");
        assert_eq!(mask_url_userinfo("u:p@h:1"), "***:***@h:1");
    }

    #[test]
    fn passwords_with_separators_never_leak() {
        let out = mask_url_userinfo("http://user0:p@ss:wörd/0@host:1080");
        assert_eq!(out, "http://***:***@host:1080");
    }
}
