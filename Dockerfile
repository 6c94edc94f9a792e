# Multi-stage build of both binaries; the runtime image holds nothing else.
#
# Dependencies are compiled in a layer of their own, from the manifests and
# the lock file alone, so that changing objectsync's code rebuilds only its
# own crates. Works with BuildKit and with the classic builder.

# The workspace with every crate's code replaced by an empty stub: what the
# dependency layer is built from. Its content changes only when a manifest
# or the lock file does (or a crate, a library or a binary appears), so the
# layers built from it stay cached otherwise.
FROM rust:1.95-slim-bookworm AS skeleton
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN set -eu; \
    mkdir /skeleton; \
    cp Cargo.toml Cargo.lock /skeleton/; \
    for dir in crates/*/; do \
        mkdir -p "/skeleton/${dir}src"; \
        cp "${dir}Cargo.toml" "/skeleton/$dir"; \
        if [ -f "${dir}src/lib.rs" ]; then : > "/skeleton/${dir}src/lib.rs"; fi; \
        if [ -f "${dir}src/main.rs" ]; then echo 'fn main() {}' > "/skeleton/${dir}src/main.rs"; fi; \
        if [ -f "${dir}build.rs" ]; then echo 'fn main() {}' > "/skeleton/${dir}build.rs"; fi; \
        if [ -d "${dir}src/bin" ]; then \
            mkdir -p "/skeleton/${dir}src/bin"; \
            for bin in "${dir}"src/bin/*.rs; do echo 'fn main() {}' > "/skeleton/$bin"; done; \
        fi; \
    done

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked -p objectsync-ingest -p objectsync-worker
# The real code (and the migrations, which are compiled in). COPY keeps the
# files' modification times, which can be older than the stubs built above:
# touching every source makes cargo rebuild objectsync's crates for sure.
COPY crates crates
COPY migrations migrations
RUN find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p objectsync-ingest -p objectsync-worker

FROM debian:bookworm-slim
# The platform's root certificates: what `sslrootcert=system` and an
# `amqps://` URL without `cacertfile` verify a server against (managed
# brokers and databases whose certificate a public CA signed), and the
# receivers of https webhook deliveries.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 objectsync
COPY --from=build /src/target/release/objectsync-ingest /usr/local/bin/
COPY --from=build /src/target/release/objectsync-worker /usr/local/bin/
USER objectsync
ENV OBJECTSYNC__HTTP__HOST=0.0.0.0
# ingest's API (and a worker's /healthz, /readyz, /metrics on 8081).
EXPOSE 8080 8081
# Both binaries have `probe`, which exits 0 when /readyz answers 200 (the
# compose file uses it as each service's health check).
CMD ["objectsync-ingest", "serve"]
