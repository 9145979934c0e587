# cost-exporter image: a glibc release build on a pinned Rust image, run on distroless `cc`
# (glibc, libgcc, CA certificates, tzdata; no shell) as the numeric non-root user 65532.
# Works with a read-only root filesystem: the job writes no files.
#
#   docker build -t cost-exporter .
#   docker run --rm --read-only -v $PWD/examples/cost-exporter.toml:/etc/cost-exporter/config.toml:ro cost-exporter collect --config /etc/cost-exporter/config.toml

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/it \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > benches/vercel_charges.rs && touch tests/it/main.rs \
 && cargo build --release --locked --bin cost-exporter \
 && rm -rf src benches tests
COPY src ./src
COPY data ./data
COPY benches ./benches
COPY tests/it ./tests/it
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin cost-exporter

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/cost-exporter /usr/local/bin/cost-exporter
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cost-exporter"]
CMD ["push", "--config", "/etc/cost-exporter/config.toml"]
