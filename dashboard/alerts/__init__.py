"""Alert rules (pure), the engine that applies them, recipients and the platform incident."""
