# Roost in a container: `docker build -t roost .` then
#   docker run -d -p 8080:8080 -v roost-data:/data roost
# The first start prints a one-time setup link (docker logs); open it to create the first admin.

# ---- build: the release binary (templates and static files are compiled in) ----
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY static static
COPY benches benches
RUN cargo build --release --locked --bin roost

# ---- run: a small image, a user without privileges, the data on a volume ----
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin roost \
    && mkdir /data && chown roost:roost /data && chmod 0700 /data
COPY --from=build /src/target/release/roost /usr/local/bin/roost
USER roost
ENV ROOST_BIND=0.0.0.0:8080 \
    ROOST_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM (docker stop) stops Roost gracefully: in-flight requests are answered, then it exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/roost"]
CMD ["serve"]
