"""Rechunking: an image's custom layers re-cut into content-addressed chunks (issue 26)."""
