# Every service's image, from the repository root (the uv workspace); SERVICE names the service:
#   docker build --build-arg SERVICE=gateway -t inbox-gateway .
# (conversations, customers, gateway, ingest, orders, presence, sandbox). Each image runs
# `python -m inbox_<service> <role>`; Kubernetes passes the role (api|worker) as args. Stages that an
# image does not use are not built (BuildKit), so only the gateway's build runs the web UI's.
ARG SERVICE

# The web UI (web/, Preact + Vite), served by the gateway at /.
FROM node:22-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM python:3.11-slim AS build
ARG SERVICE
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3.11
# Third-party dependencies first, from the lock alone (no workspace sources needed with --frozen):
# this layer is rebuilt only when uv.lock or the root pyproject.toml change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "inbox-${SERVICE}" --no-editable
# Then the workspace packages this service needs, installed as wheels (not editable), so the
# runtime image needs the virtualenv only. --locked fails the build when uv.lock is stale.
COPY libs ./libs
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --package "inbox-${SERVICE}" --no-editable

FROM python:3.11-slim AS runtime
RUN groupadd --gid 10001 inbox && \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin inbox
# Owned by root and never written: the pod runs with a read-only root filesystem and /tmp as emptyDir.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
WORKDIR /tmp
USER 10001:10001
CMD ["all"]

# One stage per service: its entrypoint and ports (the settings' defaults, which the manifests use).
FROM runtime AS gateway
COPY --from=web /web/dist /app/web
ENV GATEWAY_WEB_DIR=/app/web
EXPOSE 8000 9000
ENTRYPOINT ["python", "-m", "inbox_gateway"]

FROM runtime AS ingest
EXPOSE 8001 50055 9055 9001
ENTRYPOINT ["python", "-m", "inbox_ingest"]

FROM runtime AS conversations
EXPOSE 50051 9051
ENTRYPOINT ["python", "-m", "inbox_conversations"]

FROM runtime AS customers
EXPOSE 50052 9052
ENTRYPOINT ["python", "-m", "inbox_customers"]

FROM runtime AS orders
EXPOSE 50053 9053
ENTRYPOINT ["python", "-m", "inbox_orders"]

FROM runtime AS presence
EXPOSE 50054 9054
ENTRYPOINT ["python", "-m", "inbox_presence"]

FROM runtime AS sandbox
EXPOSE 8002
ENTRYPOINT ["python", "-m", "inbox_sandbox"]

FROM ${SERVICE}
