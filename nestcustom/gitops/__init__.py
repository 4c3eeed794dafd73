"""Recipe repositories under git: the scaffold, the change matrix, build plans, package diffs."""
