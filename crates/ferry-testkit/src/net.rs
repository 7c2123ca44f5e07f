//! Real network pieces for tests: a private certificate authority, nginx
//! as a TLS-terminating reverse proxy, and microsocks as a SOCKS5 proxy
//! that alone can resolve a test host name.
//!
//! nginx and microsocks are Debian's packages (`.ci/run` installs them); a
//! test that needs one fails with a clear message when it is missing.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A certificate authority that exists only in a test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> std::io::Result<Self> {
        let key = KeyPair::generate().map_err(other)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).map_err(other)?;
        Ok(Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (what `SSL_CERT_FILE` points at).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA certificate to `path`.
    pub fn write_pem(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.pem)
    }

    /// A server certificate for `names` (DNS names or IP addresses), as
    /// PEM certificate and PEM private key written to `dir/name.{crt,key}`.
    pub fn issue(
        &self,
        dir: &Path,
        name: &str,
        names: &[&str],
    ) -> std::io::Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate().map_err(other)?;
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(other)?;
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).map_err(other)?;
        let (crt, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&crt, cert.pem())?;
        std::fs::write(&k, key.serialize_pem())?;
        Ok((crt, k))
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A port free for both UDP and TCP on `ip` (bound, then released), as a
/// TURN server listens.
pub fn free_udp_tcp_port(ip: std::net::IpAddr) -> std::io::Result<u16> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind((ip, 0))?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(other(format!("no port free for UDP and TCP on {ip}")))
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, within: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(other(format!("nothing listens on {addr}")))
}

fn require(program: &str, package: &str) -> std::io::Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(other(format!(
        "{program} is not installed; install Debian's {package} (.ci/run does)"
    )))
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx terminating TLS on a loopback port and passing HTTP and
/// WebSocket upgrades to a relay, as the README's deployment advice says.
pub struct Nginx {
    _child: Killed,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Serves `https://127.0.0.1:PORT` with `cert`/`key`, forwarding to
    /// `upstream` (`127.0.0.1:PORT` of a plain-HTTP relay).
    pub fn start(cert: &Path, key: &Path, upstream: &str) -> std::io::Result<Self> {
        let nginx = require("nginx", "nginx-light")?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format ferry '$request_method $uri $request_length $status';
    access_log {d}/access.log ferry;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 0;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#,
            cert = cert.display(),
            key = key.display(),
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let child = Killed(child);
        wait_listening(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            other(format!("nginx did not start: {e}\n{log}"))
        })?;
        Ok(Self {
            _child: child,
            port,
            dir,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// What nginx logged of each request so far, one line per request:
    /// `METHOD PATH REQUEST_BYTES STATUS` (what a proxy in front of the
    /// relay sees; the query string is left out).
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// microsocks on a loopback port, in its own mount namespace whose
/// `/etc/hosts` maps `names` to 127.0.0.1: only the proxy can resolve
/// them. Outgoing connections leave from `bind` (e.g. 127.0.0.2), so a
/// server can tell proxied connections from direct ones.
pub struct Socks {
    child: Option<Killed>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Socks {
    /// Starts the proxy.
    pub fn start(names: &[&str], bind: &str) -> std::io::Result<Self> {
        let microsocks = require("microsocks", "microsocks")?;
        let dir = tempfile::tempdir()?;
        let hosts = dir.path().join("hosts");
        let mut f = std::fs::File::create(&hosts)?;
        writeln!(f, "127.0.0.1 localhost")?;
        for n in names {
            writeln!(f, "127.0.0.1 {n}")?;
        }
        drop(f);
        let port = free_port()?;
        let script = format!(
            "mount --bind '{}' /etc/hosts && echo ready && exec '{}' -i 127.0.0.1 -p {port} -b {bind}",
            hosts.display(),
            microsocks.display()
        );
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let child = Killed(child);
        if line.trim() != "ready" {
            return Err(other(
                "could not give microsocks its own /etc/hosts (unshare --mount needs root)",
            ));
        }
        wait_listening(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        )?;
        Ok(Self {
            child: Some(child),
            port,
            _dir: dir,
        })
    }

    /// `socks5h://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("socks5h://127.0.0.1:{}", self.port)
    }

    /// Stops the proxy (its port then refuses connections).
    pub fn stop(&mut self) {
        self.child = None;
    }
}
