#!/usr/bin/env python3
"""CDK entry point: `make synth` (or `npx cdk synth`), `cdk deploy`.

Settings: cdk.json "context", overridden with `-c key=value`.
"""

from infra.stack import create_app

app, _ = create_app()
app.synth()
