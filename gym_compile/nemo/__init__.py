"""NeMo Gym's world read from its own files: roots, server sources, schemas derived statically."""
