"""Email: how a message leaves (`transport`), what it says (`compose`), and when it is sent (`outbox`, `digest`)."""
