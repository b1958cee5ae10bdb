# Countersign: the C binaries (countersign, -worker, -scheduler, -api) on Debian 12.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config gawk libpq-dev postgresql-common librdkafka-dev \
        libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include include
COPY lib lib
COPY sql sql
COPY tools/sqlgen.awk tools/sqlgen.awk
COPY cli cli
COPY worker worker
COPY scheduler scheduler
COPY api api
COPY tools/embed.awk tools/embed.awk
RUN make -j"$(nproc)" all

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpq5 librdkafka1 libcurl4 libjson-c5 libmicrohttpd12 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 countersign \
    && mkdir -p /var/lib/countersign && chown countersign /var/lib/countersign
COPY --from=build /src/build/countersign* /usr/local/bin/
USER countersign
ENTRYPOINT []
CMD ["countersign", "--help"]
