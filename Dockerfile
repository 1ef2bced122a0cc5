# The edge-items host as a container image: our wasmtime host, the api
# component and the composed components. Build and run (docs/deploy.md):
#
#   docker build -t edge-items .
#   docker run -p 8080:8080 -v items-data:/data edge-items
#
# The builder runs the same build step as CI (`cargo xtask build`);
# rust-toolchain.toml makes rustup install Rust 1.95.0 and wasm32-wasip2.
FROM rust:1.95-trixie AS build
WORKDIR /src
COPY . .
RUN cargo xtask build

FROM debian:trixie-slim
# TLS roots come with the binary (rustls + webpki-roots); nothing to install.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin edge-items \
    && mkdir -p /data /opt/edge-items \
    && chown edge-items /data
COPY --from=build /src/target/release/edge-items /usr/local/bin/edge-items
COPY --from=build /src/target/wasm32-wasip2/release/api.wasm /opt/edge-items/api.wasm
COPY --from=build /src/target/components/api-dynamodb.wasm /src/target/components/api-firestore.wasm /opt/edge-items/
# The embedded store's file and the compiled-component cache (data/cache).
VOLUME /data
# Callers need a bearer token: give the JWKS, issuer and audience with
# `docker run -e ITEMS_JWT_JWKS=... -e ITEMS_JWT_ISSUER=... -e
# ITEMS_JWT_AUDIENCE=...` (docs/SECURITY.md); until then items requests
# answer 500 naming the missing setting.
ENV EDGE_ITEMS_COMPONENT=/opt/edge-items/api.wasm \
    EDGE_ITEMS_DATA=/data/items.db \
    EDGE_ITEMS_LISTEN=0.0.0.0:8080 \
    ITEMS_AUTH=jwt
USER edge-items
EXPOSE 8080
# Ready when /readyz answers 200, i.e. the store answers a read. The image
# has no curl: `edge-items probe` GETs the URL and exits 0 on 2xx only.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["edge-items", "probe", "--timeout", "3s", "http://127.0.0.1:8080/readyz"]
# SIGTERM (docker stop) lets requests in flight finish, then exits 0.
ENTRYPOINT ["edge-items"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
