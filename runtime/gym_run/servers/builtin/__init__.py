"""gym-run's own in-process implementations of NeMo Gym servers (models, agents, resources servers)."""
