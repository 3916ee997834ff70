# syntax=docker/dockerfile:1
# durable-azstorage worker image: `worker` (durabletask SDK apps), `run` (Azure Functions Python apps)
# and any other CLI verb. See docs/deploy.md.
#
#   docker build -t durable-azstorage .
#   docker run --rm -v "$PWD/myapp:/app:ro" -e AzureWebJobsStorage=... durable-azstorage \
#       worker --app workflows:register --task-hub-name MyHub
#
# The app lives in /app (mounted, or copied in by a Dockerfile `FROM durable-azstorage` + `COPY . /app`);
# /app is the working directory, so `--app module:function` imports from it.
ARG BASE_IMAGE=python:3.11-slim-bookworm
# checkov:skip=CKV_DOCKER_7: the tag comes from BASE_IMAGE (python:3.11-slim-bookworm), which checkov cannot resolve

FROM ${BASE_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY durable_azstorage ./durable_azstorage
# A wheel house of the package, its runtime dependencies and the Functions extra (for `run`).
RUN python3 -m pip wheel --wheel-dir /wheels ".[functions]"

FROM ${BASE_IMAGE}
ARG UID=10001
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DURABLE_AZSTORAGE_HEALTH_PORT=8080 \
    DURABLE_AZSTORAGE_HEALTH_HOST=0.0.0.0
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python3 -m pip install --no-index /wheels/*.whl \
    && groupadd --system --gid "${UID}" durable \
    && useradd --system --uid "${UID}" --gid durable --home-dir /app --shell /usr/sbin/nologin durable \
    && mkdir -p /app \
    && chown durable:durable /app
WORKDIR /app
USER ${UID}:${UID}
# 8080: /healthz and /readyz of `worker`; 7071: the HTTP port of `run --host 0.0.0.0`.
EXPOSE 8080 7071
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os,sys,urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DURABLE_AZSTORAGE_HEALTH_PORT', '8080'), timeout=2); sys.exit(0)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["durable-azstorage", "-v"]
CMD ["worker", "--app", "app:register"]
