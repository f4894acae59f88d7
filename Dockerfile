# One image for every role in docker-compose.yml: orchestrator (`taskforce batch|run|demo`),
# worker (`taskforce worker`) and Flower (`taskforce flower`). The Postgres checkpointer is a
# regular dependency and the extras bring the S3 client for the shared files and Flower, so
# nothing is left to add per role; the deployment runs its own Redis, so no embedded one.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY taskforce_demo ./taskforce_demo
# A fixed uid: the orchestrator writes its results into a directory mounted from the host.
RUN pip install --no-cache-dir '.[s3,flower]' && useradd --create-home --uid 1000 taskforce
USER taskforce
CMD ["taskforce", "--help"]
