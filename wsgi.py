"""Entry point for gunicorn (`wsgi:app`) and the `flask` command."""
from dashboard import create_app

app = create_app()
