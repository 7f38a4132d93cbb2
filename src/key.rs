//! Cache keys: the first 16 hex characters of SHA-256 of the URL's UTF-8 bytes, as upstream's
//! `generate_cache_key`, so keys agree between proxywhirl and pwcache.

use sha2::{Digest, Sha256};

pub fn generate_cache_key(proxy_url: &str) -> String {
    let digest = Sha256::digest(proxy_url.as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_keys() {
        // From expected.json of the upstream fixtures.
        assert_eq!(
            super::generate_cache_key("socks5://proxy0.example.net:1080"),
            "84d7754142f9018a"
        );
    }
}
