# Multi-stage build of both binaries; the runtime image holds nothing else.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p objectsync-ingest -p objectsync-worker

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 objectsync
COPY --from=build /src/target/release/objectsync-ingest /usr/local/bin/
COPY --from=build /src/target/release/objectsync-worker /usr/local/bin/
USER objectsync
ENV OBJECTSYNC__HTTP__HOST=0.0.0.0
CMD ["objectsync-ingest", "serve"]
