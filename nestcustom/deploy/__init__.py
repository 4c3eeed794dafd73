"""Deploying images to hosts: inventory, SSH, rpm-ostree status, rollout, FleetLock."""
