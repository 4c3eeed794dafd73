"""recipes/*.yaml -> Recipe: positioned YAML, includes, the schema, NestOS lints, frozen model."""
