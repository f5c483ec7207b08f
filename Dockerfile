# The three binaries (`clearing`, `region-adapter`, `national-gateway`) in one small, non-root runtime image; the Helm chart's
# default image. Build: docker build -t ghcr.io/clearinghouse/clearinghouse:0.1.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them: a throwaway build of the manifests.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY proto proto
COPY region-adapter/Cargo.toml region-adapter/Cargo.toml
COPY region-adapter/server/Cargo.toml region-adapter/server/Cargo.toml
COPY clearing/Cargo.toml clearing/Cargo.toml
COPY clearing/edge/Cargo.toml clearing/edge/Cargo.toml
COPY clearing/store/Cargo.toml clearing/store/Cargo.toml
COPY clearing/service/Cargo.toml clearing/service/Cargo.toml
COPY clearing/tools/Cargo.toml clearing/tools/Cargo.toml
COPY gateway/Cargo.toml gateway/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN mkdir -p region-adapter/src region-adapter/benches region-adapter/server/src clearing/src clearing/edge/src clearing/store/src \
      clearing/service/src clearing/service/benches clearing/tools/src gateway/src tests/src \
 && echo 'fn main() {}' > clearing/src/main.rs && echo 'fn main() {}' > region-adapter/server/src/main.rs \
 && echo 'fn main() {}' > gateway/src/main.rs \
 && touch region-adapter/src/lib.rs region-adapter/server/src/lib.rs clearing/edge/src/lib.rs clearing/store/src/lib.rs clearing/service/src/lib.rs \
      clearing/tools/src/lib.rs gateway/src/lib.rs tests/src/lib.rs \
 && echo 'fn main() {}' > region-adapter/benches/engine.rs && echo 'fn main() {}' > clearing/service/benches/netting.rs \
 && cargo build --release --locked -p clearing -p region-adapter-server -p national-gateway --bins \
 && rm -rf region-adapter/src region-adapter/benches region-adapter/server/src clearing/src clearing/edge/src clearing/store/src \
      clearing/service/src clearing/service/benches clearing/tools/src gateway/src tests/src
COPY region-adapter region-adapter
COPY clearing clearing
COPY gateway gateway
COPY tests tests
RUN touch region-adapter/src/lib.rs region-adapter/server/src/lib.rs region-adapter/server/src/main.rs clearing/src/main.rs \
      clearing/edge/src/lib.rs clearing/store/src/lib.rs clearing/service/src/lib.rs clearing/tools/src/lib.rs gateway/src/lib.rs gateway/src/main.rs \
 && cargo build --release --locked -p clearing -p region-adapter-server -p national-gateway --bins \
 && cp target/release/clearing target/release/region-adapter target/release/national-gateway /usr/local/bin/

# glibc + libgcc, no shell, no package manager; user 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/clearing /usr/local/bin/region-adapter /usr/local/bin/national-gateway /usr/local/bin/
USER 65532:65532
EXPOSE 50051 50061 8443
ENTRYPOINT ["clearing"]
CMD ["serve", "--help"]
