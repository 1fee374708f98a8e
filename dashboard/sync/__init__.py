"""The accounting sync: connectors, the orchestrator, the sync log and ingestion."""
