"""Fleets past one controller: the FleetLock reboot budget kept in etcd."""
