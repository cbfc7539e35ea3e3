"""Checkpoint reading/conversion helpers (and model complexity counting)."""
