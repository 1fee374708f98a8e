"""The `rq cron` configuration: `python -m jobs.scheduler` (or plain `rq cron jobs.cron`) loads this module.

- every enabled connector is synced every SYNC_INTERVAL_SECONDS (default 5 minutes);
- the alert scan runs every minute: staleness, the grouping wait, and the sweep of
  committed batches that were never evaluated;
- emails that are due are sent within a second (EMAIL_SCAN_INTERVAL_SECONDS), webhook deliveries that are due
  (retries, and jobs lost with Redis) every WEBHOOK_SCAN_INTERVAL_SECONDS (5), digests are made every minute
  for the people whose chosen local time has come, all on the delivery queue;
- the sync-log retention runs daily (SYNC_LOG_RETENTION_CRON, default 03:17 UTC) on the sync queue;
- with DEMO_TRAFFIC set, new demo records arrive now and then.
"""
from __future__ import annotations

import os

from rq import cron

from jobs import digests, email, webhooks
from jobs.alerts import scan
from jobs.demo import demo_traffic
from jobs.retention import apply_retention
from jobs.sync import sync_all

SYNC_INTERVAL = int(os.environ.get("SYNC_INTERVAL_SECONDS", "300"))
SCAN_INTERVAL = int(os.environ.get("ALERT_SCAN_INTERVAL_SECONDS", "60"))
RETENTION_CRON = os.environ.get("SYNC_LOG_RETENTION_CRON", "17 3 * * *")
RETENTION_TIMEOUT = 3600
"""Seconds: the first run over years of log deletes millions of attempts, 500 a transaction."""

cron.register(sync_all, queue_name=os.environ.get("QUEUE_SYNC", "sync"), interval=SYNC_INTERVAL)
cron.register(scan, queue_name=os.environ.get("QUEUE_ALERTS", "alerts"), interval=SCAN_INTERVAL)
DELIVERY_QUEUE = os.environ.get("QUEUE_DELIVERY", "delivery")
cron.register(email.deliver_due, queue_name=DELIVERY_QUEUE,
              interval=int(os.environ.get("EMAIL_SCAN_INTERVAL_SECONDS", "1")), job_timeout=10)
cron.register(webhooks.deliver_due, queue_name=DELIVERY_QUEUE,
              interval=int(os.environ.get("WEBHOOK_SCAN_INTERVAL_SECONDS", "5")), job_timeout=10)
cron.register(digests.send_due_digests, queue_name=DELIVERY_QUEUE, interval=60, job_timeout=60)
cron.register(apply_retention, queue_name=os.environ.get("QUEUE_SYNC", "sync"), cron=RETENTION_CRON,
              job_timeout=RETENTION_TIMEOUT)
if os.environ.get("DEMO_TRAFFIC", "").lower() in {"1", "true", "yes", "on"}:
    cron.register(demo_traffic, queue_name=os.environ.get("QUEUE_SYNC", "sync"),
                  interval=int(os.environ.get("DEMO_TRAFFIC_INTERVAL_SECONDS", "45")))
