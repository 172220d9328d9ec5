# The worker image: slim, non-root, the project installed from pyproject.toml.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY engine ./engine
COPY worker.py starter.py workflow_engine.py ./
COPY definitions ./definitions
RUN pip install --no-cache-dir .

USER app
ENV TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default \
    TEMPORAL_TASK_QUEUE=llm-workflows \
    DEFINITIONS_DIR=/app
CMD ["python", "worker.py"]
