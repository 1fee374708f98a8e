"""The `rq cron` configuration: periodic scans, registered by name."""
