# syntax=docker/dockerfile:1
# The engine's container image: `docker build -t engine .` from the repository root.
# It runs the operator named by ENGINE_OPERATOR (default: the example Site) and is the
# base for your own: `FROM engine:0.1.0` then `COPY yourpackage /opt/operator/yourpackage`
# (/opt/operator is on PYTHONPATH; docs/operators.md shows the whole path).
#
# The base is pinned by an exact patch-release tag of the official image (Python 3.11.13 on
# Debian 12 "bookworm", slim variant). It is not pinned by digest because no digest was
# read from a registry when this file was written; to pin one, run
# `docker buildx imagetools inspect python:3.11.13-slim-bookworm` and append
# `@sha256:<digest>` to both FROM lines (docs/deploy.md).

# --- build: install the engine and its dependencies under /install ----------------------
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
RUN pip install --no-cache-dir --prefix=/install .

# --- final: the interpreter, the installed packages, nothing else -----------------------
FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/operator \
    ENGINE_OPERATOR=engine.cli.example_operator:site \
    ENGINE_STATE_DIR=/var/lib/engine
COPY --from=build /install /usr/local
# The state dir (journal, registry state, log) is the only writable path besides /tmp;
# in Kubernetes a PersistentVolumeClaim is mounted over it. /opt/operator holds the
# packages of an image built FROM this one (read-only at run time).
RUN mkdir -p /var/lib/engine /opt/operator \
    && chown 65532:65532 /var/lib/engine \
    && chmod 0700 /var/lib/engine
WORKDIR /var/lib/engine
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["engine"]
CMD ["run", "--in-cluster"]
