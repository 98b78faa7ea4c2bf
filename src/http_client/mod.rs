//! Outbound HTTP leaf: one HTTP/1.1 request per connection (hyper 1 client connection), over TLS
//! (rustls with the ring provider; the webpki roots plus optional extra CAs, or only a given CA;
//! optionally a client certificate) or, for tests and local peers only, plain HTTP to a loopback
//! address. Bounded: a connect timeout (name lookup, TCP, TLS and HTTP handshakes), an answer
//! timeout (request written, answer read) and a size bound on the answer. No redirects.
//!
//! Used by the notification deliverer (`notify`), the HTTPS rate feed (`fx`) and the wallet CLI.
//! Imports no room, only the `tls` leaf.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use crate::tls::{self, TlsConfigError};

/// Where a request goes, checked: `https://`, or `http://` to a loopback address only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` (true) or loopback `http` (false).
    pub tls: bool,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `host[:port]` for the `host` header.
    pub authority: String,
    /// Path and query, as the request line carries it (and signatures cover); `/` at the least.
    pub path: String,
}

/// Parses and checks a URL (`http::Uri`): `https://host[:port][/path][?query]`, or `http://` to a
/// loopback address (127.0.0.0/8, ::1, `localhost`). No user information; a fragment is dropped.
pub fn target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("URL {url:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("URL {url:?} must start with https://")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("URL {url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("URL {url:?} must not carry user information"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    if !tls && !is_loopback_name(&host) {
        return Err(format!(
            "URL {url:?}: plain http:// is for loopback only (127.0.0.1, ::1, localhost); \
             use https://"
        ));
    }
    // `Authority::port` is `None` for a port that is not a u16: refuse it, never default it.
    let port = match authority.as_str().rsplit_once(':') {
        Some((_, text)) if !text.contains(']') => text
            .parse::<u16>()
            .map_err(|_| format!("URL {url:?}: the port is not a number 0-65535"))?,
        _ if tls => 443,
        _ => 80,
    };
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_owned(),
        Some(p) if p.starts_with('/') => p.to_owned(),
        Some(_) => return Err(format!("URL {url:?} needs a path before its query")),
    };
    Ok(Target {
        tls,
        host,
        port,
        authority: authority.as_str().to_owned(),
        path,
    })
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Which servers an `https://` target must prove to be.
#[derive(Debug, Clone, Copy)]
pub enum Roots<'a> {
    /// The public web PKI (webpki-roots), plus the CA certificates in this PEM text if given.
    Web {
        /// Extra CA certificates (PEM).
        extra_ca_pem: Option<&'a str>,
    },
    /// Only the CA certificates in this PEM text (a private CA, a test CA).
    Only {
        /// The CA certificates (PEM).
        ca_pem: &'a str,
    },
}

/// TLS settings of a client.
#[derive(Debug, Clone, Copy)]
pub struct TlsOptions<'a> {
    /// Trusted roots.
    pub roots: Roots<'a>,
    /// TLS 1.3 only (otherwise 1.3 or 1.2).
    pub tls13_only: bool,
    /// A client certificate chain and its key (PEM), for mutual TLS.
    pub client_cert: Option<(&'a str, &'a str)>,
}

/// A rustls client configuration (ring provider, ALPN `http/1.1`).
pub fn tls_config(options: &TlsOptions<'_>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let roots = match options.roots {
        Roots::Web { extra_ca_pem } => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(pem) = extra_ca_pem {
                for c in tls::certs("CA certificate", pem)? {
                    roots.add(c)?;
                }
            }
            roots
        }
        Roots::Only { ca_pem } => tls::roots(ca_pem)?,
    };
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(versions)?
        .with_root_certificates(roots);
    let mut config = match options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => builder.with_client_auth_cert(
            tls::certs("client certificate", cert_pem)?,
            tls::key("client key", key_pem)?,
        )?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One request: the target's path is the request target; `host` comes from the target.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// `GET`, `POST`, ...
    pub method: Method,
    /// Where.
    pub target: Target,
    /// `content-type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// Other headers, names in lower case.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// The server's answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most the client's answer bound).
    pub body: Bytes,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// Nothing was sent: name lookup, connect, TLS or HTTP handshake failed or took too long.
    NotSent(String),
    /// The request went out (or may have), but no complete answer came back in time.
    NoAnswer(String),
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::NotSent(why) | HttpFailure::NoAnswer(why) => f.write_str(why),
        }
    }
}

/// Default bound on connecting and, separately, on the exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on an answer's body.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// An outbound client: TLS settings and bounds. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: Option<Arc<ClientConfig>>,
    connect_timeout: Duration,
    answer_timeout: Duration,
    max_answer_bytes: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HttpClient(https: {}, connect {:?}, answer {:?}, at most {} bytes)",
            self.tls.is_some(),
            self.connect_timeout,
            self.answer_timeout,
            self.max_answer_bytes
        )
    }
}

/// `d` as people read it in a message: `2 s`, `300 ms`.
fn shown(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl HttpClient {
    /// A client; `tls: None` refuses `https://` targets. Default bounds: 10 s to connect, 10 s for
    /// the exchange, 1 MiB of answer.
    pub fn new(tls: Option<Arc<ClientConfig>>) -> Self {
        HttpClient {
            tls,
            connect_timeout: DEFAULT_TIMEOUT,
            answer_timeout: DEFAULT_TIMEOUT,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    /// Sets the bound on connecting (lookup, TCP, TLS, HTTP handshake) and on the exchange.
    pub fn with_timeouts(mut self, connect: Duration, answer: Duration) -> Self {
        self.connect_timeout = connect;
        self.answer_timeout = answer;
        self
    }

    /// Sets the bound on an answer's body; a longer one is "cut short" (no answer).
    pub fn with_max_answer_bytes(mut self, max: usize) -> Self {
        self.max_answer_bytes = max;
        self
    }

    /// Sends `request` on a new connection and reads the whole answer (any status).
    pub async fn send(&self, request: OutboundRequest) -> Result<HttpAnswer, HttpFailure> {
        let t = &request.target;
        let mut sender = tokio::time::timeout(self.connect_timeout, self.connect(t))
            .await
            .map_err(|_| {
                HttpFailure::NotSent(format!(
                    "could not connect to {}:{} within {}",
                    t.host,
                    t.port,
                    shown(self.connect_timeout)
                ))
            })??;
        let mut req = Request::builder()
            .method(request.method)
            .uri(t.path.as_str())
            .header("host", t.authority.as_str());
        if let Some(content_type) = request.content_type {
            req = req.header("content-type", content_type);
        }
        for (name, value) in &request.headers {
            req = req.header(*name, value.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| HttpFailure::NotSent(format!("request not built: {e}")))?;
        let max = self.max_answer_bytes;
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("no answer: {}", chain(&e)))?;
            let (parts, incoming) = resp.into_parts();
            let body = Limited::new(incoming, max)
                .collect()
                .await
                .map_err(|e| format!("answer cut short: {}", chain(e.as_ref())))?
                .to_bytes();
            Ok::<_, String>(HttpAnswer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let answer = tokio::time::timeout(self.answer_timeout, exchange)
            .await
            .map_err(|_| {
                HttpFailure::NoAnswer(format!(
                    "no answer within {} from {}:{}",
                    shown(self.answer_timeout),
                    t.host,
                    t.port
                ))
            })?
            .map_err(HttpFailure::NoAnswer);
        drop(sender);
        answer
    }

    /// [`HttpClient::send`] from blocking code: on a private current-thread runtime, or on a
    /// helper thread when called inside a runtime (one cannot be started in another).
    pub fn send_blocking(&self, request: OutboundRequest) -> Result<HttpAnswer, HttpFailure> {
        let run = move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| HttpFailure::NotSent(format!("runtime: {e}")))?
                .block_on(self.send(request))
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(run).join()).unwrap_or_else(|_| {
                Err(HttpFailure::NoAnswer(
                    "the request thread failed".to_owned(),
                ))
            })
        } else {
            run()
        }
    }

    async fn connect(&self, t: &Target) -> Result<Sender, HttpFailure> {
        let at = |what: &str, e: &dyn std::fmt::Display| {
            HttpFailure::NotSent(format!(
                "could not connect to {}:{} ({what}): {e}",
                t.host, t.port
            ))
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| at("name lookup", &e))?
            .collect();
        if addrs.is_empty() {
            return Err(at("name lookup", &"no address"));
        }
        if !t.tls && !addrs.iter().all(|a| a.ip().is_loopback()) {
            return Err(HttpFailure::NotSent(format!(
                "plain http:// is for loopback only and {} resolves elsewhere: use https://",
                t.host
            )));
        }
        let tcp = TcpStream::connect(addrs.as_slice())
            .await
            .map_err(|e| at("TCP", &e))?;
        let _ = tcp.set_nodelay(true);
        if t.tls {
            let config = self
                .tls
                .as_ref()
                .ok_or_else(|| at("TLS", &"no TLS settings"))?;
            let name = ServerName::try_from(t.host.clone()).map_err(|e| at("server name", &e))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|e| at("TLS handshake", &chain(&e)))?;
            handshake(TokioIo::new(stream)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
        .map_err(|e| at("HTTP", &chain(&e)))
    }
}

/// The request half of a connection; dropping it ends the connection task.
struct Sender {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    conn: tokio::task::JoinHandle<()>,
}

impl Sender {
    async fn send_request(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        self.send.send_request(req).await
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<Sender, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender { send, conn })
}

/// `e` and its sources: hyper's "connection error" alone does not say that TLS refused us.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_targets_keep_their_path_and_query() {
        let t = target("https://wallet.example:8443/notify/v1?x=1").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("wallet.example", 8443, "/notify/v1?x=1")
        );
        assert_eq!(target("https://wallet.example").unwrap().port, 443);
        let t = target("https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("www.ecb.europa.eu", 443, "www.ecb.europa.eu")
        );
        assert_eq!(t.path, "/stats/eurofxref/eurofxref-daily.xml");
        let t = target("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8443, "/")
        );
        let t = target("https://[::1]:9000/x?y=1#frag").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.path.as_str()
            ),
            ("::1", 9000, "[::1]:9000", "/x?y=1")
        );
    }

    #[test]
    fn plain_http_is_refused_unless_loopback() {
        for ok in [
            "http://127.0.0.1:9/n",
            "http://[::1]:9/n",
            "http://localhost/n",
        ] {
            assert!(!target(ok).unwrap().tls, "{ok}");
        }
        for bad in [
            "http://10.0.0.1/n",
            "http://wallet.example/n",
            "ftp://127.0.0.1/n",
            "/relative",
            "https://",
            "https://:443/",
            "https://u:p@host/",
            "https://host:99999/",
            "https://[::1/",
            "https://host?x",
        ] {
            let e = target(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(
            target("http://wallet.example/n")
                .unwrap_err()
                .contains("loopback only")
        );
    }

    #[test]
    fn tls_settings_are_built_from_pem_or_refused_with_the_input_named() {
        let pki = crate::tls::pki::Pki::generate(&["localhost"], "wallet").unwrap();
        let web = tls_config(&TlsOptions {
            roots: Roots::Web {
                extra_ca_pem: Some(&pki.ca_cert),
            },
            tls13_only: false,
            client_cert: None,
        })
        .unwrap();
        assert_eq!(web.alpn_protocols, vec![b"http/1.1".to_vec()]);
        tls_config(&TlsOptions {
            roots: Roots::Only {
                ca_pem: &pki.ca_cert,
            },
            tls13_only: true,
            client_cert: Some((&pki.client_cert, &pki.client_key)),
        })
        .unwrap();
        let e = tls_config(&TlsOptions {
            roots: Roots::Only { ca_pem: "not pem" },
            tls13_only: true,
            client_cert: None,
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("CA certificate"), "{e}");
    }

    #[test]
    fn messages_show_durations_as_people_read_them() {
        assert_eq!(shown(Duration::from_secs(1)), "1 s");
        assert_eq!(shown(Duration::from_millis(300)), "300 ms");
        assert_eq!(shown(Duration::from_millis(1500)), "1500 ms");
    }
}
