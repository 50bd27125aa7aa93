"""The scenario file format: pydantic models, loading, whole-tree checks, compilation."""
