# The image compose.yaml runs as web, worker and release (docs/deploying.md): the pinned
# requirements, then the project. Build it with `docker compose build`.
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PYTHONUNBUFFERED=1 GOOSE_API_DATA_DIR=/data GOOSE_API_SESSIONS_DIR=/data/sessions
