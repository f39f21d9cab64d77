//! How a fetch reaches the remote: the transport for each scheme (https through reqwest and
//! rustls, git:// over our own TCP connection with our timeouts, ssh and file:// through the
//! `ssh` and `git-upload-pack` programs), and the credentials offered, each at most once.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};

use gix::credentials::helper::{Action, NextAction};
use gix::protocol::transport::client::blocking_io::{http, ssh};
use gix::protocol::transport::client::git as git_transport;

use super::*;

/// The transport for the remote's URL, with our timeouts where the transport allows them.
pub(super) fn connect(
    inner: &Inner,
    remote: &gix::Remote<'_>,
    key_file: &mut Option<tempfile::NamedTempFile>,
) -> std::result::Result<Box<dyn Transport + Send>, Failure> {
    let config = &inner.config;
    let fatal = |kind, message: String| {
        Failure::Fatal(Error::Fetch {
            url: inner.shown_url.clone(),
            kind,
            message: scrub(config, &inner.shown_url, &message),
        })
    };
    let (url, version) = remote
        .sanitized_url_and_version(Direction::Fetch)
        .map_err(|e| fatal(FetchErrorKind::Other, chain(&e)))?;
    let https_auth = matches!(config.auth, GitAuth::HttpsToken(_) | GitAuth::HttpsBasic { .. });
    let ssh_auth = matches!(config.auth, GitAuth::SshKey { .. } | GitAuth::SshAgent);
    match url.scheme {
        // `git://` and `file://` never ask for credentials: configured ones are unused, as
        // they were with libgit2.
        gix::url::Scheme::Git => {
            let host = url.host_unbracketed().unwrap_or_default().to_owned();
            let port = url.port;
            let stream = tcp_connect(&host, port.unwrap_or(9418), config)
                .map_err(|e| fatal(FetchErrorKind::Network, format!("cannot connect: {e}")))?;
            let write = stream
                .try_clone()
                .map_err(|e| fatal(FetchErrorKind::Network, format!("cannot connect: {e}")))?;
            let virtual_host = url.host().map(|h| (h.to_owned(), port));
            Ok(Box::new(git_transport::blocking_io::Connection::new(
                stream,
                write,
                version,
                url.path.clone(),
                virtual_host,
                git_transport::ConnectMode::Daemon,
                false,
            )))
        }
        gix::url::Scheme::Ssh => {
            if https_auth {
                return Err(mismatch(inner, "SSH"));
            }
            let mut url = url;
            if url.user().is_none() {
                let user = match &config.auth {
                    GitAuth::SshKey { user, .. } => user.clone(),
                    _ => "git".to_owned(),
                };
                url.set_user(Some(user));
            }
            if let GitAuth::SshKey { private_key, .. } = &config.auth {
                *key_file = Some(write_key(&config.cache_dir, private_key).map_err(|e| {
                    Failure::Fatal(Error::Cache {
                        path: config.cache_dir.display().to_string(),
                        message: format!("cannot write the SSH key for ssh: {e}"),
                    })
                })?);
            }
            let command = ssh_command(config, key_file.as_ref().map(|f| f.path()));
            let options = ssh::connect::Options {
                command: Some(command),
                disallow_shell: false,
                kind: Some(ssh::ProgramKind::Ssh),
            };
            ssh::connect(url, version, options, false)
                .map(|t| Box::new(t) as Box<dyn Transport + Send>)
                .map_err(|e| fatal(FetchErrorKind::Other, e.to_string()))
        }
        gix::url::Scheme::File => {
            let Ok(transport) = gix::protocol::transport::client::blocking_io::file::connect(
                url.path, version, false,
            );
            Ok(Box::new(transport))
        }
        gix::url::Scheme::Http | gix::url::Scheme::Https => {
            if ssh_auth {
                return Err(mismatch(inner, "HTTPS"));
            }
            if https_auth && url.scheme == gix::url::Scheme::Http && !is_loopback(&url) {
                return Err(fatal(
                    FetchErrorKind::Auth,
                    "refusing to send credentials in clear text over http://; use https://".into(),
                ));
            }
            Ok(Box::new(http::connect::<http::reqwest::Remote>(url, version, false)))
        }
        other => {
            Err(fatal(FetchErrorKind::Other, format!("the `{other}` protocol is not supported")))
        }
    }
}

/// Credentials configured for another kind of remote that will ask for its own: an
/// authentication error before any connection.
pub(super) fn mismatch(inner: &Inner, scheme: &str) -> Failure {
    let configured = match inner.config.auth {
        GitAuth::HttpsToken(_) | GitAuth::HttpsBasic { .. } => "an HTTPS token or password",
        GitAuth::SshKey { .. } => "an SSH key",
        GitAuth::SshAgent => "ssh-agent",
        GitAuth::None => "no credentials",
    };
    Failure::Fatal(Error::Fetch {
        url: inner.shown_url.clone(),
        kind: FetchErrorKind::Auth,
        message: format!("{configured} is configured, which a {scheme} remote cannot use"),
    })
}

pub(super) fn is_loopback(url: &gix::Url) -> bool {
    match url.host_unbracketed() {
        Some("localhost") => true,
        Some(host) => host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A TCP connection with the connect timeout, and the transfer timeout on every read and write.
pub(super) fn tcp_connect(
    host: &str,
    port: u16,
    config: &GitSourceConfig,
) -> std::io::Result<TcpStream> {
    let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host");
    for address in addresses {
        match TcpStream::connect_timeout(&address, config.connect_timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(config.transfer_timeout))?;
                stream.set_write_timeout(Some(config.transfer_timeout))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// HTTP options: reqwest's connect timeout, and the transfer timeout per request. `None` for
/// other transports.
pub(super) fn http_options(
    config: &GitSourceConfig,
    remote: &gix::Remote<'_>,
) -> Option<Box<dyn std::any::Any>> {
    let scheme = remote.url(Direction::Fetch)?.scheme.clone();
    if !matches!(scheme, gix::url::Scheme::Http | gix::url::Scheme::Https) {
        return None;
    }
    let (connect, transfer) = (config.connect_timeout, config.transfer_timeout);
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder.connect_timeout(connect).timeout(transfer))
        })),
        configure_request: None,
    };
    let backend: Arc<std::sync::Mutex<dyn std::any::Any + Send + Sync>> =
        Arc::new(std::sync::Mutex::new(backend));
    Some(Box::new(http::Options {
        connect_timeout: Some(connect),
        user_agent: Some(concat!("immuta-gitops/", env!("CARGO_PKG_VERSION")).to_owned()),
        backend: Some(backend),
        ..http::Options::default()
    }))
}

/// The `ssh` command line: batch mode (never a prompt), our timeouts, and the key file if any.
pub(super) fn ssh_command(config: &GitSourceConfig, key: Option<&Path>) -> OsString {
    let secs = |d: Duration| d.as_secs().max(1);
    let mut command = format!(
        "ssh -o BatchMode=yes -o ConnectTimeout={} -o ServerAliveInterval={} -o ServerAliveCountMax=3",
        secs(config.connect_timeout),
        secs(config.transfer_timeout / 3),
    );
    if let Some(key) = key {
        command.push_str(" -o IdentitiesOnly=yes -i ");
        command.push_str(&shell_quote(&key.to_string_lossy()));
    }
    command.into()
}

pub(super) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Writes the SSH key to a file only this user may read, removed when dropped.
pub(super) fn write_key(
    dir: &Path,
    key: &SecretString,
) -> std::io::Result<tempfile::NamedTempFile> {
    std::fs::create_dir_all(dir)?;
    // `tempfile` creates the file with mode 0600.
    let mut file = tempfile::Builder::new().prefix(".ssh-key-").tempfile_in(dir)?;
    let mut text = key.expose_secret().trim_end().to_owned();
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// How many times the HTTPS credentials were handed out on one connection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct CredentialAttempts {
    user_pass: u32,
}

/// The user and password to answer a credential request with, at most once per connection:
/// a second request means the first answer was rejected. Returns the message of the
/// authentication error otherwise.
pub(super) fn choose_credential(
    auth: &GitAuth,
    attempts: &mut CredentialAttempts,
) -> std::result::Result<(String, SecretString), String> {
    let (user, password) = match auth {
        GitAuth::HttpsToken(token) => ("x-access-token".to_owned(), token.clone()),
        GitAuth::HttpsBasic { user, password } => (user.clone(), password.clone()),
        GitAuth::None => {
            return Err("the remote asks for credentials (user and password) but none are \
                        configured"
                .into());
        }
        GitAuth::SshKey { .. } | GitAuth::SshAgent => {
            return Err("the remote asks for user and password but an SSH key is configured".into());
        }
    };
    attempts.user_pass += 1;
    if attempts.user_pass > 1 {
        return Err(format!("the remote rejected the HTTPS credentials of user `{user}`"));
    }
    Ok((user, password))
}

/// gitoxide's credential function for one connection: the configured HTTPS credentials, once.
pub(super) fn credentials(
    auth: GitAuth,
    failed: Arc<AtomicBool>,
) -> impl FnMut(Action) -> gix::Result<Option<gix::credentials::protocol::Outcome>> + 'static {
    let mut attempts = CredentialAttempts::default();
    move |action| {
        let Action::Get(context) = action else {
            // Store and erase: there is no credential store to update.
            return Ok(None);
        };
        match choose_credential(&auth, &mut attempts) {
            Ok((username, password)) => Ok(Some(gix::credentials::protocol::Outcome {
                credentials: gix::sec::identity::Credentials::UsernamePassword {
                    username,
                    password: password.expose_secret().to_owned(),
                    oauth_refresh_token: None,
                },
                next: NextAction::from(context),
            })),
            Err(message) => {
                failed.store(true, Ordering::Relaxed);
                Err(gix::Error::from_error(gix::error::unauthenticated(message)))
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::source::remote) fn token() -> GitAuth {
        GitAuth::HttpsToken(SecretString::from("ghp_secret"))
    }

    pub(in crate::source::remote) fn key() -> GitAuth {
        GitAuth::SshKey {
            user: "git".into(),
            private_key: SecretString::from("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"),
        }
    }

    #[test]
    fn an_https_token_is_offered_once_and_a_second_request_is_an_auth_error() {
        let mut attempts = CredentialAttempts::default();
        let (user, password) = choose_credential(&token(), &mut attempts).unwrap();
        assert_eq!((user.as_str(), password.expose_secret()), ("x-access-token", "ghp_secret"));
        let second = choose_credential(&token(), &mut attempts);
        assert!(second.unwrap_err().contains("rejected"));
        // It stays rejected however often it is asked.
        assert!(choose_credential(&token(), &mut attempts).is_err());
        assert_eq!(attempts.user_pass, 3);
    }

    #[test]
    fn basic_auth_uses_the_configured_user() {
        let auth = GitAuth::HttpsBasic { user: "ci".into(), password: SecretString::from("pw") };
        let mut attempts = CredentialAttempts::default();
        let (user, password) = choose_credential(&auth, &mut attempts).unwrap();
        assert_eq!((user.as_str(), password.expose_secret()), ("ci", "pw"));
    }

    #[test]
    fn the_credential_function_answers_once_then_fails_as_unauthenticated() {
        let failed = Arc::new(AtomicBool::new(false));
        let mut answer = credentials(token(), Arc::clone(&failed));
        let get = || Action::get_for_url("https://h/o/r.git");
        let first = answer(get()).unwrap().unwrap();
        assert!(matches!(
            first.credentials,
            gix::sec::identity::Credentials::UsernamePassword { ref username, .. }
                if username == "x-access-token"
        ));
        assert!(answer(Action::Erase("x".into())).unwrap().is_none());
        assert!(!failed.load(Ordering::Relaxed));
        let second = answer(get()).unwrap_err();
        assert!(second.is_unauthenticated(), "{second}");
        assert!(failed.load(Ordering::Relaxed));
    }

    #[test]
    fn missing_or_mismatched_credentials_fail_without_answering() {
        let mut attempts = CredentialAttempts::default();
        let none = choose_credential(&GitAuth::None, &mut attempts);
        assert!(none.unwrap_err().contains("none are configured"));
        let mismatch = choose_credential(&key(), &mut attempts);
        assert!(mismatch.unwrap_err().contains("SSH key"));
        assert_eq!(attempts, CredentialAttempts::default());
    }

    #[test]
    fn ssh_runs_in_batch_mode_with_timeouts_and_only_the_given_key() {
        let config = GitSourceConfig::new("ssh://h/r", GitRef::Branch("m".into()), "/c");
        let agent = ssh_command(&config, None).into_string().unwrap();
        assert!(agent.starts_with("ssh -o BatchMode=yes -o ConnectTimeout=15"), "{agent}");
        assert!(agent.contains("ServerAliveInterval=40"), "{agent}");
        assert!(!agent.contains(" -i "), "{agent}");
        let with_key = ssh_command(&config, Some(Path::new("/c/it's key"))).into_string().unwrap();
        assert!(with_key.ends_with(r"-o IdentitiesOnly=yes -i '/c/it'\''s key'"), "{with_key}");

        let dir = tempfile::tempdir().unwrap();
        let file = write_key(dir.path(), &SecretString::from("KEY")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "KEY\n");
        let path = file.path().to_owned();
        drop(file);
        assert!(!path.exists(), "the key file is removed after the fetch");
    }
}
