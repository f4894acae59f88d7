# One image for every role: orchestrator (`taskforce run|demo`), worker (`taskforce worker`)
# and Flower (`celery -A workers.app flower`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY orchestrator ./orchestrator
COPY workers ./workers
RUN pip install --no-cache-dir . && useradd --create-home taskforce
USER taskforce
CMD ["taskforce", "--help"]
