"""The stand-in model: a deterministic OpenAI Responses API server for offline runs and tests."""
