"""The domain: data model (model.yaml) and segment definitions, as plain validated data."""
