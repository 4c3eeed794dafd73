"""Containerfile -> image -> digest: podman, the registry, builds, checks of built images."""
