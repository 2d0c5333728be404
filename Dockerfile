# syntax=docker/dockerfile:1
# cardstream in one image: the binary (every component is a subcommand) with the dashboard
# embedded. Three stages: the web app, the Rust build, and a small non-root runtime.

FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka (and the OpenSSL it links statically) are built from source by rdkafka's build
# script: make, a C compiler, python3 and perl.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential python3 perl \
    && rm -rf /var/lib/apt/lists/*
COPY . .
COPY --from=web /src/web/dist web/dist
RUN cargo build --release --locked -p cardstream \
    && strip target/release/cardstream

FROM debian:bookworm-slim
# zlib for librdkafka's compression; CA certificates for TLS to Kafka and Postgres.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin cardstream
COPY --from=build /src/target/release/cardstream /usr/local/bin/cardstream
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/cardstream"]
CMD ["--help"]
