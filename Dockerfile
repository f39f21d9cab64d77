# syntax=docker/dockerfile:1
# immuta-gitops: the reconciler as a sidecar or a plain service.
#
#   docker build -t immuta-gitops .
#   docker run --rm -p 8080:8080 -v immuta-gitops-state:/var/lib/immuta-gitops \
#     -e IMMUTA_URL=https://your-tenant.immuta.com -e IMMUTA_API_KEY \
#     immuta-gitops run --repo https://github.com/acme/immuta-config.git --branch main
#
# Arguments replace CMD, so the listen address comes from the environment
# (IMMUTA_GITOPS_LISTEN=0.0.0.0:8080 below): /webhook and the probes are reachable from outside
# the container whatever `run` is given. Without arguments the image watches specs mounted at
# /specs (`-v "$PWD/specs:/specs:ro"`, or a ConfigMap).

# --- Build -----------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them: the workspace's manifests, with empty
# sources for each member (crates/emulator is a dependency of the binary; crates/testkit only of
# the tests, but the workspace must load).
COPY Cargo.toml Cargo.lock ./
COPY crates/emulator/Cargo.toml crates/emulator/
COPY crates/testkit/Cargo.toml crates/testkit/
RUN mkdir -p src crates/emulator/src crates/testkit/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/emulator/src/lib.rs crates/testkit/src/lib.rs \
 && cargo build --release --locked --bin immuta-gitops || true
COPY . .
RUN touch src/main.rs src/lib.rs crates/emulator/src/lib.rs \
 && cargo build --release --locked --bin immuta-gitops

# --- Run -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 immuta-gitops \
 && useradd --system --uid 10001 --gid immuta-gitops --home-dir /var/lib/immuta-gitops \
      --shell /usr/sbin/nologin immuta-gitops \
 && mkdir -p /var/lib/immuta-gitops \
 && chown immuta-gitops:immuta-gitops /var/lib/immuta-gitops
COPY --from=build /src/target/release/immuta-gitops /usr/local/bin/immuta-gitops

USER 10001:10001
WORKDIR /var/lib/immuta-gitops
# Git cache, state file and lock live here: keep them across restarts.
VOLUME ["/var/lib/immuta-gitops"]
ENV IMMUTA_GITOPS_STATE_DIR=/var/lib/immuta-gitops
# Reachable from outside the container (probes, webhooks, metrics) even when `run` gets its own
# arguments; `--listen` still overrides it.
ENV IMMUTA_GITOPS_LISTEN=0.0.0.0:8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/immuta-gitops"]
CMD ["run", "--dir", "/specs"]
