# syntax=docker/dockerfile:1
# cardstream in one image: the binary (every component is a subcommand) with the dashboard
# embedded. Three stages: the web app, the Rust build, and a small non-root runtime.

FROM node:22.16.0-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM rust:1.95.0-bookworm AS build
WORKDIR /src
# librdkafka (and the OpenSSL it links statically) are built from source by rdkafka's build
# script: make, a C compiler, python3 and perl.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential python3 perl \
    && rm -rf /var/lib/apt/lists/*
COPY . .
COPY --from=web /src/web/dist web/dist
# What cardstream_build_info reports as the revision (the build context has no .git); declared
# here, after the slow layers, so that a new revision does not invalidate them:
#   docker build --build-arg CARDSTREAM_REVISION=$(git rev-parse --short=12 HEAD) .
ARG CARDSTREAM_REVISION=unknown
# The registry and the target directory live in BuildKit caches across builds, so a source
# change recompiles the crates it touches, not the ~500 dependencies. The binary is copied out
# of the cache mount, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cardstream \
    && cp target/release/cardstream /usr/local/bin/cardstream \
    && strip /usr/local/bin/cardstream

FROM debian:12.11-slim
# zlib for librdkafka's compression; CA certificates for TLS to Kafka and Postgres.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin cardstream
COPY --from=build /usr/local/bin/cardstream /usr/local/bin/cardstream
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/cardstream"]
CMD ["--help"]
