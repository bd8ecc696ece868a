"""What callers of the order platform use: generated stubs and the error vocabulary."""
