"""Task pipelines: read data, build the model, apply the strategy, train, write the run."""
