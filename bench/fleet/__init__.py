"""bench/fleet: a rollout to N simulated hosts under one FleetLock budget (see __main__)."""
