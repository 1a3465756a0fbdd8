"""The data pipeline: fetching sources, dataset adapters, the unified set, the cached arrays and the reframed test set."""
