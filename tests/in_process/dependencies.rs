//! What the binary is built from: one TLS stack, for Discord's REST, its gateway and the LLM.

use std::collections::BTreeMap;

/// Every version of each package in the lock file.
fn locked_versions() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock beside Cargo.toml");
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_owned());
        } else if let (Some(value), Some(package)) = (line.strip_prefix("version = "), name.take())
        {
            versions
                .entry(package)
                .or_default()
                .push(value.trim_matches('"').to_owned());
        }
    }
    versions
}

#[test]
fn one_rustls_serves_rest_the_gateway_and_the_llm_and_no_other_tls_crate_is_built() {
    let versions = locked_versions();
    for tls in ["rustls", "tokio-rustls", "rustls-webpki"] {
        assert_eq!(
            versions.get(tls).map(Vec::len),
            Some(1),
            "{tls}: {:?}",
            versions.get(tls)
        );
    }
    for other in [
        "native-tls",
        "openssl",
        "rustls-pemfile",
        "webpki",
        "aws-lc-rs",
    ] {
        assert!(!versions.contains_key(other), "{other} is in the lock file");
    }
}
