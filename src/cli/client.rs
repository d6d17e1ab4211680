//! A small synchronous Kafka client for the command-line tools. The CLI is a
//! Kafka client like any other: it speaks the wire protocol to a running
//! broker (corelog or Apache Kafka) and never reaches into broker internals.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::limits;
use crate::security::SecurityProtocol;

const CLIENT_ID: &str = "corelog-cli";

/// How long the CLI waits for one response before giving up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `call_waiting` looks at its stop condition.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

pub fn fail<T>(message: impl Into<String>) -> CliResult<T> {
    Err(CliError(message.into()))
}

/// How the CLI connects (`--command-config client.properties`, Kafka's
/// tools' flag): the security protocol and its `ssl.*` (and `sasl.*`) keys.
pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    /// Every key of the file, as written (the SASL step reads its own).
    pub properties: BTreeMap<String, String>,
    tls: Option<crate::tls::ClientTls>,
}

static CLIENT_SECURITY: OnceLock<ClientSecurity> = OnceLock::new();

/// Reads `--command-config FILE` once, before any connection: every later
/// connection of this process uses it.
pub fn set_command_config(path: &Path) -> CliResult<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?;
    let properties: BTreeMap<String, String> = crate::config::parse_properties(&text)
        .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?
        .into_iter()
        .collect();
    super::command_config::set_from(&properties)
        .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?;
    let protocol = match properties.get("security.protocol") {
        None => SecurityProtocol::Plaintext,
        Some(name) => {
            SecurityProtocol::parse(&name.trim().to_ascii_uppercase()).ok_or_else(|| {
                CliError(format!(
                    "--command-config {}: security.protocol={name}: expected PLAINTEXT, SSL, \
                     SASL_PLAINTEXT or SASL_SSL",
                    path.display()
                ))
            })?
        }
    };
    let tls = if protocol.uses_tls() {
        let settings = crate::tls::settings(&properties, None)
            .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?;
        Some(
            crate::tls::client_config(&settings)
                .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?,
        )
    } else {
        None
    };
    let _ = CLIENT_SECURITY.set(ClientSecurity {
        protocol,
        properties,
        tls,
    });
    Ok(())
}

/// The CLI's connection to a broker: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    /// Whether bytes (or the end) wait to be read; over TLS, bytes already
    /// decrypted count too.
    fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.peek(buf),
            Stream::Tls(tls) => {
                if tls
                    .conn
                    .process_new_packets()
                    .is_ok_and(|s| s.plaintext_bytes_to_read() > 0)
                {
                    return Ok(1);
                }
                tls.sock.peek(buf)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

pub struct KafkaClient {
    stream: Stream,
    address: String,
    /// The request headers' client id (Kafka tools name themselves, e.g.
    /// `console-consumer`, and group members show it).
    client_id: &'static str,
    correlation_id: i32,
    /// Versions the broker serves, by api key.
    versions: HashMap<i16, (i16, i16)>,
}

impl KafkaClient {
    /// Connects to the first reachable address of a comma-separated bootstrap
    /// list and learns the broker's API versions.
    pub fn connect(bootstrap: &str) -> CliResult<KafkaClient> {
        let mut last_error = String::from("empty --bootstrap-server");
        for address in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Self::connect_one(address) {
                Ok(client) => return Ok(client),
                Err(e) => last_error = format!("{address}: {e}"),
            }
        }
        fail(format!("cannot reach a broker: {last_error}"))
    }

    fn connect_one(address: &str) -> CliResult<KafkaClient> {
        let socket = address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| CliError(format!("{address} does not resolve")))?;
        let tcp = TcpStream::connect_timeout(&socket, Duration::from_secs(10))?;
        tcp.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        tcp.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        let security = CLIENT_SECURITY.get();
        let stream = match security.and_then(|s| s.tls.as_ref()) {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let host = address
                    .rsplit_once(':')
                    .map_or(address, |(host, _)| host)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = crate::tls::ClientTls::server_name(host).map_err(CliError)?;
                let mut conn = rustls::ClientConnection::new(tls.config.clone(), name)
                    .map_err(|e| CliError(format!("TLS: {e}")))?;
                let mut tcp = tcp;
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp)
                        .map_err(|e| CliError(format!("TLS handshake: {e}")))?;
                }
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        let mut client = KafkaClient {
            stream,
            address: address.to_string(),
            client_id: CLIENT_ID,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("corelog-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = match client.call(3, &request) {
            Ok(r) if r.error_code == 0 => r,
            // An older broker answers v0 with UNSUPPORTED_VERSION: ask again in v0.
            _ => client.call(0, &ApiVersionsRequest::default())?,
        };
        if response.error_code != 0 {
            return fail(format!(
                "ApiVersions failed with error {}",
                response.error_code
            ));
        }
        client.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        // SASL (`--command-config`): the one step between connecting and
        // the tool's requests.
        if let Some(sasl) = super::command_config::client_sasl() {
            crate::sasl::client::authenticate(&mut client.stream, sasl).map_err(CliError)?;
        }
        Ok(client)
    }

    /// Names the tool in the headers of later requests.
    pub fn set_client_id(&mut self, client_id: &'static str) {
        self.client_id = client_id;
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The broker's version range for an API, if it serves it.
    pub fn served(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.versions.get(&(key as i16)).copied()
    }

    /// The highest version both sides speak: at most `max_wanted` and what the
    /// codec knows, at least the broker's minimum.
    pub fn version(&self, key: ApiKey, max_wanted: i16) -> CliResult<i16> {
        let (broker_min, broker_max) = self.served(key).ok_or_else(|| {
            CliError(format!(
                "the broker at {} does not serve {key:?}",
                self.address
            ))
        })?;
        let codec = key.valid_versions();
        let version = broker_max.min(max_wanted).min(codec.max);
        if version < broker_min.max(codec.min) {
            return fail(format!(
                "no common version of {key:?} with the broker at {}",
                self.address
            ));
        }
        Ok(version)
    }

    /// Sends one request at `version` and waits for its response.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> CliResult<R::Response> {
        self.send(version, request)?;
        self.receive::<R>(version)
    }

    /// Sends a request the broker may hold for up to `max_wait` (a group
    /// join waits for the whole group), checking `stop` while no answer
    /// has begun to arrive: a stopped call is `Ok(None)`, and the
    /// connection must then be dropped, its answer still being owed.
    pub fn call_waiting<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        max_wait: Duration,
        stop: &dyn Fn() -> bool,
    ) -> CliResult<Option<R::Response>> {
        self.send(version, request)?;
        let deadline = Instant::now() + max_wait;
        self.stream.set_read_timeout(Some(STOP_CHECK_INTERVAL))?;
        let arrived = loop {
            if stop() {
                break false;
            }
            match self.stream.peek(&mut [0u8; 1]) {
                Ok(0) => break true, // closed: the read below says so
                Ok(_) => break true,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        self.stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
                        return fail(format!(
                            "no answer from {} within {max_wait:?}",
                            self.address
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        self.stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        if !arrived {
            return Ok(None);
        }
        self.receive::<R>(version).map(Some)
    }

    fn send<R: Request>(&mut self, version: i16, request: &R) -> CliResult<()> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| CliError(format!("unknown api key {}", R::KEY)))?;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .and_then(|_| request.encode(&mut buf, version))
            .map_err(|e| CliError(format!("cannot encode {key:?} v{version}: {e}")))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Reads the response to the request `send` sent last.
    fn receive<R: Request>(&mut self, version: i16) -> CliResult<R::Response> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| CliError(format!("unknown api key {}", R::KEY)))?;
        let mut body = self.read_frame()?;
        let response_header =
            ResponseHeader::decode(&mut body, R::Response::header_version(version))
                .map_err(|e| CliError(format!("malformed {key:?} response header: {e:#}")))?;
        if response_header.correlation_id != self.correlation_id {
            return fail(format!(
                "response correlation id {} does not match request {}",
                response_header.correlation_id, self.correlation_id
            ));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| CliError(format!("malformed {key:?} v{version} response: {e:#}")))
    }

    fn read_frame(&mut self) -> CliResult<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > limits::FRAME_BYTES_MAX {
            return fail(format!("the broker sent a frame of {size} bytes"));
        }
        // Memory follows the bytes that arrive, not the prefix's promise;
        // the decoder then refuses counts the bytes cannot hold
        // (vendor/kafka-protocol/PATCHES.md).
        let mut body = Vec::new();
        (&mut self.stream)
            .take(size as u64)
            .read_to_end(&mut body)?;
        if body.len() != size as usize {
            return fail(format!(
                "the broker closed the connection inside a frame ({} of {size} bytes)",
                body.len()
            ));
        }
        Ok(Bytes::from(body))
    }
}
