"""Mutation testing of the whole product: `python -m bench.mutation --help`."""
