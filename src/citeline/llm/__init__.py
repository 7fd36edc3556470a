"""The model service: providers, the registry of model versions, routing and resilience."""
