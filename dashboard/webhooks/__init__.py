"""Webhooks: alert events signed the Standard Webhooks way and delivered with retries."""
