"""Inspecting configs and plans: explain a key, show a plan, diff two plans, the editor schema."""
