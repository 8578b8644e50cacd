"""vitstab sweep engine: models, trials and stability studies."""
