"""Model endpoints: the client, its retry policy, rate limits, call stats, response cache, usage and cost."""
