# The deployed image: the webapp on the project's own Debian base, Python deps from the
# host-built wheelhouse (.wheelhouse/, see flows/image/wheelhouse.py). Never pulls:
# BASE_IMAGE is built locally by scripts/build-base-image.sh.
# Works with the classic builder (Docker SDK, engine 20.10): no BuildKit-only syntax.
ARG BASE_IMAGE=deliverypipeline/base:bookworm-py311

# --- dependencies: a venv built from the wheelhouse, without pip in it -------------------
FROM ${BASE_IMAGE} AS deps
COPY .wheelhouse/ /tmp/wheelhouse/
RUN set -eu; \
    python3 -m venv --without-pip /opt/venv; \
    pip_whl=$(ls /usr/share/python-wheels/pip-*.whl); \
    /opt/venv/bin/python "$pip_whl/pip" install --quiet --no-index --no-cache-dir \
        --disable-pip-version-check --find-links /tmp/wheelhouse \
        -r /tmp/wheelhouse/requirements.txt

# --- runtime --------------------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir -p /app/data \
    && chown app:app /app/data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    DELIVERY_DATA_DIR=/app/data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app

# Code after dependencies: a code-only change rebuilds from here.
COPY webapp/ /app/webapp/

# Build info last: it changes with every build.
ARG VERSION=0.0.0+dev
ARG REVISION=unknown
ARG BUILD_TIME=unknown
RUN python -c 'import json, os, sys; json.dump({k.lower(): os.environ[k] for k in ("VERSION", "REVISION", "BUILD_TIME")}, sys.stdout)' \
        > /app/webapp/buildinfo.json
LABEL org.opencontainers.image.title="deliverypipeline" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_TIME}"

USER app
EXPOSE 8080
# /app/application.conf (DELIVERY_CONF) is mounted by the target; without it: LevelDB in /app/data.
HEALTHCHECK --interval=3s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${PORT}/health" || exit 1
CMD ["python", "-m", "webapp"]
