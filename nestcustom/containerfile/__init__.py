"""Recipe -> Containerfile text and generated files (pure), and the rendered tree."""
