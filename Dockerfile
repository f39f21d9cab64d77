# syntax=docker/dockerfile:1
# immuta-gitops: the reconciler as a sidecar or a plain service. One static binary (musl, rustls,
# gitoxide: no system library) on `scratch`, with the CA certificates and a non-root user.
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
#
# The image has no shell and no `ssh` or `git` programs: repositories are followed over HTTPS
# (a token) or git://. For SSH URLs build the `ssh` target (`docker build --target ssh .`),
# which adds OpenSSH's client on a slim Debian base.
#
# The release workflow builds the binaries first (one per architecture) and passes them in place
# of the `build` stage (`--build-context build=DIR` with DIR/out/<arch>/immuta-gitops).

# --- Build -----------------------------------------------------------------------------------
FROM rust:1.95.0-bookworm AS build
ARG TARGETARCH
# musl-tools: aws-lc's C code is compiled for the musl target with musl-gcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them: the workspace's manifests and
# build script, with empty sources for each member (crates/emulator is a dependency of the
# binary; crates/testkit only of the tests, but the workspace must load).
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates/emulator/Cargo.toml crates/emulator/
COPY crates/testkit/Cargo.toml crates/testkit/
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /target ;; \
      arm64) echo aarch64-unknown-linux-musl > /target ;; \
      *) echo "unsupported architecture $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && rustup target add "$(cat /target)" \
 && mkdir -p src crates/emulator/src crates/testkit/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/emulator/src/lib.rs crates/testkit/src/lib.rs \
 && (cargo build --release --locked --target "$(cat /target)" --bin immuta-gitops || true)
COPY . .
# No .git in the context (.dockerignore): pass the commit for `version` as a build argument.
ARG IMMUTA_GITOPS_COMMIT=unknown
RUN touch src/main.rs src/lib.rs crates/emulator/src/lib.rs \
 && IMMUTA_GITOPS_COMMIT="$IMMUTA_GITOPS_COMMIT" \
    cargo build --release --locked --target "$(cat /target)" --bin immuta-gitops \
 && mkdir -p "/out/$TARGETARCH" \
 && cp "target/$(cat /target)/release/immuta-gitops" "/out/$TARGETARCH/immuta-gitops"

# --- The files of the runtime image ----------------------------------------------------------
FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/immuta-gitops /rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'immuta-gitops:x:10001:10001:immuta-gitops:/var/lib/immuta-gitops:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'immuta-gitops:x:10001:' > /rootfs/etc/group \
 && chown 10001:10001 /rootfs/var/lib/immuta-gitops \
 && chmod 1777 /rootfs/tmp

# --- With SSH (docker build --target ssh) ----------------------------------------------------
FROM debian:bookworm-slim AS ssh
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 immuta-gitops \
 && useradd --system --uid 10001 --gid immuta-gitops --home-dir /var/lib/immuta-gitops \
      --shell /usr/sbin/nologin immuta-gitops \
 && mkdir -p /var/lib/immuta-gitops \
 && chown immuta-gitops:immuta-gitops /var/lib/immuta-gitops
COPY --from=build /out/${TARGETARCH}/immuta-gitops /usr/local/bin/immuta-gitops
USER 10001:10001
WORKDIR /var/lib/immuta-gitops
VOLUME ["/var/lib/immuta-gitops"]
ENV IMMUTA_GITOPS_STATE_DIR=/var/lib/immuta-gitops
ENV IMMUTA_GITOPS_LISTEN=0.0.0.0:8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/immuta-gitops"]
CMD ["run", "--dir", "/specs"]

# --- Run (the default target) ----------------------------------------------------------------
FROM scratch
ARG TARGETARCH
COPY --from=rootfs /rootfs/ /
COPY --from=build /out/${TARGETARCH}/immuta-gitops /usr/local/bin/immuta-gitops
USER 10001:10001
WORKDIR /var/lib/immuta-gitops
# Git cache, state file and lock live here: keep them across restarts.
VOLUME ["/var/lib/immuta-gitops"]
ENV IMMUTA_GITOPS_STATE_DIR=/var/lib/immuta-gitops
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Reachable from outside the container (probes, webhooks, metrics) even when `run` gets its own
# arguments; `--listen` still overrides it.
ENV IMMUTA_GITOPS_LISTEN=0.0.0.0:8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/immuta-gitops"]
CMD ["run", "--dir", "/specs"]
