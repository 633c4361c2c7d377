"""Thin Lambda entry points.

Powertools' batch utility is imported here, before any handler module imports pydantic (every one does,
through the models). `aws_lambda_powertools.utilities.batch.types` imports all of Powertools' parser
models (SQS, Kinesis, Kafka, DynamoDB streams: pydantic models with their schemas built at import) when it
finds pydantic already in `sys.modules`, only to annotate types; no handler here parses records with those
models (the batch processor is given no `model`). Imported first, it skips them: a cold start of the
queue-fed functions is tens of milliseconds shorter (README, "Cold starts").
"""

import aws_lambda_powertools.utilities.batch  # noqa: F401  (first: see the docstring)
