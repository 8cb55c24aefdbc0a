"""AWS request builders, each checked against botocore's own service model."""
