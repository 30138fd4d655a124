# The test-executor server, for `docker compose up --build` on a machine
# whose Docker engine can pull images. Build context: the repository root.
FROM rust:1-bookworm AS build
WORKDIR /src
# Queries are checked at run time (sqlx::query_as), so no database is needed to build.
COPY . .
RUN cargo build --release --locked --bin test-executor \
    && cp target/release/test-executor /usr/local/bin/test-executor

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /usr/local/bin/test-executor /usr/local/bin/test-executor
COPY assets/ assets/
COPY migrations/ migrations/
COPY sample-tests/ sample-tests/
# Runs as root to reach the mounted Docker socket; every test run gets its
# own sandboxed container on that engine, never this one.
ENV BIND=0.0.0.0:8000 \
    ASSETS_DIR=/app/assets \
    TESTS_DIR=/app/sample-tests \
    RUNNER_IMAGE=test-executor-runner:latest
EXPOSE 8000
CMD ["test-executor"]
