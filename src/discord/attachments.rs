//! Downloading a file a member attached to a command or a message: only from Discord's
//! CDN (or the bases the host configured), never more than a given size, never for longer
//! than a time-out.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use url::Url;

/// How long a download may take in all, from the request to the last byte.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The bases attachment URLs must start with (DISCORD_ATTACHMENT_URLS): Discord's CDN and
/// media proxy unless the host configured others (a compatible server, the tests' fake).
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentHosts {
    bases: Vec<Url>,
}

impl AttachmentHosts {
    /// The bases Discord serves attachments from.
    pub const DISCORD: [&'static str; 2] = [
        "https://cdn.discordapp.com/",
        "https://media.discordapp.net/",
    ];

    /// Discord's own bases.
    pub fn discord() -> Self {
        Self::parse(&Self::DISCORD.join(",")).unwrap_or(Self { bases: Vec::new() })
    }

    /// A comma-separated list of http(s) base URLs, at least one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let bases = list
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| {
                let mut url = Url::parse(b).map_err(|e| format!("\"{b}\" is not a URL ({e})"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(format!("\"{b}\" must start with http:// or https://"));
                }
                if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                    return Err(format!(
                        "\"{b}\" must be a plain base URL (no query, fragment or user)"
                    ));
                }
                // A base is a folder: "https://cdn.example/att" must not admit ".../attacker".
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                Ok(url)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if bases.is_empty() {
            return Err("give at least one base URL".to_owned());
        }
        Ok(Self { bases })
    }

    /// True when `url` lies under one of the bases: same scheme, host and port, and a path
    /// inside the base's.
    pub fn allows(&self, url: &Url) -> bool {
        url.username().is_empty()
            && url.password().is_none()
            && self.bases.iter().any(|base| {
                base.scheme() == url.scheme()
                    && base.host_str() == url.host_str()
                    && base.port_or_known_default() == url.port_or_known_default()
                    && url.path().starts_with(base.path())
            })
    }
}

impl Default for AttachmentHosts {
    fn default() -> Self {
        Self::discord()
    }
}

impl fmt::Debug for AttachmentHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.bases.iter().map(Url::as_str))
            .finish()
    }
}

/// Why an attachment couldn't be had. The messages are fit for a Discord reply.
#[derive(Debug, Error)]
pub enum AttachmentError {
    /// The URL isn't one of Discord's attachment URLs.
    #[error("the file must be a Discord attachment")]
    NotAllowed,
    /// The file is bigger than the command accepts.
    #[error("the file is larger than {max_bytes} bytes, the most this command reads")]
    TooLarge { max_bytes: usize },
    /// Discord answered the download with an error status.
    #[error("Discord refused the download of the file (HTTP {0}); try attaching it again")]
    Status(u16),
    /// The download took longer than [`DOWNLOAD_TIMEOUT`].
    #[error("the download of the file took too long; try again")]
    TimedOut,
    /// The download failed on the network. Built without the URL (it may carry a signature).
    #[error("the file couldn't be downloaded: {0}")]
    Transport(reqwest::Error),
}

impl AttachmentError {
    fn transport(e: reqwest::Error) -> Self {
        AttachmentError::Transport(e.without_url())
    }
}

/// Downloads `url`, which must lie under one of `hosts`' bases, reading at most
/// `max_bytes` (refused at once when Content-Length says more, and while streaming
/// otherwise), within [`DOWNLOAD_TIMEOUT`].
pub async fn download(
    client: &reqwest::Client,
    hosts: &AttachmentHosts,
    url: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, AttachmentError> {
    let url = Url::parse(url).map_err(|_| AttachmentError::NotAllowed)?;
    if !hosts.allows(&url) {
        return Err(AttachmentError::NotAllowed);
    }
    tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch(client, hosts, url, max_bytes))
        .await
        .map_err(|_| AttachmentError::TimedOut)?
}

async fn fetch(
    client: &reqwest::Client,
    hosts: &AttachmentHosts,
    url: Url,
    max_bytes: usize,
) -> Result<Vec<u8>, AttachmentError> {
    let mut response = client
        .get(url)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(AttachmentError::transport)?;
    // A client that follows redirects must not have been led away from the bases.
    if !hosts.allows(response.url()) {
        return Err(AttachmentError::NotAllowed);
    }
    if !response.status().is_success() {
        return Err(AttachmentError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(AttachmentError::TooLarge { max_bytes });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(AttachmentError::transport)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(AttachmentError::TooLarge { max_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn hosts(list: &str) -> AttachmentHosts {
        AttachmentHosts::parse(list).expect("valid bases")
    }

    #[test]
    fn discords_cdn_and_media_proxy_are_the_default_bases() {
        let hosts = AttachmentHosts::default();
        for url in [
            "https://cdn.discordapp.com/attachments/1/2/card.png",
            "https://media.discordapp.net/attachments/1/2/card.png?ex=1&is=2",
        ] {
            assert!(hosts.allows(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn urls_outside_the_bases_are_refused() {
        let hosts = hosts("https://cdn.discordapp.com, http://127.0.0.1:8080/cdn");
        for url in [
            "http://cdn.discordapp.com/attachments/1/2/a.json",
            "https://cdn.discordapp.com.evil.example/a.json",
            "https://evil.example/https://cdn.discordapp.com/a.json",
            "https://user@cdn.discordapp.com/a.json",
            "http://127.0.0.1:8081/cdn/a.json",
            "http://127.0.0.1:8080/cdnx/a.json",
            "http://127.0.0.1:8080/other/a.json",
        ] {
            assert!(!hosts.allows(&Url::parse(url).unwrap()), "{url}");
        }
        assert!(hosts.allows(&Url::parse("http://127.0.0.1:8080/cdn/a.json").unwrap()));
    }

    #[test]
    fn bad_base_lists_are_refused() {
        for list in ["", " , ", "ftp://x", "not a url", "https://x/?q=1"] {
            assert!(AttachmentHosts::parse(list).is_err(), "{list}");
        }
    }

    /// Serves one response per connection: `head` then `body`, on 127.0.0.1.
    async fn serve(head: String, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (head, body) = (head.clone(), body.clone());
                tokio::spawn(async move {
                    let mut request = [0_u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{address}")
    }

    async fn get(base: &str, path: &str, max: usize) -> Result<Vec<u8>, AttachmentError> {
        let client = reqwest::Client::new();
        let hosts = hosts(base);
        tokio::time::timeout(
            Duration::from_secs(10),
            download(&client, &hosts, &format!("{base}{path}"), max),
        )
        .await
        .expect("the download ends")
    }

    #[tokio::test]
    async fn a_file_within_the_limit_is_downloaded() {
        let base = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n".into(),
            b"hello".to_vec(),
        )
        .await;
        assert_eq!(get(&base, "/a.json", 5).await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let base = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n".into(),
            vec![b'x'; 1000],
        )
        .await;
        let error = get(&base, "/a.json", 999).await.unwrap_err();
        assert!(matches!(
            error,
            AttachmentError::TooLarge { max_bytes: 999 }
        ));
    }

    #[tokio::test]
    async fn an_undeclared_length_is_cut_off_at_the_limit_while_streaming() {
        let base = serve(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(),
            vec![b'x'; 100_000],
        )
        .await;
        let error = get(&base, "/a.json", 10_000).await.unwrap_err();
        assert!(matches!(
            error,
            AttachmentError::TooLarge { max_bytes: 10_000 }
        ));
    }

    #[tokio::test]
    async fn an_error_status_is_reported() {
        let base = serve(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
            Vec::new(),
        )
        .await;
        let error = get(&base, "/a.json", 10).await.unwrap_err();
        assert!(matches!(error, AttachmentError::Status(404)));
    }

    #[tokio::test]
    async fn a_url_outside_the_bases_is_never_requested() {
        let client = reqwest::Client::new();
        let error = download(
            &client,
            &AttachmentHosts::default(),
            "http://127.0.0.1:9/a.json",
            10,
        )
        .await
        .unwrap_err();
        assert!(matches!(error, AttachmentError::NotAllowed));
    }
}
