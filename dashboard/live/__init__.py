"""Live events: published after commit, streamed to the browsers allowed to read them."""
