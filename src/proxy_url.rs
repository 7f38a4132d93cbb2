//! What a `proxy_url` must be, and the credentials taken out of its userinfo.
//!
//! Every URL that comes in (`put`, `put_many`, warm rows) passes through [`ProxyUrl::parse`]:
//!
//! - surrounding whitespace is trimmed; whitespace or a control character inside is refused;
//! - it must be `scheme://host[:port][/path…]`: a scheme, `://`, and a non-empty host that the
//!   WHATWG URL parser (the `url` crate) accepts; a port, if any, is a number up to 65535;
//! - a userinfo (`http://user:pass@host:port`) is taken out: the URL is kept without it and the
//!   user name and password, percent-decoded, become the entry's `username` and `password`,
//!   which are stored encrypted like any credential (docs/FORMAT.md §5). A userinfo made only of
//!   `*` (a masked export: `http://***:***@host`) carries no credential and is dropped.
//!
//! The URL is checked as text and never rewritten beyond that (no lower-casing, no default port
//! removed, no trailing `/` added): the cache key of a URL is the hash of its text, as upstream's.
//! Error messages never quote the URL: text that fails to parse may hold a credential.

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// A checked proxy URL, without userinfo, and the credentials its userinfo held.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `scheme://host[:port][rest]`, trimmed, without userinfo.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The URL is not quoted: text that fails to parse may hold a credential in a form that cannot
/// be recognised to mask it (`user:pass host`), so the message says only what is wrong.
fn refuse(why: &str) -> Error {
    Error::InvalidArgument(format!(
        "proxy_url is not a proxy URL: {why} (expected scheme://host[:port], e.g. \
         http://10.0.0.1:8080)"
    ))
}

/// A userinfo part, percent-decoded; `None` when empty.
fn decoded(part: &str, what: &str) -> Result<Option<String>> {
    let value = percent_decode_str(part)
        .decode_utf8()
        .map_err(|_| refuse(&format!("its {what} is not UTF-8 once percent-decoded")))?;
    Ok((!value.is_empty()).then(|| value.into_owned()))
}

impl ProxyUrl {
    /// Checks `text` and takes its userinfo out (see the module docs). Anything else is
    /// [`Error::InvalidArgument`] saying what is wrong.
    pub fn parse(text: &str) -> Result<ProxyUrl> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::InvalidArgument(
                "proxy_url is empty or only whitespace".into(),
            ));
        }
        let Some((scheme, after_scheme)) = trimmed.split_once("://") else {
            return Err(refuse("it has no scheme://"));
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(refuse("its scheme is not a URL scheme"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("it contains whitespace or a control character"));
        }
        // The authority ends at the first `/`, `?` or `#` (or `\`, which the URL parser reads as
        // `/` in http(s) URLs); its userinfo ends at its last `@`, as the URL parser reads it.
        let authority_len = after_scheme
            .find(['/', '?', '#', '\\'])
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(authority_len);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(refuse("it has no host"));
        }
        let url = format!("{scheme}://{host_port}{rest}");
        let parsed = url::Url::parse(&url).map_err(|e| refuse(&e.to_string()))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(refuse("it has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Only possible if the parser saw the authority differently from the split above.
            return Err(refuse("its user information cannot be told apart"));
        }
        let (mut username, mut password) = (None, None);
        if let Some(userinfo) = userinfo {
            let (user, pass) = match userinfo.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (userinfo, None),
            };
            let masked = |part: &str| !part.is_empty() && part.bytes().all(|b| b == b'*');
            if !(masked(user) && pass.is_none_or(masked)) {
                username = decoded(user, "user name")?;
                password = pass.map(|p| decoded(p, "password")).transpose()?.flatten();
            }
        }
        Ok(ProxyUrl {
            url,
            username,
            password,
        })
    }
}

/// One credential given both in the URL's userinfo and in its own field: the same value is
/// fine, two different values are refused (which one the caller meant cannot be known).
pub fn merge_credential(
    name: &str,
    from_url: Option<String>,
    from_field: Option<String>,
) -> Result<Option<String>> {
    match (from_url, from_field) {
        (Some(a), Some(b)) if a != b => Err(Error::InvalidArgument(format!(
            "the proxy_url's userinfo and the `{name}` field give two different {name}s; \
             give it once"
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> ProxyUrl {
        ProxyUrl::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn plain_urls_are_kept_as_text() {
        for url in [
            "http://10.0.0.1:8080",
            "socks5://proxy0.example.net:1080",
            "https://Proxy.Example.com:443/",
            "http://[::1]:3128",
            "socks4a://h",
            "http://h:1/path?q=1#f",
        ] {
            assert_eq!(
                ok(url),
                ProxyUrl {
                    url: url.into(),
                    username: None,
                    password: None
                }
            );
        }
        assert_eq!(ok("  http://h:1\t\n").url, "http://h:1");
    }

    #[test]
    fn what_is_not_a_proxy_url_is_refused() {
        for bad in [
            "",
            "   ",
            "not a url",
            "x",
            "h:1",
            "10.0.0.1:8080",
            "http://",
            "http://:8080",
            "http://user:pass@",
            "http://h:99999",
            "http://h:port",
            "http://h 1:2",
            "http://h:1/a b",
            "1http://h",
            "mailto:a@b",
            "http:/h:1",
            "http://h\u{0}:1",
        ] {
            let e = ProxyUrl::parse(bad).expect_err(bad);
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn userinfo_becomes_credentials() {
        assert_eq!(
            ok("http://alice:s3cret@h:8080"),
            ProxyUrl {
                url: "http://h:8080".into(),
                username: Some("alice".into()),
                password: Some("s3cret".into())
            }
        );
        let p = ok("socks5://u%40x:p%3Ass%2Fw%C3%B6rd@h:1080/");
        assert_eq!(p.url, "socks5://h:1080/");
        assert_eq!(p.username.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_deref(), Some("p:ss/wörd"));
        // An unencoded `@` in the password: the last `@` ends the userinfo, as the parser says.
        let p = ok("http://u:p@ss@h:1");
        assert_eq!(
            (p.url.as_str(), p.password.as_deref()),
            ("http://h:1", Some("p@ss"))
        );
        let p = ok("http://bob@h:1");
        assert_eq!((p.username.as_deref(), p.password), (Some("bob"), None));
        let p = ok("http://:pw@h:1");
        assert_eq!((p.username, p.password.as_deref()), (None, Some("pw")));
        let p = ok("http://***:***@h:1");
        assert_eq!(
            (p.url.as_str(), p.username, p.password),
            ("http://h:1", None, None)
        );
    }

    #[test]
    fn messages_never_quote_a_password() {
        let e = ProxyUrl::parse("http://u:hunter2@h:99999").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = ProxyUrl::parse("http://u:%FF@h:1").unwrap_err();
        assert!(!e.to_string().contains("%FF"), "{e}");
        let e = ProxyUrl::parse("user:hunter2 h").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_credential_given_twice_must_agree() {
        let merge = |a: Option<&str>, b: Option<&str>| {
            merge_credential("password", a.map(String::from), b.map(String::from))
        };
        assert_eq!(
            merge(Some("alpha-pw"), Some("alpha-pw"))
                .unwrap()
                .as_deref(),
            Some("alpha-pw")
        );
        assert_eq!(
            merge(None, Some("beta-pw")).unwrap().as_deref(),
            Some("beta-pw")
        );
        assert_eq!(
            merge(Some("alpha-pw"), None).unwrap().as_deref(),
            Some("alpha-pw")
        );
        let e = merge(Some("alpha-pw"), Some("beta-pw")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        let text = e.to_string();
        assert!(
            !text.contains("alpha-pw") && !text.contains("beta-pw"),
            "{text}"
        );
    }
}
