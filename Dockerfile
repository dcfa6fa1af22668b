# personae in a container: `docker compose up -d` with compose.yaml beside this file.
# The build runs the same command as a host install (README → Operations) and the image
# uses the same paths as deploy/personae.service: the binary in /usr/local/bin, the
# database in /var/lib/personae/data.

# --- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# SQLite is compiled in (rusqlite "bundled"); the C compiler comes with the rust image.
RUN cargo install --locked --path . --root /usr/local

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates for HTTPS to Discord and to a paid LLM API; curl for the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/personae --shell /usr/sbin/nologin personae \
    && install -d -o personae -g personae -m 0750 /var/lib/personae /var/lib/personae/data
COPY --from=build /usr/local/bin/personae /usr/local/bin/personae
USER personae
WORKDIR /var/lib/personae
ENV DATABASE_PATH=/var/lib/personae/data/personae.db \
    METRICS_ADDR=0.0.0.0:9184 \
    LOG_FORMAT=json
VOLUME /var/lib/personae/data
EXPOSE 9184
# 200 once the gateway is connected and the database answers; start-up takes a few seconds.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9184/healthz || exit 1
# SIGTERM (docker stop) lets answers in progress finish; give it longer than the default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/personae"]
CMD ["run"]
