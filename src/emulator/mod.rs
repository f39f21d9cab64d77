//! An in-memory emulator of the documented Immuta API (placeholder: filled in by issue 3).

/// Arguments of `immuta-gitops emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}
