//! Byte streams to a relay for the live WebSocket: TCP, directly or through
//! the SOCKS5 proxy (the proxy resolves the name), then TLS for `wss://`.

use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_socks::tcp::Socks5Stream;

use super::Network;
use crate::transport::ClientError;

/// A connection of any kind.
pub(crate) trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> IoStream for T {}

/// A connection that does not complete in this time failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a stream to `host:port` as `network` says, with TLS when `tls`.
pub(crate) async fn connect_stream(
    network: &Network,
    host: &str,
    port: u16,
    tls: bool,
) -> Result<Box<dyn IoStream>, ClientError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tcp(network, host, port))
        .await
        .map_err(|_| ClientError::Transport("connection timed out".into()))??;
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| ClientError::Protocol("relay host is not a valid name".into()))?;
    let connector = tokio_rustls::TlsConnector::from(super::client_config()?);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| ClientError::Transport("TLS handshake timed out".into()))?
        .map_err(|e| super::classify_io(&e))?;
    Ok(Box::new(stream))
}

async fn tcp(network: &Network, host: &str, port: u16) -> Result<TcpStream, ClientError> {
    let Some(proxy) = network.proxy() else {
        return TcpStream::connect((host, port))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()));
    };
    let addr = proxy.address();
    let target = (host, port);
    let stream = match proxy.credentials() {
        None => Socks5Stream::connect(addr.as_str(), target).await,
        Some((user, pass)) => {
            Socks5Stream::connect_with_password(addr.as_str(), target, user, pass).await
        }
    };
    match stream {
        Ok(s) => Ok(s.into_inner()),
        Err(tokio_socks::Error::Io(e)) if !proxy.accepts().await => {
            Err(ClientError::Proxy(format!("{addr}: {e}")))
        }
        Err(tokio_socks::Error::ProxyServerUnreachable) => {
            Err(ClientError::Proxy(format!("{addr}: no address")))
        }
        Err(e) => Err(ClientError::Transport(format!(
            "relay unreachable through the proxy: {e}"
        ))),
    }
}
